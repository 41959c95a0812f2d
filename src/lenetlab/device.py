"""The device policy, in one place: which torch device, which autocast precision, how many CPU threads."""

import torch

from lenetlab.errors import ConfigError


def select_device(name: str = "auto") -> torch.device:
    """The torch device for ``auto|cpu|cuda|mps`` (auto: CUDA, then MPS, then CPU); one this machine lacks
    is a one-line ConfigError."""
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device: cuda requested but no CUDA device is available "
            f"(torch {torch.__version__}); use --device cpu or auto"
        )
    if name == "mps" and not mps_ok:
        raise ConfigError("device: mps requested but Apple MPS is not available; use --device cpu or auto")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"field 'device' must be one of auto, cpu, cuda, mps (got {name!r})")
    return torch.device(name)


def autocast_dtype(device: torch.device, amp: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or None for float32: ``auto`` is bf16 on CUDA (fp16 where
    unsupported) and off on CPU and MPS, where it rarely pays for a model this small; ``bf16``/``fp16``
    where PyTorch supports them on that device type, else a ConfigError."""
    if amp == "off":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    if dtype is None:
        raise ConfigError(f"field 'amp' must be one of auto, off, bf16, fp16 (got {amp!r})")
    if device.type == "cpu" and dtype is torch.float16:
        raise ConfigError("field 'amp': fp16 autocast is not supported on CPU; use bf16 or off")
    return dtype


def set_threads(num_threads: int) -> None:
    """Set torch's intra-op CPU threads (0 leaves torch's default)."""
    if num_threads > 0:
        torch.set_num_threads(num_threads)
