"""Helpers shared by the dataset readers: seeded validation split, channel conversion, statistics."""

from __future__ import annotations

import numpy as np
import torch

from lenetlab.choices import FIXED_NORMS, NORMALIZE_CHOICES
from lenetlab.data.splits import Split, Splits
from lenetlab.data.transforms import InputSpec, pad_or_resize
from lenetlab.errors import DataError


def carve_val(
    x: torch.Tensor, y: torch.Tensor | None, val_size: int, seed: int, name: str, ids: list[str] | None = None
) -> tuple[Split, Split]:
    """Split ``x [N, ...]``/``y [N]`` into (train, dev) with ``val_size`` dev examples chosen by ``seed``.

    Both parts keep the original order (indices sorted), so the split depends only on the seed.
    """
    n = len(x)
    if val_size != 0 and not 0 < val_size < n:  # keep at least one training example
        raise DataError(f"{name}: val_size={val_size} must be in [0, {n}) for a training set of {n:,}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    dev_idx, tr_idx = perm[:val_size].sort().values, perm[val_size:].sort().values

    def part(i: torch.Tensor) -> Split:
        return Split(x[i], None if y is None else y[i], None if ids is None else [ids[j] for j in i.tolist()])

    return part(tr_idx), part(dev_idx)


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
    """Exact per-channel mean and std of ``uint8 [N, C, H, W]`` in [0, 1] units, via 256-bin histograms.

    Chunked so even 60,000 images never need a float copy of the whole tensor.
    """
    c = x.shape[1]
    hist = np.zeros((c, 256), dtype=np.int64)
    for i in range(0, len(x), chunk):
        part = x[i : i + chunk].transpose(0, 1).reshape(c, -1).numpy()
        for ch in range(c):
            hist[ch] += np.bincount(part[ch], minlength=256)
    v = np.arange(256) / 255.0
    total = hist.sum(1).clip(min=1)
    mean = (hist * v).sum(1) / total
    var = (hist * v**2).sum(1) / total - mean**2
    return tuple(float(m) for m in mean), tuple(float(s) for s in np.sqrt(var.clip(min=0)))


def normalization(name: str, train_x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``(mean, std)`` in [0, 1] units for normalisation ``name`` on ``train_x [N, C, H, W]``:
    ``stats`` measures the train split (exactly, via histograms), the others are :data:`FIXED_NORMS`."""
    c = int(train_x.shape[1])
    if name == "stats":
        mean, std = pixel_stats(train_x.cpu())
        return mean, tuple(max(s, 1e-3) for s in std)  # a constant image set must not divide by zero
    if name not in FIXED_NORMS:
        raise DataError(f"normalize={name!r} is not one of {', '.join(NORMALIZE_CHOICES)}")
    mean, std = FIXED_NORMS[name]
    return (mean,) * c, (std,) * c


def finish(
    name: str,
    train: Split,
    dev: Split,
    test: Split,
    class_names: list[str],
    source: str,
    *,
    channels: int | None,
    image_size: int | None,
    normalize: str | None,
    default_norm: str,
) -> Splits:
    """Apply channel conversion and build the default InputSpec, returning the :class:`Splits`.

    ``image_size`` (default 32 for 28×28 digits, else the images' own size) becomes ``spec.size``;
    ``prepare`` pads when the images are smaller (LeNet-5's 28→32) and resizes otherwise.
    """
    for s in (train, dev, test):
        s.x = to_channels(s.x, channels)
    h = int(train.x.shape[-1]) if len(train) else int(test.x.shape[-1])
    size = image_size or (32 if h == 28 else h)
    if normalize in (None, "default"):
        normalize = default_norm
    mean, std = normalization(normalize, train.x if len(train) else test.x)
    spec = InputSpec(
        channels=int(train.x.shape[1] if len(train) else test.x.shape[1]),
        size=size,
        resize=pad_or_resize(h, size),
        mean=mean,
        std=std,
    )
    return Splits(name, train, dev, test, list(class_names), spec, source)
