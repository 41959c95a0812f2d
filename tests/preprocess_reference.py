"""The MNIST-style preprocessing in its straightforward form, kept only as the reference that
tests/data/test_fast_preprocess.py compares lenetlab.data.images with: float64 grayscale of every decoded
pixel, six rounds of the background fit on full coordinate grids, every step on the whole image, PIL's square
MaxFilter, NumPy's median and percentile. Opening and reading arrays (lenetlab's own ``_open`` and
``_array_to_float``) are shared, as they were not changed."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageFilter

from lenetlab.data.images import (
    CENTRE,
    MAX_PIXELS,
    MIN_CONTRAST,
    STROKE_FRACTION,
    WORK_SIDE,
    BlankImageError,
    ImageTooLargeError,
    _array_to_float,
    _label,
    _open,
)


def _pil_to_float(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        return np.clip(a / (65535.0 if a.max() > 255 else 255.0), 0, 1), None
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        return (np.clip(a / 255.0, 0, 1) if a.max() > 1 else np.clip(a, 0, 1)), None
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB" if mode != "1" else "L")
    elif mode == "PA":
        img = img.convert("RGBA")
    alpha = None
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        alpha = np.asarray(img.getchannel("A"), dtype=np.float64) / 255.0
        img = img.convert("RGB" if img.mode.startswith("RGB") else "L")
    return np.asarray(img.convert("L") if img.mode != "L" else img, dtype=np.float64) / 255.0, alpha


def load_gray(image, *, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    label = _label(image, name)
    if isinstance(image, (np.ndarray, torch.Tensor)):
        lum, alpha = _array_to_float(image, label)
        if lum.size > max_pixels:
            raise ImageTooLargeError(f"{label}: image has {lum.size:,} pixels, more than the limit of {max_pixels:,}")
    else:
        lum, alpha = _pil_to_float(_open(image, label, max_pixels))
    gray = lum
    if alpha is not None and alpha.min() <= 0.99:
        opaque = alpha > 0.5
        if opaque.mean() > 0.5:
            bg = float(np.median(lum[opaque]))
        else:
            weight = alpha.sum()
            ink = float((alpha * lum).sum() / weight) if weight > 0 else 0.0
            bg = 1.0 if ink < 0.5 else 0.0
        gray = alpha * lum + (1.0 - alpha) * bg
    h, w = gray.shape
    if max(h, w) > WORK_SIDE:
        s = WORK_SIDE / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        small = Image.fromarray(gray.astype(np.float32), mode="F").resize(size, Image.Resampling.BOX)
        gray = np.asarray(small, dtype=np.float64)
    return gray


def _fit_background(a: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = a.shape
    step = max(1, max(h, w) // 64)
    small = a[::step, ::step]
    yy, xx = np.mgrid[0 : small.shape[0], 0 : small.shape[1]]
    ys, xs = yy.ravel() * step / max(h - 1, 1), xx.ravel() * step / max(w - 1, 1)
    design = np.stack([np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys], axis=1)
    v = small.ravel()
    sh, sw = small.shape
    k = max(1, round(0.04 * min(sh, sw)))
    frame = np.ones((sh, sw), dtype=bool)
    if 2 * k < min(sh, sw):
        frame[k:-k, k:-k] = False
    keep = frame.ravel()
    coef = np.zeros(6)
    coef[0] = float(np.median(v[keep]))
    sigma = 1 / 255
    for _ in range(6):
        if keep.sum() < 12:
            break
        d = design[keep]
        coef = np.linalg.solve(d.T @ d + 1e-6 * np.eye(6), d.T @ v[keep])
        resid = v - design @ coef
        sigma = max(1.4826 * float(np.median(np.abs(resid[keep] - np.median(resid[keep])))), 1 / 255)
        keep = np.abs(resid) < 2.5 * sigma
    gy, gx = np.mgrid[0:h, 0:w]
    X, Y = gx / max(w - 1, 1), gy / max(h - 1, 1)
    return coef[0] + coef[1] * X + coef[2] * Y + coef[3] * X * X + coef[4] * X * Y + coef[5] * Y * Y, sigma


def _rank_filter(a: np.ndarray, flt: ImageFilter.Filter) -> np.ndarray:
    img = Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8), mode="L")
    return np.asarray(img.filter(flt), dtype=np.float64) / 255.0


def _bbox(mass: np.ndarray, trim: float = 0.002) -> tuple[int, int, int, int]:
    def span(profile: np.ndarray) -> tuple[int, int]:
        c = np.cumsum(profile) / profile.sum()
        lo = int(np.searchsorted(c, trim, side="right"))
        return lo, max(int(np.searchsorted(c, 1 - trim, side="left")) + 1, lo + 1)

    return span(mass.sum(axis=1)) + span(mass.sum(axis=0))


def _thicken(crop: np.ndarray) -> np.ndarray:
    ink = np.pad(crop > 0.5, 1)
    area = int(ink.sum())
    if area < 4:
        return crop
    perim = int((ink[1:] != ink[:-1]).sum() + (ink[:, 1:] != ink[:, :-1]).sum())
    side = max(crop.shape)
    k = int(round(STROKE_FRACTION * side - 2.0 * area / max(perim, 1)))
    k = min(k | 1, 2 * (side // 8) + 1)
    return crop if k < 3 else _rank_filter(np.pad(crop, k // 2), ImageFilter.MaxFilter(k))


def preprocess_image(
    image, *, name: str | None = None, max_pixels: int = MAX_PIXELS, thicken: bool = True
) -> torch.Tensor:
    label = _label(image, name)
    gray = load_gray(image, name=name, max_pixels=max_pixels)
    bg, sigma = _fit_background(gray)
    resid = gray - bg
    dark = float(np.maximum(-resid - 3 * sigma, 0).sum())
    light = float(np.maximum(resid - 3 * sigma, 0).sum())
    ink = np.maximum(-resid if dark > light else resid, 0.0)
    if sigma > 0.02 and min(ink.shape) >= 32:
        ink = _rank_filter(ink, ImageFilter.MedianFilter(3))
        sigma = sigma / 1.5
    contrast = float(ink.max())
    if contrast < max(MIN_CONTRAST, 6.0 * sigma):
        raise BlankImageError(f"{label}: no digit found (the image is blank or nearly uniform)")
    thr = max(3.0 * sigma, 0.12 * contrast)
    strong = ink[ink > thr]
    peak = max(float(np.percentile(strong, 80)) if strong.size else contrast, thr + 1e-6)
    v = np.clip((ink - thr) / (peak - thr), 0.0, 1.0)
    if (v > 0.5).sum() < max(4, 2e-4 * v.size):
        raise BlankImageError(f"{label}: no digit found (only a few faint specks)")
    top, bottom, left, right = _bbox(v)
    crop = v[top:bottom, left:right]
    if thicken:
        crop = _thicken(crop)
    h, w = crop.shape
    s = 20.0 / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    resample = Image.Resampling.BOX if s < 1 else Image.Resampling.BILINEAR
    small = Image.fromarray(crop.astype(np.float32), mode="F").resize((nw, nh), resample)
    small = np.asarray(small, dtype=np.float64).clip(0, 1)
    mass = small.sum()
    if mass <= 0:
        raise BlankImageError(f"{label}: no digit found")
    cy = float((small.sum(axis=1) * np.arange(nh)).sum() / mass)
    cx = float((small.sum(axis=0) * np.arange(nw)).sum() / mass)
    oy = int(np.clip(round(CENTRE - cy), 0, 28 - nh))
    ox = int(np.clip(round(CENTRE - cx), 0, 28 - nw))
    out = np.zeros((28, 28), dtype=np.float64)
    out[oy : oy + nh, ox : ox + nw] = small
    return torch.from_numpy(np.round(out * 255.0).astype(np.uint8)).unsqueeze(0)
