"""A person's own digit image → an MNIST-style ``uint8 [1, 28, 28]`` tensor, the way MNIST was made.

:func:`preprocess_image` is the ONE preprocessing shared by ``lenet predict``, the web service
and the browser page's server side. It accepts a path, raw bytes, a PIL image, a NumPy array or a
tensor, of any size and either polarity (white ink on black, or a photo/scan of dark ink on light
paper), and returns the 28×28 image a model trained on MNIST expects:

1. grayscale (alpha composited over a background that contrasts with the ink);
2. uneven lighting removed: a smooth quadratic surface is fitted robustly to the background,
   starting from the border pixels and excluding the ink as outliers, and subtracted; the noise
   is measured on what remains;
3. polarity: the ink is the heavier tail beyond the noise, darker than the background (dark ink
   on light paper, then inverted to MNIST's white-on-black) or lighter (MNIST itself);
4. light denoising (3×3 median when noisy), a noise-relative threshold and auto-contrast so the
   stroke cores are saturated like MNIST's;
5. thin pen strokes thickened towards MNIST's stroke width (never thinned);
6. crop to the digit's bounding box (robust to stray specks), scale to fit 20×20 keeping the
   aspect ratio with antialiasing, and place it in 28×28 with its centre of mass at (14, 14).

An image with no digit raises :class:`BlankImageError`, so callers say "draw a digit" instead of
guessing; an unreadable file raises a one-line :class:`DataError` naming it. Only PIL, NumPy and
torch are imported, so the web service stays light.

:func:`open_image` is the one way lenetlab opens an image file (dataset folders, the recipe's
inspection, this preprocessing, the server's uploads, plots): one pixel limit, :data:`MAX_PIXELS`
(the server passes a stricter one), checked from the header before any pixel is decoded.
"""

from __future__ import annotations

import functools
import io
import os
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from lenetlab.errors import DataError, first_line

__all__ = ["BlankImageError", "ImageTooLargeError", "load_gray", "open_image", "preprocess_image"]

#: Longest side of the working resolution: large photos are reduced (antialiased) before analysis.
WORK_SIDE = 512
#: The one limit on an image's pixels (width × height) wherever lenetlab opens one: Pillow's own
#: decompression-bomb threshold, so no image within it trips Pillow's warning. Serving passes less.
MAX_PIXELS = 89_478_485
_OPENING = threading.Lock()
#: MNIST's mean centre of mass, in pixel-index coordinates of the 28×28 field.
CENTRE = 14.0
#: Minimum ink contrast (in [0, 1] pixel units) for an image to count as holding a digit.
MIN_CONTRAST = 0.1
#: Target stroke width as a fraction of the digit's longest side (MNIST: about 2.5 px of 20).
STROKE_FRACTION = 0.11


class BlankImageError(DataError):
    """The image holds no digit (blank, uniform or near-blank): ask the user to draw/write one."""


class ImageTooLargeError(DataError):
    """The image has more pixels than the caller allows."""


