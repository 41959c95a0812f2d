"""A person's own digit image → an MNIST-style ``uint8 [1, 28, 28]`` tensor: :func:`preprocess_image`, the
one preprocessing of ``lenet predict`` and the web service, and :func:`open_image`, the one way lenetlab
opens an image file (pixel limit :data:`MAX_PIXELS`, checked from the header before any pixel is decoded).

1. grayscale, alpha composited over a background that contrasts with the ink (:func:`load_gray`);
2. uneven lighting removed: a quadratic surface fitted robustly to the background (from the border
   pixels, the ink excluded as outliers) is subtracted; the noise is measured on what remains;
3. polarity: the ink is the heavier tail beyond the noise, darker (then inverted) or lighter;
4. a 3×3 median when noisy, a noise-relative threshold and auto-contrast (stroke cores saturated);
5. thin strokes thickened towards MNIST's stroke width (never thinned);
6. crop to the digit (robust to stray specks), fit 20×20 keeping the aspect ratio, and place it in
   28×28 with its centre of mass at (14, 14).

Steps 2 to 6 are :func:`normalise` (NumPy only).
"""

import functools
import io
import os
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, ImageFilter, ImageOps, UnidentifiedImageError

from lenetlab.errors import DataError, first_line

__all__ = ["BlankImageError", "ImageTooLargeError", "load_gray", "normalise", "open_image", "preprocess_image"]

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


def _check_size(img: Image.Image, label: str, max_pixels: int) -> None:
    """Refuse an image (header read) of more than ``max_pixels`` pixels or of none."""
    w, h = img.size
    if w * h > max_pixels:
        raise _too_large(label, w * h, max_pixels, (w, h))
    if w < 1 or h < 1:
        raise DataError(f"{label}: image has no pixels")


