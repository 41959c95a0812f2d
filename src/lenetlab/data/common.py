"""What every dataset reader shares: the seeded dev split, channel conversion, pixel statistics and the
default input spec (:func:`finish`)."""

import numpy as np
import torch

from lenetlab.choices import FIXED_NORMS, NORMALIZE_CHOICES
from lenetlab.data.splits import Split, Splits, dev_size
from lenetlab.data.transforms import InputSpec, pad_or_resize
from lenetlab.errors import DataError


def carve_val(full: Split, val_size: int | None, seed: int, name: str) -> tuple[Split, Split]:
    """``(train, dev)`` of ``full``, with :func:`~lenetlab.data.splits.dev_size` examples chosen by ``seed``
    for dev; both parts keep the original order, so the split depends only on the seed."""
    n, k = len(full), dev_size(len(full), val_size)
    if n and k != 0 and not 0 < k < n:  # keep at least one training example
        raise DataError(f"{name}: val_size={k} must be in [0, {n}) for a training set of {n:,}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return full.take(perm[k:].sort().values), full.take(perm[:k].sort().values)


def to_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """Convert ``uint8 [N, C, H, W]`` to ``channels`` (1: ITU-R 601 luma; 3: repeat gray); None keeps C."""
    if channels is None or x.shape[1] == channels:
        return x
    if channels == 3 and x.shape[1] == 1:
        return x.repeat(1, 3, 1, 1)
    if channels == 1 and x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    raise DataError(f"cannot convert {x.shape[1]}-channel images to {channels} channels (use 1 or 3)")


def pixel_stats(x: torch.Tensor, chunk: int = 8192) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std of ``uint8 [N, C, H, W]`` in [0, 1] units, from 256-bin histograms
    counted in chunks (no float copy of the whole tensor)."""
    c = x.shape[1]
    hist = np.zeros((c, 256), dtype=np.int64)
    for i in range(0, len(x), chunk):
        part = x[i : i + chunk].transpose(0, 1).reshape(c, -1).numpy()
        hist += np.stack([np.bincount(p, minlength=256) for p in part])
    v = np.arange(256) / 255.0
    total = hist.sum(1).clip(min=1)
    mean = hist @ v / total
    std = np.sqrt((hist @ v**2 / total - mean**2).clip(min=0))
    return tuple(mean.tolist()), tuple(std.tolist())


def normalization(name: str, train_x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``(mean, std)`` in [0, 1] units for normalisation ``name`` on ``train_x [N, C, H, W]``:
    ``stats`` measures the train split, the others are :data:`~lenetlab.choices.FIXED_NORMS`."""
    if name == "stats":
        mean, std = pixel_stats(train_x.cpu())
        return mean, tuple(max(s, 1e-3) for s in std)  # a constant image set must not divide by zero
    if name not in FIXED_NORMS:
        raise DataError(f"normalize={name!r} is not one of {', '.join(NORMALIZE_CHOICES)}")
    mean, std = FIXED_NORMS[name]
    c = int(train_x.shape[1])
    return (mean,) * c, (std,) * c


def finish(s: Splits, *, digits: bool, channels=None, image_size=None, normalize=None) -> Splits:
    """Convert ``s``'s images to ``channels`` and set its input spec: size ``image_size`` (default: the
    images' side, 32 for 28×28 ``digits``), padded or resized to, and normalisation ``normalize``
    (``default``: ``half`` for ``digits``, else ``stats``)."""
    for part in (s.train, s.dev, s.test):
        part.x = to_channels(part.x, channels)
    x = s.train.x if len(s.train) else s.test.x
    side = int(x.shape[-1])
    size = image_size or (32 if digits and side == 28 else side)
    if normalize in (None, "default"):
        normalize = "half" if digits else "stats"
    mean, std = normalization(normalize, x)
    s.input_spec = InputSpec(int(x.shape[1]), size, pad_or_resize(side, size), mean, std)
    return s