def _label(source, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return f"<{type(source).__name__} image>"


def _too_large(label: str, pixels: int, limit: int, size: tuple[int, int] | None = None) -> ImageTooLargeError:
    wh = f" ({size[0]}x{size[1]})" if size else ""
    return ImageTooLargeError(
        f"{label}: image of {pixels:,} pixels{wh} is larger than Pillow decodes safely "
        f"(the limit here is {limit:,} pixels); refused"
    )


def open_image(
    source,
    *,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
    formats: tuple[str, ...] | None = None,
    decode: bool = True,
    draft: tuple[str, int] | None = None,
) -> Image.Image:
    """The one way lenetlab opens an image file: ``source`` is a path, bytes or a binary file object.

    The header is read first and an image of more than ``max_pixels`` pixels (at most :data:`MAX_PIXELS`)
    is refused before any pixel is decoded (:class:`ImageTooLargeError`; Pillow's own
    ``DecompressionBombError`` and ``DecompressionBombWarning`` become the same error). A missing,
    unidentified (not in ``formats``, when given), truncated or otherwise corrupt file is a one-line
    :class:`DataError` naming it (``name``, default the path). ``decode=False`` returns the lazily
    opened image (header only; close it, or use it in a ``with``); otherwise the first frame is decoded
    and returned detached from the file, a JPEG at a reduced scale no smaller than ``draft=(mode, side)``."""
    label, max_pixels = _label(source, name), min(max_pixels, MAX_PIXELS)  # a caller may only be stricter
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            what = "is a folder, not an image file" if path.is_dir() else "image file not found"
            raise DataError(f"{label}: {what}")
        fp = path
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise DataError(f"{label}: empty image data")
        fp = io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        fp = source
    else:
        raise DataError(f"{label}: unsupported image type {type(source).__name__}")
    try:
        with _OPENING, warnings.catch_warnings():  # the warnings filter is process-wide: one opener at a time
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp, formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # from the header alone
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_large(label, int(pixels.group(1)) if pixels else max_pixels + 1, max_pixels) from None
    except FileNotFoundError:
        raise DataError(f"{label}: image file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{label}: not a readable image (unrecognised format)") from None
    except Exception as e:  # OSError, SyntaxError, ValueError... from a plugin reading a malformed header
        raise DataError(f"{label}: not a readable image ({first_line(e, 120)})") from None
    w, h = img.size
    if w * h > max_pixels:
        img.close()
        raise _too_large(label, w * h, max_pixels, (w, h))
    if w < 1 or h < 1:
        img.close()
        raise DataError(f"{label}: image has no pixels")
    if not decode:
        return img
    with img:
        try:
            if draft is not None and img.format == "JPEG":
                img.draft(draft[0], (draft[1], draft[1]))
            img.load()
            return img.copy()
        except Exception as e:  # truncated or corrupt pixel data
            raise DataError(f"{label}: not a readable image ({first_line(e, 120)})") from None


def _open(source, label: str, max_pixels: int) -> Image.Image:
    """``source`` (as :func:`open_image` takes it, or a PIL image) decoded, reduced and upright."""
    img = (
        source
        if isinstance(source, Image.Image)
        else open_image(source, name=label, max_pixels=max_pixels, decode=False)
    )
    w, h = img.size
    if w * h > max_pixels:
        raise _too_large(label, w * h, max_pixels, (w, h))
    if w < 1 or h < 1:
        raise DataError(f"{label}: image has no pixels")
    try:
        if getattr(img, "format", None) == "JPEG":
            img.draft("RGB", (WORK_SIDE, WORK_SIDE))  # decode large JPEGs at a reduced scale: fast
        img.load()
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        img = _reduce_large(img)
        img = ImageOps.exif_transpose(img)  # phone photos: honour the orientation tag
    except Exception as e:
        raise DataError(f"{label}: not a readable image ({first_line(e)})") from None
    return img


#: Modes :meth:`PIL.Image.Image.reduce` averages correctly; others are converted first.
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "I", "F")


def _reduce_large(img: Image.Image) -> Image.Image:
    """Box-average a decoded image by the largest integer factor that keeps its longest side at least
    :data:`WORK_SIDE`, while it is still 8-bit: the float conversion that follows then works on at
    most ~4x the working resolution instead of on every decoded pixel (memory, for large uploads)."""
    k = max(img.size) // WORK_SIDE
    if k < 2:
        return img
    if img.mode not in _REDUCIBLE:
        if img.mode == "1":
            img = img.convert("L")
        elif img.mode.startswith("I;16"):
            img = img.convert("I")
        elif img.mode in ("P", "PA"):
            img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
        else:  # CMYK, YCbCr, LAB, HSV: average in RGB
            img = img.convert("RGB")
    return img.reduce(k)