def _open_lazily(fp, label: str, max_pixels: int, formats: tuple[str, ...] | None) -> Image.Image:
    """:func:`PIL.Image.open` (the header only); its errors become one-line :class:`DataError` messages."""
    try:
        with _OPENING, warnings.catch_warnings():  # the warnings filter is process-wide: one opener at a time
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(fp, formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # from the header alone
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_large(label, int(pixels.group(1)) if pixels else max_pixels + 1, max_pixels) from None
    except FileNotFoundError:
        raise DataError(f"{label}: image file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{label}: not a readable image (unrecognised format)") from None
    except Exception as e:  # OSError, SyntaxError, ValueError... from a plugin reading a malformed header
        raise DataError(f"{label}: not a readable image ({first_line(e, 120)})") from None


def open_image(
    source,
    *,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
    formats: tuple[str, ...] | None = None,
    decode: bool = True,
    draft: tuple[str, int] | None = None,
) -> Image.Image:
    """Image ``source`` (a path, bytes or a binary file object); more than ``max_pixels`` pixels (at most
    :data:`MAX_PIXELS`) is an :class:`ImageTooLargeError` before any pixel is decoded, a missing, unidentified
    (not in ``formats``) or corrupt file a one-line :class:`DataError` naming it (``name``, default the path).
    ``decode=False``: the lazily opened image (header only; close it); else the first frame, decoded and
    detached from the file, a JPEG at a reduced scale no smaller than ``draft=(mode, side)``."""
    label, max_pixels = _label(source, name), min(max_pixels, MAX_PIXELS)  # a caller may only be stricter
    if isinstance(source, (str, os.PathLike)):
        if not Path(source).is_file():
            what = "is a folder, not an image file" if Path(source).is_dir() else "image file not found"
            raise DataError(f"{label}: {what}")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise DataError(f"{label}: empty image data")
        source = io.BytesIO(bytes(source))
    elif not hasattr(source, "read"):
        raise DataError(f"{label}: unsupported image type {type(source).__name__}")
    img = _open_lazily(source, label, max_pixels, formats)
    try:
        _check_size(img, label, max_pixels)
    except DataError:
        img.close()
        raise
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
    img = source
    if not isinstance(img, Image.Image):
        img = open_image(source, name=label, max_pixels=max_pixels, decode=False)
    _check_size(img, label, max_pixels)
    try:
        if getattr(img, "format", None) == "JPEG":
            img.draft("RGB", (WORK_SIDE, WORK_SIDE))  # decode large JPEGs at a reduced scale: fast
        img.load()
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        img = _reduce_large(img)
        if img.getexif().get(ExifTags.Base.Orientation, 1) != 1:  # else exif_transpose would copy it
            img = ImageOps.exif_transpose(img)  # phone photos: honour the orientation tag
    except Exception as e:
        raise DataError(f"{label}: not a readable image ({first_line(e)})") from None
    return img


def _plain(img: Image.Image) -> Image.Image:
    """``img`` converted to L, LA, RGB, RGBA or I where it is in another common mode (F, RGBa, La... kept)."""
    mode = img.mode
    if mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
        return img.convert("L" if mode == "1" else "RGB")
    if mode.startswith("I;16"):
        return img.convert("I")
    if mode in ("P", "PA"):
        return img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    return img


def _reduce_large(img: Image.Image) -> Image.Image:
    """Box-average a decoded image by the largest integer factor that keeps its longest side at least
    :data:`WORK_SIDE`, while it is still 8-bit: the float conversion that follows then works on at
    most ~4x the working resolution instead of on every decoded pixel (memory, for large uploads)."""
    k = max(img.size) // WORK_SIDE
    if k < 2:
        return img
    img = _plain(img)
    return (img if img.mode in ("L", "LA", "RGB", "RGBA", "I", "F") else img.convert("RGB")).reduce(k)


def _pil_to_float(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(luminance ``[H, W]``, uint8 or float64 in [0, 1]; alpha ``[H, W]`` in [0, 1], None if (nearly) opaque)."""
    img = _plain(img)
    if img.mode in ("I", "F"):  # 16-bit 0..65535, 8-bit 0..255 held in 32 bits, float 0..255 or 0..1
        a = np.asarray(img, dtype=np.float64)
        top = (65535.0 if a.max() > 255 else 255.0) if img.mode == "I" else (255.0 if a.max() > 1 else 1.0)
        return np.clip(a / top, 0, 1), None
    alpha = None
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        a = np.asarray(img.getchannel("A"))
        if a.min() / 255.0 <= 0.99:  # an alpha that _composite ignores is not converted at all
            alpha = a / 255.0
        img = img.convert("RGB") if img.mode == "RGBa" else img  # premultiplied: undone first
    return np.asarray(img if img.mode == "L" else img.convert("L")), alpha


#: The 256 values of an 8-bit pixel in [0, 1]: ``_LEVELS[u] == u / 255.0``.
_LEVELS = np.arange(256) / 255.0


def _unit(a: np.ndarray) -> np.ndarray:
    """An 8-bit grayscale as float64 in [0, 1] (value / 255); a float one as it is."""
    return a / 255.0 if a.dtype == np.uint8 else a


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
    lum = _unit(lum)
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
    or tensor) as a grayscale ``[H, W]``, alpha composited, reduced so its longest side is at most
    :data:`WORK_SIDE` (antialiased): uint8 (value / 255) for an opaque 8-bit image, else float64 in [0, 1]."""
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
        small = Image.fromarray(_unit(gray).astype(np.float32), mode="F").resize(size, Image.Resampling.BOX)
        gray = np.asarray(small, dtype=np.float64)
    return gray


_RIDGE = 1e-6 * np.eye(6)


@functools.lru_cache(maxsize=8)
def _design(h: int, w: int, step: int) -> tuple[np.ndarray, ...]:
    """The quadratic's design matrix ``[n, 6]`` at every ``step``-th pixel of an ``h``×``w`` image, the mask
    ``[n]`` of a frame about 4% wide around it, and the fit's first round: the frame's design rows and their
    ridged normal matrix (cached per shape: the same for every request's canvas)."""
    sh, sw = len(range(0, h, step)), len(range(0, w, step))
    yy, xx = np.mgrid[0:sh, 0:sw]
    ys, xs = yy.ravel() * step / max(h - 1, 1), xx.ravel() * step / max(w - 1, 1)
    design = np.stack([np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys], axis=1)
    k = max(1, round(0.04 * min(sh, sw)))
    frame = np.ones((sh, sw), dtype=bool)
    if 2 * k < min(sh, sw):
        frame[k:-k, k:-k] = False
    keep = frame.ravel()
    d = np.compress(keep, design, axis=0)
    normal = d.T @ d + _RIDGE
    for a in (design, keep, d, normal):
        a.flags.writeable = False
    return design, keep, d, normal


def _median(x: np.ndarray) -> float:
    """``np.median`` of a 1-D array without NaN, minus its overhead: the same partition and mean of the middle two."""
    k = len(x) // 2
    if len(x) % 2:
        return float(np.partition(x, k)[k])
    p = np.partition(x, (k - 1, k))
    return float((p[k - 1] + p[k]) / 2)


def _percentile80(x: np.ndarray) -> float:
    """``np.percentile(x, 80)`` of a 1-D array without NaN, minus its overhead: the same partition and
    interpolation between the two nearest ranks (NumPy's ``_lerp``)."""
    at = (len(x) - 1) * 0.8
    lo = int(at)
    if lo + 1 >= len(x):
        return float(x.max())
    p = np.partition(x, (lo, lo + 1))
    a, b, t = float(p[lo]), float(p[lo + 1]), at - lo
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def _fit_background(a: np.ndarray) -> tuple[np.ndarray, float]:
    """The 6 coefficients (1, x, y, x², xy, y² on [0, 1]²) of a quadratic background of ``a`` ``[H, W]`` and the
    noise sigma (MAD) of its pixels: fitted from the border frame, then refitted on the pixels within 2.5
    sigma of the surface, so ink of either polarity is left out (a quadratic cannot bend into a stroke)."""
    h, w = a.shape
    step = max(1, max(h, w) // 64)
    design, keep, d, normal = _design(h, w, step)
    v = _unit(a[::step, ::step]).ravel()
    coef = np.zeros(6)
    coef[0] = _median(np.compress(keep, v))
    sigma = 1 / 255
    for i in range(6):
        if np.count_nonzero(keep) < 12:
            break
        if i:
            d = np.compress(keep, design, axis=0)
            normal = d.T @ d + _RIDGE
        # 6×6 normal equations (a small ridge keeps a border-only start well posed)
        coef = np.linalg.solve(normal, d.T @ np.compress(keep, v))
        resid = v - design @ coef
        kept = np.compress(keep, resid)
        sigma = max(1.4826 * _median(np.abs(kept - _median(kept))), 1 / 255)
        keep, was = np.abs(resid) < 2.5 * sigma, keep
        if np.array_equal(keep, was):  # converged: the remaining rounds would repeat this one exactly
            break
    return coef, sigma


def _outliers(gray: np.ndarray, coef: np.ndarray, t: float) -> tuple[int, int, int, int]:
    """The smallest box (top, bottom, left, right) of an 8-bit ``gray`` holding every pixel that may lie more
    than ``t`` from the background ``coef``; outside it no pixel is ink. The surface stays within
    ``|coef[1:]|.sum()`` of ``coef[0]`` on [0, 1]², widened for rounding; the whole image when unsure."""
    h, w = gray.shape
    slack = float(np.abs(coef[1:]).sum())
    slack += 1e-9 * (1 + abs(coef[0]) + slack)
    # the 8-bit levels u with coef[0] + slack - t < u / 255 < coef[0] - slack + t are background
    lo = int(np.searchsorted(_LEVELS, coef[0] + slack - t, side="right"))
    hi = int(np.searchsorted(_LEVELS, coef[0] - slack + t, side="left")) - 1
    if gray.dtype != np.uint8 or lo > hi:
        return 0, h, 0, w
    far = (gray - np.uint8(lo)) > np.uint8(hi - lo)  # below lo wraps around past hi - lo
    rows = np.flatnonzero(far.any(axis=1))
    if not len(rows):
        return 0, 0, 0, 0
    cols = np.flatnonzero(far[rows[0] : rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _residual(a: np.ndarray, coef: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """``a[top:bottom, left:right]`` minus the surface ``coef``, summed term by term in place from a row and
    a column: the same float64 operations per pixel as on full coordinate grids."""
    h, w = a.shape
    X, Y = np.arange(left, right)[None, :] / max(w - 1, 1), np.arange(top, bottom)[:, None] / max(h - 1, 1)
    bg = np.add(coef[0] + coef[1] * X, coef[2] * Y)
    bg += coef[3] * X * X
    bg += np.multiply(coef[4] * X, Y)
    bg += coef[5] * Y * Y
    return np.subtract(_unit(a[top:bottom, left:right]), bg, out=bg)


def _ink(gray: np.ndarray) -> tuple[np.ndarray, float, int, int]:
    """(ink, sigma, top, left): the ink of ``gray`` against its background, positive on the strokes whatever
    their polarity, on the box at (top, left) outside which no pixel is ink above the noise sigma."""
    h, w = gray.shape
    coef, sigma = _fit_background(gray)
    t = 3 * sigma
    noisy = sigma > 0.02 and min(h, w) >= 32
    for box in ((0, h, 0, w) if noisy else _outliers(gray, coef, t), (0, h, 0, w)):
        resid = _residual(gray, coef, *box)
        # polarity: the heavier tail beyond the noise, the sums of max(-r - t, 0) and max(r - t, 0) (as
        # clip(x, 0, inf) for finite x; -t - r is -r - t, as addition commutes)
        tail = np.subtract(-t, resid)
        dark = float(np.clip(tail, 0.0, np.inf, out=tail).sum())
        light = float(np.clip(np.subtract(resid, t, out=tail), 0.0, np.inf, out=tail).sum())
        # a box's sums call it unless too close: then the whole image's, summed in the very same order
        if resid.size == gray.size or dark + light == 0 or abs(dark - light) > 1e-9 * (dark + light):
            break
    if dark > light:
        np.negative(resid, out=resid)
    if noisy:
        return _median3(resid), sigma / 1.5, 0, 0  # a 3×3 median reduces Gaussian noise roughly by this much
    return resid, sigma, box[0], box[2]


def normalise(gray: np.ndarray, label: str = "image", *, thicken: bool = True) -> np.ndarray:
    """Steps 2 to 6 of this module's recipe: ``gray`` ``[H, W]`` (:func:`load_gray`) → MNIST-style ``uint8
    [28, 28]``; :class:`BlankImageError` (naming ``label``) when it holds no digit."""
    ink, sigma, top, left = _ink(gray)
    contrast = float(ink.max(initial=0.0))
    if contrast < max(MIN_CONTRAST, 6.0 * sigma):
        raise BlankImageError(f"{label}: no digit found (the image is blank or nearly uniform)")
    thr = max(3.0 * sigma, 0.12 * contrast)
    peak = max(_percentile80(ink[ink > thr]), thr + 1e-6)
    wide = np.zeros((len(ink), gray.shape[1]))  # whole rows: their sums add in the whole image's order
    v = wide[:, left : left + ink.shape[1]]
    np.clip((ink - thr) / (peak - thr), 0.0, 1.0, out=v)
    if np.count_nonzero(v > 0.5) < max(4, 2e-4 * gray.size):
        raise BlankImageError(f"{label}: no digit found (only a few faint specks)")
    y0, y1, x0, x1 = _bbox(wide, top, gray.shape[0])
    crop = wide[y0 - top : y1 - top, x0:x1]
    if thicken:
        crop = _thicken(crop)
    h, w = crop.shape
    s = 20.0 / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    resample = Image.Resampling.BOX if s < 1 else Image.Resampling.BILINEAR
    small = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize((nw, nh), resample), np.float64)
    small = np.clip(small, 0.0, 1.0)
    mass = small.sum()  # > 0: the crop holds all but 0.4% of a mass over 4 pixels > 0.5
    cy = float((small.sum(axis=1) * np.arange(nh)).sum() / mass)
    cx = float((small.sum(axis=0) * np.arange(nw)).sum() / mass)
    # integer translation putting the centre of mass at (14, 14), clamped so nothing is cut off
    oy = min(max(round(CENTRE - cy), 0), 28 - nh)
    ox = min(max(round(CENTRE - cx), 0), 28 - nw)
    out = np.zeros((28, 28), dtype=np.uint8)
    out[oy : oy + nh, ox : ox + nw] = np.round(small * 255.0)
    return out


def _median3(a: np.ndarray) -> np.ndarray:
    """PIL's 3×3 median of ``a`` clipped to [0, 1], through 8 bits (PIL's float rank filters are slow)."""
    img = Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8), mode="L")
    return np.asarray(img.filter(ImageFilter.MedianFilter(3)), dtype=np.float64) / 255.0


def _bbox(rows: np.ndarray, top: int, height: int, trim: float = 0.002) -> tuple[int, int, int, int]:
    """Bounding box (top, bottom, left, right; inclusive-exclusive) of the ink mass ``rows`` (whole rows from
    ``top`` of an image ``height`` rows tall, zero elsewhere) holding all but ``trim`` of the mass at each
    end, so a few stray specks far from the digit do not stretch the box."""

    def span(profile: np.ndarray) -> tuple[int, int]:
        c = np.cumsum(profile) / profile.sum()
        lo = int(np.searchsorted(c, trim, side="right"))
        hi = int(np.searchsorted(c, 1 - trim, side="left")) + 1
        return lo, max(hi, lo + 1)

    profile = np.zeros(height)
    profile[top : top + len(rows)] = rows.sum(axis=1)
    return span(profile) + span(rows.sum(axis=0))


def _thicken(crop: np.ndarray) -> np.ndarray:
    """Dilate thin strokes of the cropped digit so their width is about :data:`STROKE_FRACTION` of
    its longest side; returns the crop grown by the dilation (or unchanged when thick enough)."""
    ink = np.zeros((crop.shape[0] + 2, crop.shape[1] + 2), dtype=bool)  # padded: the outer edges count
    ink[1:-1, 1:-1] = crop > 0.5
    area = np.count_nonzero(ink)
    if area < 4:
        return crop
    # perimeter ≈ number of ink/background transitions; width ≈ 2 · area / perimeter for a stroke
    perim = np.count_nonzero(ink[1:] != ink[:-1]) + np.count_nonzero(ink[:, 1:] != ink[:, :-1])
    width = 2.0 * area / max(perim, 1)
    side = max(crop.shape)
    k = int(round(STROKE_FRACTION * side - width))
    k = min(k | 1, 2 * (side // 8) + 1)  # odd filter size, bounded
    if k < 3:
        return crop
    return _dilate(crop, k)


def _dilate(a: np.ndarray, k: int) -> np.ndarray:
    """PIL's ``MaxFilter(k)`` of ``a`` ``[H, W]`` in [0, 1] grown by ``k // 2`` zeros on every side, through 8
    bits: two 1-D running maxima (a square's maximum is separable; zeros change no maximum of values >= 0,
    and PIL's repeated edge pixels are already in a clipped window)."""
    q = np.zeros((a.shape[0] + 2 * k - 2, a.shape[1] + 2 * k - 2), dtype=np.uint8)
    q[k - 1 : k - 1 + a.shape[0], k - 1 : k - 1 + a.shape[1]] = np.round(a * 255)
    for _ in range(2):  # rows, then (transposed) columns
        n = len(q) - k + 1
        m = q[:n].copy()
        for i in range(1, k):
            np.maximum(m, q[i : i + n], out=m)
        q = np.ascontiguousarray(m.T)
    return q / 255.0


def preprocess_image(
    image, *, name: str | None = None, max_pixels: int = MAX_PIXELS, thicken: bool = True
) -> torch.Tensor:
    """One image of a digit (anything :func:`load_gray` reads, any size and polarity) as MNIST's white ink on
    black ``uint8 [1, 28, 28]``. ``name`` labels errors (default: the path); :class:`BlankImageError` when
    there is no digit, :class:`ImageTooLargeError` above ``max_pixels``, :class:`DataError` when unreadable."""
    gray = load_gray(image, name=name, max_pixels=max_pixels)
    return torch.from_numpy(normalise(gray, _label(image, name), thicken=thicken)).unsqueeze(0)
