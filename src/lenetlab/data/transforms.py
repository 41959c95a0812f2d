"""Batch preprocessing: :func:`prepare` turns ``uint8 [N, C, H, W]`` images into a model's float input as
its :class:`InputSpec` (saved in every checkpoint) says: width normalisation, padding or resizing, normalisation.
"""

import torch
import torch.nn.functional as F

from lenetlab.inputspec import InputSpec

#: The most pixels :func:`pad_or_resize` pads by: LeNet-5's 28→32 is 4.
MAX_PAD = 8


def pad_or_resize(side: int, size: int) -> str:
    """How images of ``side`` pixels reach a model input of ``size``: ``"pad"`` when they are smaller by
    at most :data:`MAX_PAD` pixels (or equal), else ``"resize"`` (the d2l zoo's 224)."""
    return "pad" if 0 <= size - side <= MAX_PAD else "resize"


#: A pixel counts as ink for :func:`normalize_width` above this fraction of full intensity.
INK_THRESHOLD = 0.1


def normalize_width(x: torch.Tensor, width: int) -> torch.Tensor:
    """``x`` ``[N, C, H, W]`` (floats, background 0), each image scaled horizontally so that its ink (columns
    above :data:`INK_THRESHOLD`) spans ``width`` pixels, centred, as Ciresan et al. 2012 do."""

    n, _, _, w = x.shape
    if n == 0:
        return x
    cols = (x > INK_THRESHOLD).any(2).any(1)  # [N, W]: the columns holding ink
    pos, ink = torch.arange(w, device=x.device), cols.any(1)
    first = torch.where(cols, pos, w).amin(1).float()
    last = torch.where(cols, pos, -1).amax(1).float()
    scale = torch.where(ink, width / (last - first + 1), 1.0)  # output pixels per input pixel
    centre = torch.where(ink, (first + last) / 2, (w - 1) / 2)
    # the output column u (normalised to [-1, 1], align_corners=False) samples the input at
    # u / scale + the ink's centre in the same coordinates
    work = x if x.dtype == torch.float64 else x.float()  # float32 unless the caller wants double precision
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=work.dtype)
    theta[:, 0, 0] = 1 / scale
    theta[:, 0, 2] = (2 * centre + 1) / w - 1
    theta[:, 1, 1] = 1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(work, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.to(x.dtype)


def prepare(x: torch.Tensor, spec: InputSpec, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Turn ``uint8`` images ``[N, C, H, W]`` into the model input ``dtype [N, C, size, size]``: scaled to
    ``[0, 1]``, width-normalised if ``spec.digit_width``, padded (with 0) or resized, normalised per channel."""
    x = x.to(dtype) / 255.0
    if spec.digit_width:
        x = normalize_width(x, spec.digit_width)
    h, w = x.shape[-2:]
    if (h, w) != (spec.size, spec.size):
        if spec.resize == "pad" and h <= spec.size and w <= spec.size:
            top, left = (spec.size - h) // 2, (spec.size - w) // 2
            x = F.pad(x, (left, spec.size - w - left, top, spec.size - h - top))
        else:
            x = F.interpolate(x, size=(spec.size, spec.size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(spec.mean, dtype=dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std