def _pil_to_float(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (luminance ``[H, W]`` in [0, 1], alpha ``[H, W]`` in [0, 1] or None)."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if a.max() > 255 else 255.0
        return np.clip(a / top, 0, 1), None
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
    lum = np.asarray(img.convert("L") if img.mode != "L" else img, dtype=np.float64) / 255.0
    return lum, alpha


def _array_to_float(a, label: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A NumPy array / tensor ``[H, W]``, ``[H, W, C]`` or ``[C, H, W]`` (C = 1, 3, 4) → luminance, alpha."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.float64)
    if not (np.issubdtype(a.dtype, np.number)):
        raise DataError(f"{label}: image array must hold numbers, not {a.dtype}")
    a = np.squeeze(a) if a.ndim > 3 else a
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # torch's [C, H, W]
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)) or min(a.shape[:2]) < 1:
        raise DataError(
            f"{label}: image array must be [H, W], [H, W, C] or [C, H, W] with C in 1, 3, 4; got {list(a.shape)}"
        )
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise DataError(f"{label}: image array holds NaN or infinite values")
    a = np.clip(a / 255.0 if a.max() > 1.0 else a, 0, 1)  # 0..255 (any dtype) or already 0..1
    alpha = None
    if a.ndim == 3:
        if a.shape[-1] == 4:
            alpha, a = a[..., 3], a[..., :3]
        a = a @ np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma, as PIL's "L"
    return a, alpha


