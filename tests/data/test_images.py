"""The shared user-image preprocessing (lenetlab.data.images): MNIST-style 28x28 from any image."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from helpers import render_digit
from lenetlab.data.images import (
    BlankImageError,
    ImageTooLargeError,
    preprocess_image,
)
from lenetlab.errors import DataError


def _corr(a: torch.Tensor, b) -> float:
    return float(np.corrcoef(np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel())[0, 1])


def _com(x: np.ndarray) -> tuple[float, float]:
    x = x.astype(float)
    m = x.sum()
    return (x.sum(1) * np.arange(28)).sum() / m, (x.sum(0) * np.arange(28)).sum() / m


def test_mnist_digits_come_back_nearly_unchanged(subset):
    # an MNIST digit already is what the pipeline makes: it must survive almost as is
    xs = subset.test.x[:40, 0].numpy()
    corrs = [_corr(preprocess_image(x)[0], x) for x in xs]
    assert np.median(corrs) > 0.95
    assert min(corrs) > 0.5


@pytest.mark.parametrize("style", ["light_on_dark", "dark_on_light", "photo"])
def test_upscaled_offcentre_digit_is_cropped_scaled_and_centred(subset, style):
    d = subset.test.x[0, 0].numpy()
    img = render_digit(d, top=15, left=110, size=170, dark_on_light=style == "dark_on_light", photo=style == "photo")
    out = preprocess_image(img)
    assert out.shape == (1, 28, 28) and out.dtype == torch.uint8
    a = out[0].numpy()
    assert a.max() == 255  # auto-contrast: stroke cores saturated like MNIST
    assert a[0].max() == 0 and a[-1].max() == 0  # white ink on black, background black
    rows, cols = np.nonzero(a > 0)
    assert max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) <= 21  # fits 20x20 (+antialias)
    cy, cx = _com(a)
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0
    assert _corr(a, d) > 0.75


def test_both_polarities_give_the_same_image(subset):
    d = subset.test.x[1, 0].numpy()
    light = preprocess_image(render_digit(d, dark_on_light=False))
    dark = preprocess_image(render_digit(d, dark_on_light=True))
    assert (light.int() - dark.int()).abs().max() <= 2


def test_inputs_path_bytes_pil_file_and_tensor_agree(subset, tmp_path):
    img = render_digit(subset.test.x[2, 0].numpy(), dark_on_light=True)
    path = tmp_path / "d.png"
    Image.fromarray(img).save(path)
    ref = preprocess_image(path)
    assert torch.equal(ref, preprocess_image(str(path)))
    assert torch.equal(ref, preprocess_image(path.read_bytes()))
    assert torch.equal(ref, preprocess_image(Image.open(path)))
    with open(path, "rb") as f:
        assert torch.equal(ref, preprocess_image(f))
    assert torch.equal(ref, preprocess_image(torch.from_numpy(img)))
    assert torch.equal(ref, preprocess_image(img.astype(np.float32) / 255))
    rgb = np.stack([img] * 3, axis=-1)
    assert torch.equal(ref, preprocess_image(Image.fromarray(rgb)))
    batch = torch.stack([preprocess_image(p) for p in (path, img)])
    assert batch.shape == (2, 1, 28, 28) and torch.equal(batch[0], ref[0][None])


def test_jpeg_and_16bit_png(subset, tmp_path):
    img = render_digit(subset.test.x[3, 0].numpy(), dark_on_light=True)
    ref = preprocess_image(img)
    buf = io.BytesIO()
    Image.fromarray(img).convert("RGB").save(buf, "JPEG", quality=85)
    assert _corr(preprocess_image(buf.getvalue())[0], ref[0]) > 0.95
    p16 = tmp_path / "d16.png"
    Image.fromarray(img.astype(np.uint16) * 257).save(p16)
    assert _corr(preprocess_image(p16)[0], ref[0]) > 0.98


@pytest.mark.parametrize("ink", [(0, 0, 0, 255), (255, 255, 255, 255)])
def test_rgba_canvas_strokes_on_transparent_background(ink):
    # a browser canvas: strokes on a fully transparent background, ink black or white
    im = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(im).line([(140, 40), (140, 240)], fill=ink, width=20)
    a = preprocess_image(im)[0].numpy()
    rows, cols = np.nonzero(a > 128)
    assert rows.max() - rows.min() >= 17  # a tall stroke: the "1" fills the 20-pixel height
    assert cols.max() - cols.min() <= 6


def test_thin_pen_strokes_are_thickened():
    im = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(im).line([(200, 50), (200, 350)], fill=0, width=2)
    a = preprocess_image(im)[0].numpy()
    assert ((a > 128).sum(axis=1) >= 2).sum() >= 15  # at least 2 px wide over most of its height


def test_specks_far_from_the_digit_do_not_stretch_the_crop(subset):
    d = subset.test.x[4, 0].numpy()
    img = render_digit(d, dark_on_light=True)
    ref = preprocess_image(img)
    dirty = img.copy()
    dirty[5, 5] = dirty[230, 290] = dirty[3, 200] = 0  # three black specks in the corners
    assert _corr(preprocess_image(dirty)[0], ref[0]) > 0.95


@pytest.mark.parametrize("kind", ["white", "black", "grey", "noisy_paper", "transparent", "speck", "faint"])
def test_blank_and_near_blank_images_raise_blank_error(kind):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:200, 0:260]
    img = {
        "white": np.full((60, 60), 255, np.uint8),
        "black": np.zeros((60, 60), np.uint8),
        "grey": np.full((60, 60), 128, np.uint8),
        "noisy_paper": np.clip((0.55 + 0.3 * xx / 260 + rng.normal(0, 0.04, xx.shape)) * 255, 0, 255).astype(np.uint8),
        "transparent": np.zeros((40, 40, 4), np.uint8),
        "speck": np.pad(np.full((2, 2), 255, np.uint8), 120),
        "faint": np.pad(np.full((40, 8), 12, np.uint8), 50),
    }[kind]
    with pytest.raises(BlankImageError, match="no digit found"):
        preprocess_image(img, name=f"{kind}.png")


def test_blank_error_is_a_data_error_naming_the_image():
    with pytest.raises(DataError, match=r"^canvas: no digit found"):
        preprocess_image(np.zeros((28, 28), np.uint8), name="canvas")


def test_unreadable_inputs_raise_one_line_data_errors(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    for src, pattern in [
        (bad, "notes.png: not a readable image"),
        (tmp_path / "missing.png", "missing.png: image file not found"),
        (tmp_path, "is a folder, not an image file"),
        (b"", "empty image data"),
        (b"\x89PNG\r\n\x1a\n garbage", "not a readable image"),
        (np.array([["a", "b"]]), "must hold numbers"),
        (np.zeros((2, 3, 4, 5)), "must be"),
        (object(), "unsupported image type"),
    ]:
        with pytest.raises(DataError, match=pattern) as e:
            preprocess_image(src)
        assert "\n" not in str(e.value)


def test_pixel_limit():
    big = Image.new("L", (2000, 1000), 255)
    with pytest.raises(ImageTooLargeError, match="2000x1000"):
        preprocess_image(big, max_pixels=1_000_000)


def test_large_photo_is_reduced_and_still_read(subset):
    d = subset.test.x[5, 0].numpy()
    img = render_digit(d, canvas=(1500, 2000), top=300, left=700, size=900, photo=True)
    assert _corr(preprocess_image(img)[0], preprocess_image(d)[0]) > 0.8


def test_vignetted_photo_with_a_soft_shadow(subset):
    """Paper brighter in the middle than at the border (vignetting) and a diagonal shadow: the
    border alone would suggest the wrong polarity; the fitted background gets it right."""
    rng = np.random.default_rng(0)
    h, w = 300, 400
    yy, xx = np.mgrid[0:h, 0:w]
    for i in (0, 24):  # 24 is a thin "4": little ink, the hardest case for the polarity decision
        d = subset.test.x[i, 0].numpy()
        ink = np.zeros((h, w))
        ink[60:240, 110:290] = np.asarray(Image.fromarray(d).resize((180, 180), Image.Resampling.BILINEAR)) / 255
        paper = (
            0.85
            - 0.25 * ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / (w / 2) ** 2
            - 0.2 / (1 + np.exp(-(xx + yy - 380) / 25))
        )
        img = paper * (1 - ink) + 0.15 * ink + rng.normal(0, 0.03, (h, w))
        out = preprocess_image((np.clip(img, 0, 1) * 255).astype(np.uint8))
        assert _corr(out[0], preprocess_image(d)[0]) > 0.8


def test_bold_digit_filling_most_of_the_image():
    im = Image.new("L", (120, 120), 255)
    ImageDraw.Draw(im).ellipse([8, 8, 112, 112], outline=0, width=30)  # a fat "0" covering ~60%
    a = preprocess_image(im)[0].numpy()
    assert a[14, 14] < 60 and a[14, 6] > 200  # hollow centre, bright ring: polarity right
