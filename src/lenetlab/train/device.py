"""Device, precision, threads and seeding: chosen once per run from the config."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from lenetlab.device import select_device  # noqa: F401  (re-exported: lenetlab.train.device.select_device)
from lenetlab.errors import ConfigError


def autocast_dtype(device: torch.device, amp: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or None for full float32.

    ``auto`` turns on bf16 on CUDA devices that support it (fp16 on older ones) and stays off on
    CPU and MPS, where it rarely pays for a model this small. Explicit ``bf16``/``fp16`` are honoured
    where PyTorch supports them on that device type, else a ConfigError.
    """
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


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; optionally force deterministic algorithms.

    Deterministic mode also sets ``CUBLAS_WORKSPACE_CONFIG`` (needed by deterministic cuBLAS) and
    turns cuDNN autotuning off; otherwise cuDNN benchmark mode is on for speed.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = True


def rng_state() -> dict:
    """Python, NumPy and torch (CPU and CUDA) RNG states as checkpoint-safe tensors/lists/numbers."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore states saved by :func:`rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
