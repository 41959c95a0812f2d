"""The fast preprocessing gives bit-identical tensors (or the same one-line error) as the straightforward
reference it replaced (tests/preprocess_reference.py): on MNIST digits, rendered and drawn digits, and
hostile shapes, sizes, modes and polarities."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

import preprocess_reference as reference
from helpers import render_digit
from lenetlab.data import images
from lenetlab.errors import DataError


def _outcome(fn, image):
    try:
        return fn(image, name="x").numpy()
    except DataError as e:
        return f"{type(e).__name__}: {e}"


def _same(image) -> None:
    fast, ref = _outcome(images.preprocess_image, image), _outcome(reference.preprocess_image, image)
    if isinstance(ref, str):
        assert fast == ref
    else:
        assert isinstance(fast, np.ndarray) and fast.dtype == ref.dtype and np.array_equal(fast, ref)


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


def _canvas(ink: int = 255, paper: int = 0, size: int = 280) -> Image.Image:
    """An antialiased 7 as the draw-a-digit page sends it: drawn at 4x and reduced, RGBA."""
    big = Image.new("L", (4 * size, 4 * size), paper)
    ImageDraw.Draw(big).line([(400, 240), (720, 240), (560, 880)], fill=ink, width=72, joint="curve")
    return big.resize((size, size), Image.Resampling.LANCZOS).convert("RGBA")


def _hostile() -> dict:
    rng = np.random.default_rng(0)
    sparse = Image.new("L", (3000, 3000), 0)
    ImageDraw.Draw(sparse).line([(1400, 900), (1500, 2100)], fill=255, width=3)
    palette = _drawn("RGB", (255, 255, 255), (0, 0, 0), 18).convert("P")
    sixteen = Image.fromarray(np.asarray(_drawn("L", 255, 0, 18), dtype=np.uint16) * 257)  # mode I;16
    seven = np.asarray(_canvas())[..., 0]
    faint = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(faint).line([(90, 60), (190, 60), (130, 230)], fill=(0, 0, 0, 40), width=18)
    gradient = np.clip(np.add.outer(np.arange(280), np.arange(280)) / 560 * 200 + 30 - seven * 0.4, 0, 255)
    half = np.zeros((100, 100), np.uint8)
    half[:, :50] = 255
    return {
        "1x1": Image.new("L", (1, 1), 255),
        "2x2 ink": np.array([[0, 255], [255, 0]], np.uint8),
        "1x5000": Image.new("L", (5000, 1), 255),
        "5000x1 stroke": np.pad(np.full((1, 40), 255, np.uint8), ((0, 0), (2000, 2960))),
        "3x900 stroke": np.pad(np.full((1, 300), 255, np.uint8), ((1, 1), (300, 300))),
        "900x3 stroke": np.pad(np.full((300, 1), 255, np.uint8), ((300, 300), (1, 1))),
        "all black": Image.new("L", (280, 280), 0),
        "all white": Image.new("L", (280, 280), 255),
        "one pixel": np.pad(np.full((1, 1), 255, np.uint8), 139),
        "four pixels": np.pad(np.full((2, 2), 255, np.uint8), 139),
        "speck in a corner": np.pad(np.full((3, 3), 255, np.uint8), ((0, 277), (277, 0))),
        "half black half white": half,
        "uniform noise": (rng.random((280, 280)) * 255).astype(np.uint8),
        "3000x3000 sparse": sparse,
        "RGBA canvas": _drawn("RGBA", (0, 0, 0, 255), (0, 0, 0, 0), 18),
        "RGBA faint strokes": faint,
        "LA canvas": _drawn("LA", (255, 255), (0, 0), 18),
        "palette": palette,
        "palette with transparency": _png(_drawn("RGBA", (0, 0, 0, 255), (255, 255, 255, 0), 18).convert("P")),
        "16-bit": sixteen,
        "32-bit I": Image.fromarray(np.asarray(_drawn("L", 255, 0, 18), dtype=np.int32) * 100),
        "float F": Image.fromarray(np.asarray(_drawn("L", 255, 0, 18), dtype=np.float32) / 255),
        "1-bit": _drawn("1", 1, 0, 18),
        "CMYK": _drawn("CMYK", (0, 0, 0, 255), (0, 0, 0, 0), 18),
        "thin pen": _drawn("L", 0, 255, 2, 400),
        "thin pen inverted": _drawn("L", 255, 0, 2, 400),
        "drawn png white on black": _png(_drawn("RGBA", (255, 255, 255, 255), (0, 0, 0, 255), 18)),
        "drawn png black on white": _png(_drawn("L", 0, 255, 12)),
        "page canvas png": _png(_canvas()),
        "page canvas png inverted": _png(_canvas(0, 255)),
        "page canvas 28x28": _canvas(size=28),
        "canvas on a lighting gradient": gradient.astype(np.uint8),
        "float array 0..1": np.asarray(_drawn("L", 255, 0, 18), np.float32) / 255,
        "bool array": np.asarray(_drawn("L", 255, 0, 18)) > 127,
        "tensor CHW": torch.from_numpy(np.asarray(_drawn("RGB", (0, 0, 0), (255, 255, 255), 18)).copy()).permute(
            2, 0, 1
        ),
        "jpeg photo": _jpeg(render_digit(seven[::10, ::10], photo=True, dark_on_light=True, size=200)),
    }


def _jpeg(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


HOSTILE = _hostile()


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_and_drawn_images_match_the_reference(case):
    _same(HOSTILE[case])


def test_subset_digits_and_renderings_match_the_reference(subset):
    xs = subset.test.x[:60, 0].numpy()
    for x in xs:
        _same(x)
        _same(255 - x)  # inverted polarity
    for i, d in enumerate(xs[:12]):
        _same(render_digit(d, canvas=(300, 340), dark_on_light=i % 2 == 1, photo=i % 3 == 2, size=60 + 15 * i, seed=i))


def test_normalise_is_the_second_stage():
    """``preprocess_image`` is ``normalise(load_gray(...))`` as a tensor ``[1, 28, 28]``; an 8-bit array goes
    to ``normalise`` as it is (a JSON body's pixels need no PIL image)."""
    png = _png(_canvas())
    x = images.normalise(images.load_gray(png))
    assert x.dtype == np.uint8 and x.shape == (28, 28)
    assert torch.equal(images.preprocess_image(png), torch.from_numpy(x)[None])
    pixels = x[::-1].copy()
    assert np.array_equal(images.normalise(pixels), images.preprocess_image(Image.fromarray(pixels, "L"))[0].numpy())


@pytest.mark.parametrize("k", [3, 5, 9, 15, 31])
def test_dilation_equals_pils_max_filter(k):
    rng = np.random.default_rng(k)
    for shape in [(1, 1), (1, 40), (7, 3), (60, 45)]:
        a = rng.random(shape) * (rng.random(shape) > 0.6)
        pil = reference._rank_filter(np.pad(a, k // 2), ImageFilter.MaxFilter(k))
        assert np.array_equal(images._dilate(a, k), pil)