def _composite(lum: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Composite over a background: the paper's tone when mostly opaque, else contrasting the ink."""
    if alpha is None or alpha.min() > 0.99:
        return lum
    opaque = alpha > 0.5
    if opaque.mean() > 0.5:  # a picture with transparent margins: extend its own background
        bg = float(np.median(lum[opaque]))
    else:  # strokes on a transparent canvas: ink dark → white paper, ink light → black
        weight = alpha.sum()
        ink = float((alpha * lum).sum() / weight) if weight > 0 else 0.0
        bg = 1.0 if ink < 0.5 else 0.0
    return alpha * lum + (1.0 - alpha) * bg


def load_gray(image, *, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read ``image`` (path, bytes, file object, PIL image, array ``[H, W]``/``[H, W, C]``/``[C, H, W]``
    or tensor) as a float64 grayscale array ``[H, W]`` in [0, 1], alpha composited, reduced so its
    longest side is at most :data:`WORK_SIDE` (antialiased)."""
    label = _label(image, name)
    if isinstance(image, (np.ndarray, torch.Tensor)):
        lum, alpha = _array_to_float(image, label)
        if lum.size > max_pixels:
            raise ImageTooLargeError(f"{label}: image has {lum.size:,} pixels, more than the limit of {max_pixels:,}")
    else:
        lum, alpha = _pil_to_float(_open(image, label, max_pixels))
    gray = _composite(lum, alpha)
    h, w = gray.shape
    if max(h, w) > WORK_SIDE:
        s = WORK_SIDE / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        gray = np.asarray(
            Image.fromarray(gray.astype(np.float32), mode="F").resize(size, Image.Resampling.BOX), dtype=np.float64
        )
    return gray


def _frame(h: int, w: int) -> np.ndarray:
    """Boolean mask ``[h, w]`` of a frame about 4% wide (at least 1 pixel) around the image."""
    k = max(1, round(0.04 * min(h, w)))
    m = np.ones((h, w), dtype=bool)
    if 2 * k < min(h, w):
        m[k:-k, k:-k] = False
    return m


@functools.lru_cache(maxsize=8)
def _design(h: int, w: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The quadratic's design matrix ``[n, 6]`` at every ``step``-th pixel of an ``h``×``w`` image, and the
    border-frame mask ``[n]`` of those pixels (cached per shape: the same for every request's canvas)."""
    sh, sw = len(range(0, h, step)), len(range(0, w, step))
    yy, xx = np.mgrid[0:sh, 0:sw]
    ys, xs = yy.ravel() * step / max(h - 1, 1), xx.ravel() * step / max(w - 1, 1)
    design = np.stack([np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys], axis=1)
    keep = _frame(sh, sw).ravel()
    design.flags.writeable = keep.flags.writeable = False
    return design, keep


def _fit_background(a: np.ndarray) -> tuple[np.ndarray, float]:
    """Fit a smooth quadratic background to ``a`` ``[H, W]``, ignoring the ink as outliers.

    The fit starts from the border frame (background by assumption, as in a photo or scan of one
    digit), then keeps refitting on every pixel within 2.5 sigma of the surface, so ink of either
    polarity, even a bold digit covering much of the image, is left out. A quadratic follows a
    lighting gradient or vignetting but cannot bend into a stroke. Returns the background
    ``[H, W]`` and the noise sigma of the background pixels (robust, from the MAD).
    """
    h, w = a.shape
    step = max(1, max(h, w) // 64)
    small = a[::step, ::step]
    design, keep = _design(h, w, step)
    v = small.ravel()
    coef = np.zeros(6)
    coef[0] = float(np.median(v[keep]))
    sigma = 1 / 255
    for _ in range(6):
        if keep.sum() < 12:
            break
        d = design[keep]
        # 6×6 normal equations (a small ridge keeps a border-only start well posed)
        coef = np.linalg.solve(d.T @ d + 1e-6 * np.eye(6), d.T @ v[keep])
        resid = v - design @ coef
        kept = resid[keep]
        sigma = max(1.4826 * float(np.median(np.abs(kept - np.median(kept)))), 1 / 255)
        keep, was = np.abs(resid) < 2.5 * sigma, keep
        if np.array_equal(keep, was):  # converged: the remaining rounds would repeat this one exactly
            break
    # a row and a column broadcast: the same float64 operations per pixel as full grids, without them
    X, Y = np.arange(w)[None, :] / max(w - 1, 1), np.arange(h)[:, None] / max(h - 1, 1)
    bg = coef[0] + coef[1] * X + coef[2] * Y + coef[3] * X * X + coef[4] * X * Y + coef[5] * Y * Y
    return bg, sigma


def _rank_filter(a: np.ndarray, flt: ImageFilter.Filter) -> np.ndarray:
    """Apply a PIL rank filter to ``a`` in [0, 1] through 8 bits (PIL's float rank filters are slow)."""
    img = Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8), mode="L")
    return np.asarray(img.filter(flt), dtype=np.float64) / 255.0


def _median3(a: np.ndarray) -> np.ndarray:
    return _rank_filter(a, ImageFilter.MedianFilter(3))


def _bbox(mask_mass: np.ndarray, trim: float = 0.002) -> tuple[int, int, int, int]:
    """Bounding box (top, bottom, left, right; inclusive-exclusive) holding all but ``trim`` of the
    ink mass at each end, so a few stray specks far from the digit do not stretch the box."""

    def span(profile: np.ndarray) -> tuple[int, int]:
        c = np.cumsum(profile) / profile.sum()
        lo = int(np.searchsorted(c, trim, side="right"))
        hi = int(np.searchsorted(c, 1 - trim, side="left")) + 1
        return lo, max(hi, lo + 1)

    top, bottom = span(mask_mass.sum(axis=1))
    left, right = span(mask_mass.sum(axis=0))
    return top, bottom, left, right


def _thicken(crop: np.ndarray) -> np.ndarray:
    """Dilate thin strokes of the cropped digit so their width is about :data:`STROKE_FRACTION` of
    its longest side; returns the crop grown by the dilation (or unchanged when thick enough)."""
    ink = np.pad(crop > 0.5, 1)  # padded so the strokes' outer edges count in the perimeter
    area = int(ink.sum())
    if area < 4:
        return crop
    # perimeter ≈ number of ink/background transitions; width ≈ 2 · area / perimeter for a stroke
    perim = int((ink[1:] != ink[:-1]).sum() + (ink[:, 1:] != ink[:, :-1]).sum())
    width = 2.0 * area / max(perim, 1)
    side = max(crop.shape)
    k = int(round(STROKE_FRACTION * side - width))
    k = min(k | 1, 2 * (side // 8) + 1)  # odd filter size, bounded
    if k < 3:
        return crop
    return _max_filter(np.pad(crop, k // 2), k)


def _max_filter(a: np.ndarray, k: int) -> np.ndarray:
    """PIL's ``MaxFilter(k)`` of ``a`` ``[H, W]`` in [0, 1] through 8 bits, as two 1-D running maxima (a
    square's maximum is separable; PIL repeats the edge pixels, which a clipped window already holds)."""
    q = np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
    h, w = q.shape
    r = k // 2
    tall = np.pad(q, ((r, r), (0, 0)))
    rows = tall[:h].copy()
    for i in range(1, k):
        np.maximum(rows, tall[i : i + h], out=rows)
    wide = np.pad(rows, ((0, 0), (r, r)))
    both = wide[:, :w].copy()
    for i in range(1, k):
        np.maximum(both, wide[:, i : i + w], out=both)
    return both.astype(np.float64) / 255.0


def preprocess_image(
    image, *, name: str | None = None, max_pixels: int = MAX_PIXELS, thicken: bool = True
) -> torch.Tensor:
    """Turn one user image of a single digit into an MNIST-style ``uint8`` tensor ``[1, 28, 28]``.

    ``image``: a path, bytes, binary file object, PIL image, NumPy array or tensor (``[H, W]``,
    ``[H, W, C]`` or ``[C, H, W]``; uint8 0..255 or float 0..1), any size, RGB/RGBA/L/16-bit,
    light-on-dark or dark-on-light. ``name`` labels error messages (defaults to the path).
    Returns white ink on black, the digit scaled to fit 20×20 and centred by centre of mass.
    Raises :class:`BlankImageError` when there is no digit, :class:`ImageTooLargeError` above
    ``max_pixels``, :class:`DataError` when the file cannot be read.
    """
    label = _label(image, name)
    gray = load_gray(image, name=name, max_pixels=max_pixels)
    bg, sigma = _fit_background(gray)
    resid = gray - bg
    # polarity: the ink is the heavier tail beyond the noise, darker (paper) or lighter (MNIST)
    dark = float(np.maximum(-resid - 3 * sigma, 0).sum())  # np.clip(x, 0, None) is np.maximum(x, 0)
    light = float(np.maximum(resid - 3 * sigma, 0).sum())
    ink = np.maximum(-resid if dark > light else resid, 0.0)
    if sigma > 0.02 and min(ink.shape) >= 32:
        ink = _median3(ink)
        sigma = sigma / 1.5  # a 3×3 median reduces Gaussian noise roughly by this much
    contrast = float(ink.max())
    if contrast < max(MIN_CONTRAST, 6.0 * sigma):
        raise BlankImageError(f"{label}: no digit found (the image is blank or nearly uniform)")
    thr = max(3.0 * sigma, 0.12 * contrast)
    strong = ink[ink > thr]
    peak = float(np.percentile(strong, 80)) if strong.size else contrast
    peak = max(peak, thr + 1e-6)
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
    small = np.asarray(
        Image.fromarray(crop.astype(np.float32), mode="F").resize((nw, nh), resample), dtype=np.float64
    ).clip(0, 1)
    mass = small.sum()
    if mass <= 0:
        raise BlankImageError(f"{label}: no digit found")
    cy = float((small.sum(axis=1) * np.arange(nh)).sum() / mass)
    cx = float((small.sum(axis=0) * np.arange(nw)).sum() / mass)
    # integer translation putting the centre of mass at (14, 14), clamped so nothing is cut off
    oy = int(np.clip(round(CENTRE - cy), 0, 28 - nh))
    ox = int(np.clip(round(CENTRE - cx), 0, 28 - nw))
    out = np.zeros((28, 28), dtype=np.float64)
    out[oy : oy + nh, ox : ox + nw] = small
    return torch.from_numpy(np.round(out * 255.0).astype(np.uint8)).unsqueeze(0)
