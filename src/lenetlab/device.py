"""Choosing the torch device once, for training, evaluation, prediction and serving alike."""

from __future__ import annotations

import torch

from lenetlab.errors import ConfigError


def select_device(name: str = "auto") -> torch.device:
    """The torch device for ``auto|cpu|cuda|mps`` (auto: CUDA, then MPS, then CPU).

    Asking for a device this machine lacks raises a one-line ConfigError.
    """
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda requested but no CUDA device is available "
                          f"(torch {torch.__version__}); use --device cpu or auto")
    if name == "mps" and not mps_ok:
        raise ConfigError("device: mps requested but Apple MPS is not available; use --device cpu or auto")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"field 'device' must be one of auto, cpu, cuda, mps (got {name!r})")
    return torch.device(name)
