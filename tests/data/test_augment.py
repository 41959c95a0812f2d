"""Batch augmentation (lenetlab.data.augment): random affine maps and elastic distortions."""

from __future__ import annotations

import pytest
import torch

from lenetlab.data.augment import (
    PRESETS,
    Augment,
    Augmenter,
    build_augment,
)
from lenetlab.data.transforms import prepare
from lenetlab.errors import ConfigError


def _seeded(name: str, **overrides):
    """``build_augment`` with torch's global RNG seeded to 0 (the distortions below are then fixed)."""
    torch.manual_seed(0)
    return build_augment(name, **overrides)


@pytest.fixture(scope="module")
def batch(subset):
    return prepare(subset.train.x[:32], subset.input_spec), subset.train.y[:32].clone()


@pytest.mark.parametrize("name", ["affine", "elastic", "affine+elastic"])
def test_shapes_dtype_and_change(batch, name):
    x, _ = batch
    aug = _seeded(name)
    out = aug(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert not torch.equal(out, x)
    assert torch.isfinite(out).all()
    # background stays background: normalised values stay within the input's range (bilinear)
    assert out.min() >= x.min() - 1e-5 and out.max() <= x.max() + 1e-5
    # the digit is moved/bent, not erased: ink mass stays within a reasonable band
    ink_in = (x - x.min()).sum(dim=(1, 2, 3))
    ink_out = (out - x.min()).sum(dim=(1, 2, 3))
    assert ((ink_out / ink_in) > 0.5).all() and ((ink_out / ink_in) < 2.0).all()


def test_determinism_with_a_seed(batch):
    x, _ = batch
    a1, a2 = build_augment("affine+elastic"), build_augment("affine+elastic")
    torch.manual_seed(7)
    first = a1(x)
    torch.manual_seed(7)
    assert torch.equal(first, a2(x))
    assert not torch.equal(first, a1(x))  # the stream moves on
    torch.manual_seed(8)
    assert not torch.equal(first, build_augment("affine+elastic")(x))


def test_global_rng_variant_follows_torch_manual_seed(batch):
    x, _ = batch
    aug = build_augment("affine")
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    assert torch.equal(a, aug(x))


def test_rng_state_resumes_the_stream(batch):
    """What a resumed run relies on: the global RNG state saved in last.pt gives the same distortions."""
    x, _ = batch
    aug = build_augment("elastic")
    torch.manual_seed(1)
    aug(x)
    state = torch.get_rng_state()
    expected = aug(x)
    torch.set_rng_state(state)
    assert torch.equal(build_augment("elastic")(x), expected)


def test_identity_when_disabled(batch):
    x, _ = batch
    assert build_augment("none") is None
    assert build_augment("affine", rotate=0, shift=0, scale=0, squeeze=0, shear=0) is None
    off = Augmenter(Augment(rotate=10, p=0.0))
    assert off(x) is x
    assert Augmenter(Augment())(x) is x


def test_zero_ranges_are_an_exact_identity_warp(batch):
    # an enabled elastic with alpha tiny and no affine: grid_sample at pixel centres reproduces x
    x, _ = batch
    torch.manual_seed(0)
    aug = Augmenter(Augment(elastic_alpha=1e-9))
    assert torch.allclose(aug(x), x, atol=1e-4)


def test_labels_unchanged_and_images_stay_recognisable(batch, digit_ckpt):
    """Augmentation takes only images: a trained model still reads most distorted digits correctly."""
    from lenetlab.models import build_model, load_checkpoint

    x, y = batch
    y_before = y.clone()
    model = build_model(load_checkpoint(digit_ckpt))
    out = _seeded("affine")(x)
    assert torch.equal(y, y_before)
    with torch.no_grad():
        acc = (model(out).argmax(1) == y).float().mean().item()
    assert acc >= 0.8


def test_probability_p_leaves_some_images_untouched(batch):
    x, _ = batch
    out = _seeded("affine", p=0.5)(x)
    same = [(torch.allclose(o, i, atol=1e-5)) for o, i in zip(out, x)]
    assert 0 < sum(same) < len(same)


def test_non_square_and_other_dtypes(batch):
    x = torch.rand(4, 3, 20, 36, dtype=torch.float64)
    out = _seeded("affine+elastic")(x)
    assert out.shape == x.shape and out.dtype == torch.float64
    xb = batch[0][:4].to(torch.bfloat16)
    assert _seeded("affine")(xb).dtype == torch.bfloat16


def test_pure_shift_moves_the_image(batch):
    x, _ = batch
    torch.manual_seed(0)
    aug = Augmenter(Augment(shift=0.2))
    out = aug(x[:8])
    com_in = (x[:8] - x.min()).sum(dim=(1, 2)).argmax(dim=-1).float()
    com_out = (out - x.min()).sum(dim=(1, 2)).argmax(dim=-1).float()
    assert (com_in != com_out).any()


@pytest.mark.parametrize(
    "kw, pattern",
    [
        ({"name": "warp"}, "field 'augment' must be one of"),
        ({"rotation": 5}, "unknown key 'rotation'"),
        ({"rotate": -5}, "non-negative"),
        ({"rotate": "5"}, "non-negative"),
        ({"p": 2}, "'p' must be in"),
        ({"scale": 1.5}, "below 1"),
    ],
)
def test_bad_settings_raise_config_error(kw, pattern):
    name = kw.pop("name", "affine")
    with pytest.raises(ConfigError, match=pattern):
        build_augment(name, **kw)


def test_presets_match_run_config_choices():
    from dataclasses import fields

    from lenetlab.train.config import RunConfig

    choices = next(f for f in fields(RunConfig) if f.name == "augment").metadata["choices"]
    assert set(choices) == set(PRESETS)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_same_shapes_and_seeded(batch):
    x = batch[0].cuda()
    a, b = build_augment("affine+elastic"), build_augment("affine+elastic")
    torch.cuda.manual_seed(5)
    out = a(x)
    assert out.device == x.device and out.shape == x.shape
    torch.cuda.manual_seed(5)
    assert torch.equal(out, b(x))
    torch.cuda.manual_seed(1)
    g1 = build_augment("elastic")(x)
    torch.cuda.manual_seed(1)
    assert torch.equal(g1, build_augment("elastic")(x))


def test_tta_views_shift_by_one_pixel_and_repeat_the_edge():
    from lenetlab.data.augment import TTA_SHIFTS, tta_views

    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.uint8).view(2, 3, 4, 5)
    views = tta_views(x)
    assert len(views) == len(TTA_SHIFTS) and views[0] is x
    assert all(v.shape == x.shape and v.dtype == x.dtype for v in views)
    right, left, down, up = views[1:]
    assert torch.equal(right[..., 1:], x[..., :-1]) and torch.equal(right[..., 0], x[..., 0])
    assert torch.equal(left[..., :-1], x[..., 1:]) and torch.equal(left[..., -1], x[..., -1])
    assert torch.equal(down[..., 1:, :], x[..., :-1, :]) and torch.equal(down[..., 0, :], x[..., 0, :])
    assert torch.equal(up[..., :-1, :], x[..., 1:, :])


def test_predictor_tta_is_the_mean_over_the_views(digit_ckpt, subset):
    import numpy as np

    from lenetlab.data.augment import tta_views
    from lenetlab.inference.predictor import load_predictor

    p = load_predictor(digit_ckpt, device="cpu")
    x = subset.test.x[:50]
    expected = sum(p.predict_proba(v) for v in tta_views(x)) / 5
    np.testing.assert_allclose(p.predict_proba(x, batch_size=16, tta=True), expected, rtol=1e-6, atol=1e-9)
    assert not np.allclose(p.predict_proba(x, tta=True), p.predict_proba(x))
