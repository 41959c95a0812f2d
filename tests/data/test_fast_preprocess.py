"""The fast preprocessing gives bit-identical tensors (or the same one-line error) as the straightforward
reference it replaced: PIL's square MaxFilter for thickening, and a background fit that always runs six rounds
with full coordinate grids and an uncached design matrix."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from helpers import render_digit
from lenetlab.data import images
from lenetlab.data.images import preprocess_image
from lenetlab.errors import DataError


def _reference_background(a: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = a.shape
    step = max(1, max(h, w) // 64)
    small = a[::step, ::step]
    yy, xx = np.mgrid[0 : small.shape[0], 0 : small.shape[1]]
    ys, xs = yy.ravel() * step / max(h - 1, 1), xx.ravel() * step / max(w - 1, 1)
    design = np.stack([np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys], axis=1)
    v = small.ravel()
    keep = images._frame(*small.shape).ravel()
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
    bg = coef[0] + coef[1] * X + coef[2] * Y + coef[3] * X * X + coef[4] * X * Y + coef[5] * Y * Y
    return bg, sigma


def _reference_max_filter(a: np.ndarray, k: int) -> np.ndarray:
    return images._rank_filter(a, ImageFilter.MaxFilter(k))


def _outcome(image):
    try:
        return preprocess_image(image, name="x").numpy()
    except DataError as e:
        return f"{type(e).__name__}: {e}"


def _both(image, monkeypatch):
    fast = _outcome(image)
    with monkeypatch.context() as m:
        m.setattr(images, "_fit_background", _reference_background)
        m.setattr(images, "_max_filter", _reference_max_filter)
        ref = _outcome(image)
    return fast, ref


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _drawn(mode: str, ink, paper, width: int, size: int = 280) -> Image.Image:
    im = Image.new(mode, (size, size), paper)
    d = ImageDraw.Draw(im)
    s = size / 280
    d.line([(90 * s, 60 * s), (190 * s, 60 * s), (130 * s, 230 * s)], fill=ink, width=max(1, round(width * s)))
    return im


def _hostile() -> dict:
    sparse = Image.new("L", (3000, 3000), 0)
    ImageDraw.Draw(sparse).line([(1400, 900), (1500, 2100)], fill=255, width=3)
    palette = _drawn("RGB", (255, 255, 255), (0, 0, 0), 18).convert("P")
    sixteen = Image.fromarray(np.asarray(_drawn("L", 255, 0, 18), dtype=np.uint16) * 257)  # mode I;16
    return {
        "1x1": Image.new("L", (1, 1), 255),
        "1x5000": Image.new("L", (5000, 1), 255),
        "5000x1 stroke": np.pad(np.full((1, 40), 255, np.uint8), ((0, 0), (2000, 2960))),
        "all black": Image.new("L", (280, 280), 0),
        "all white": Image.new("L", (280, 280), 255),
        "3000x3000 sparse": sparse,
        "RGBA canvas": _drawn("RGBA", (0, 0, 0, 255), (0, 0, 0, 0), 18),
        "palette": palette,
        "16-bit": sixteen,
        "thin pen": _drawn("L", 0, 255, 2, 400),
        "drawn png white on black": _png(_drawn("RGBA", (255, 255, 255, 255), (0, 0, 0, 255), 18)),
        "drawn png black on white": _png(_drawn("L", 0, 255, 12)),
    }


HOSTILE = _hostile()


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_and_drawn_images_match_the_reference(case, monkeypatch):
    fast, ref = _both(HOSTILE[case], monkeypatch)
    if isinstance(ref, str):
        assert fast == ref
    else:
        assert isinstance(fast, np.ndarray) and fast.dtype == ref.dtype and np.array_equal(fast, ref)


def test_subset_digits_and_renderings_match_the_reference(subset, monkeypatch):
    xs = subset.test.x[:30, 0].numpy()
    cases = list(xs) + [
        render_digit(d, dark_on_light=i % 2 == 1, photo=i % 3 == 2, size=60 + 20 * i) for i, d in enumerate(xs[:8])
    ]
    for x in cases:
        fast, ref = _both(x, monkeypatch)
        assert type(fast) is type(ref) and np.array_equal(fast, ref)


@pytest.mark.parametrize("k", [3, 5, 9, 15, 31])
def test_max_filter_equals_pils(k):
    rng = np.random.default_rng(k)
    for shape in [(1, 1), (1, 40), (7, 3), (60, 45)]:
        a = np.pad(rng.random(shape) * (rng.random(shape) > 0.6), k // 2)
        assert np.array_equal(images._max_filter(a, k), _reference_max_filter(a, k))
