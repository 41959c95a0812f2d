"""The im2col operators against torch.nn.functional: property tests, gradcheck, invalid settings."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lenetlab.ops import avg_pool2d, batch_norm, conv2d, max_pool2d

SETTINGS = dict(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = dict(atol=1e-5, rtol=1e-5)


def _randn(gen, *shape, dtype=torch.float32, scale=1.0):
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype).requires_grad_()


def _grads(out, inputs, grad_out):
    return torch.autograd.grad(out, [t for t in inputs if t is not None], grad_out)


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    stride = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    pad_kind = draw(st.sampled_from(["int", "tuple", "valid", "same"] if (sh, sw) == (1, 1) else ["int", "tuple"]))
    if pad_kind == "int":
        padding = draw(st.integers(0, 2))
        ph = pw = padding
    elif pad_kind == "tuple":
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        ph, pw = padding
    else:
        padding, ph, pw = pad_kind, 0, 0
    # smallest input the (dilated) kernel fits in, then a few more pixels
    h = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 5))
    w = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 5))
    return dict(
        n=draw(st.integers(1, 3)),
        c=cg * groups,
        o=og * groups,
        h=h,
        w=w,
        k=(kh, kw),
        stride=stride,
        padding=padding,
        dilation=(dh, dw),
        groups=groups,
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@settings(**SETTINGS)
@given(conv_cases())
def test_conv2d_matches_torch_forward_and_gradients(case):
    gen = torch.Generator().manual_seed(case["seed"])
    fan_in = case["c"] // case["groups"] * case["k"][0] * case["k"][1]
    x = _randn(gen, case["n"], case["c"], case["h"], case["w"])
    weight = _randn(gen, case["o"], case["c"] // case["groups"], *case["k"], scale=1 / math.sqrt(fan_in))
    bias = _randn(gen, case["o"]) if case["bias"] else None
    args = (case["stride"], case["padding"], case["dilation"], case["groups"])
    ours = conv2d(x, weight, bias, *args)
    with warnings.catch_warnings():  # torch warns about its own copy for even kernels with 'same'
        warnings.simplefilter("ignore", UserWarning)
        theirs = F.conv2d(x, weight, bias, *args)
    torch.testing.assert_close(ours, theirs, **TOL)
    grad_out = torch.randn(theirs.shape, generator=gen)
    for a, b in zip(_grads(ours, (x, weight, bias), grad_out), _grads(theirs, (x, weight, bias), grad_out)):
        torch.testing.assert_close(a, b, **TOL)


@st.composite
def pool_cases(draw, dilation: bool):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    padding = ph if ph == pw and draw(st.booleans()) else (ph, pw)
    h = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 5))
    w = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 5))
    kernel = kh if kh == kw and draw(st.booleans()) else (kh, kw)
    return dict(
        shape=(draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w),
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=(dh, dw),
        ceil_mode=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@settings(**SETTINGS)
@given(pool_cases(dilation=True))
def test_max_pool2d_matches_torch(case):
    gen = torch.Generator().manual_seed(case["seed"])
    x = _randn(gen, *case["shape"])
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"], ceil_mode=case["ceil_mode"])
    theirs, t_idx = F.max_pool2d(x, case["kernel"], return_indices=True, **kw)
    if not torch.isfinite(theirs).all():  # a window entirely in the padding: nothing to compare
        return
    ours, o_idx = max_pool2d(x, case["kernel"], return_indices=True, **kw)
    torch.testing.assert_close(ours, theirs, **TOL)
    assert torch.equal(o_idx, t_idx)
    grad_out = torch.randn(theirs.shape, generator=gen)
    torch.testing.assert_close(_grads(ours, (x,), grad_out)[0], _grads(theirs, (x,), grad_out)[0], **TOL)


@settings(**SETTINGS)
@given(pool_cases(dilation=False), st.booleans(), st.one_of(st.none(), st.integers(1, 5)))
def test_avg_pool2d_matches_torch(case, count_include_pad, divisor_override):
    gen = torch.Generator().manual_seed(case["seed"])
    x = _randn(gen, *case["shape"])
    kw = dict(
        stride=case["stride"],
        padding=case["padding"],
        ceil_mode=case["ceil_mode"],
        count_include_pad=count_include_pad,
        divisor_override=divisor_override,
    )
    ours, theirs = avg_pool2d(x, case["kernel"], **kw), F.avg_pool2d(x, case["kernel"], **kw)
    torch.testing.assert_close(ours, theirs, **TOL)
    grad_out = torch.randn(theirs.shape, generator=gen)
    torch.testing.assert_close(_grads(ours, (x,), grad_out)[0], _grads(theirs, (x,), grad_out)[0], **TOL)


@settings(**SETTINGS)
@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.sampled_from([(), (3,), (2, 3)]),
    st.booleans(),
    st.booleans(),
    st.floats(0.0, 1.0),
    st.sampled_from([1e-5, 1e-3]),
    st.integers(0, 2**31 - 1),
)
def test_batch_norm_matches_torch(n, c, spatial, training, affine, momentum, eps, seed):
    if training and n * math.prod(spatial) < 2:
        n = 2
    gen = torch.Generator().manual_seed(seed)
    x = _randn(gen, n, c, *spatial)
    weight, bias = (_randn(gen, c), _randn(gen, c)) if affine else (None, None)
    stats = torch.randn(c, generator=gen), torch.rand(c, generator=gen) + 0.5
    ours_stats, theirs_stats = [t.clone() for t in stats], [t.clone() for t in stats]
    ours = batch_norm(x, *ours_stats, weight, bias, training, momentum, eps)
    theirs = F.batch_norm(x, *theirs_stats, weight, bias, training, momentum, eps)
    torch.testing.assert_close(ours, theirs, **TOL)
    for a, b in zip(ours_stats, theirs_stats):  # running statistics updated in place alike
        torch.testing.assert_close(a, b, **TOL)
    grad_out = torch.randn(theirs.shape, generator=gen)
    for a, b in zip(_grads(ours, (x, weight, bias), grad_out), _grads(theirs, (x, weight, bias), grad_out)):
        torch.testing.assert_close(a, b, **TOL)


def test_batch_norm_without_running_stats_in_training():
    x = torch.randn(4, 3, 2, 2)
    torch.testing.assert_close(batch_norm(x, None, None, training=True), F.batch_norm(x, None, None, training=True))


def test_fp64_outputs_stay_fp64_and_match_tightly():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 9, 9, generator=gen, dtype=torch.float64)
    w = torch.randn(6, 2, 3, 3, generator=gen, dtype=torch.float64)
    out = conv2d(x, w, None, 2, 1, 1, 2)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, F.conv2d(x, w, None, 2, 1, 1, 2), atol=1e-12, rtol=1e-12)


def test_unbatched_input_and_batch_sizes():
    w = torch.randn(5, 3, 3, 3)
    for n in (1, 7, 33):
        x = torch.randn(n, 3, 8, 8)
        torch.testing.assert_close(conv2d(x, w), F.conv2d(x, w), **TOL)
    x3 = torch.randn(3, 8, 8)
    torch.testing.assert_close(conv2d(x3, w), F.conv2d(x3, w), **TOL)
    torch.testing.assert_close(max_pool2d(x3, 2), F.max_pool2d(x3, 2))
    torch.testing.assert_close(avg_pool2d(x3, 3, 2, 1), F.avg_pool2d(x3, 3, 2, 1))


# ----------------------------------------------------------------------------- gradcheck (fp64)
def _d(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).requires_grad_()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(stride=2, padding=1),
        dict(stride=(1, 2), padding=(2, 0), dilation=2),
        dict(groups=2, padding="same"),
    ],
)
def test_conv2d_gradcheck(kwargs):
    groups = kwargs.get("groups", 1)
    x, w, b = _d(2, 2, 6, 5), _d(2, 2 // groups, 3, 2, seed=1), _d(2, seed=2)
    assert torch.autograd.gradcheck(lambda *t: conv2d(*t, **kwargs), (x, w, b), fast_mode=True)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
        dict(kernel_size=(2, 3), dilation=2, padding=(1, 0)),
    ],
)
def test_max_pool2d_gradcheck(kwargs):
    assert torch.autograd.gradcheck(lambda t: max_pool2d(t, **kwargs), (_d(1, 2, 7, 6),), fast_mode=True)


@pytest.mark.parametrize(
    "kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)]
)
def test_avg_pool2d_gradcheck(kwargs):
    assert torch.autograd.gradcheck(lambda t: avg_pool2d(t, **kwargs), (_d(1, 2, 7, 6),), fast_mode=True)


def test_batch_norm_gradcheck():
    x, w, b = _d(4, 3, 2, 2), _d(3, seed=1), _d(3, seed=2)
    assert torch.autograd.gradcheck(lambda *t: batch_norm(t[0], None, None, t[1], t[2], training=True), (x, w, b))
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *t: batch_norm(t[0], rm, rv, t[1], t[2]), (x, w, b))


def test_double_backward_through_conv_is_refused_not_wrong():
    x, w = _d(1, 1, 4, 4), _d(1, 1, 2, 2, seed=1)
    (gx,) = torch.autograd.grad(conv2d(x, w).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        gx.sum().backward()


# ----------------------------------------------------------------------------- invalid settings
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x, w: conv2d(x, torch.randn(2, 3, 9, 9)), "larger than the padded input"),
        (lambda x, w: conv2d(x, torch.randn(2, 3, 11, 11), padding=1), "larger than the padded input"),
        (lambda x, w: conv2d(x, torch.randn(2, 3, 5, 5), dilation=2), "larger than the padded input"),
        (lambda x, w: conv2d(torch.randn(1, 3, 8, 8), torch.randn(4, 1, 3, 3), groups=2), "divisible by groups"),
        (lambda x, w: conv2d(torch.randn(1, 4, 8, 8), torch.randn(3, 2, 3, 3), groups=2), "divisible by groups"),
        (lambda x, w: conv2d(x, w, stride=0), "stride must be positive"),
        (lambda x, w: conv2d(x, w, stride=(1, -1)), "stride must be positive"),
        (lambda x, w: conv2d(x, w, dilation=0), "dilation must be positive"),
        (lambda x, w: conv2d(x, w, padding=-1), "non-negative"),
        (lambda x, w: conv2d(x, w, padding="full"), "padding must be"),
        (lambda x, w: conv2d(x, w, stride=2, padding="same"), "'same'"),
        (lambda x, w: conv2d(x, w, groups=0), "groups must be a positive int"),
        (lambda x, w: conv2d(x, torch.randn(2, 2, 3, 3)), "expects 2"),
        (lambda x, w: conv2d(x, w[0]), "4-D"),
        (lambda x, w: conv2d(x[0, 0], w), r"\[N, C, H, W\]"),
        (lambda x, w: conv2d(x, w, torch.randn(3)), "bias must have shape"),
        (lambda x, w: conv2d(x.double(), w), "share a dtype"),
        (lambda x, w: conv2d(x, w, stride=(1, 2, 3)), "pair of ints"),
        (lambda x, w: max_pool2d(x, 9), "larger than the padded input"),
        (lambda x, w: max_pool2d(x, 2, stride=0), "stride must be positive"),
        (lambda x, w: max_pool2d(x, 0), "kernel_size must be positive"),
        (lambda x, w: max_pool2d(x, 2, padding=2), "at most half"),
        (lambda x, w: avg_pool2d(x, 9), "larger than the padded input"),
        (lambda x, w: avg_pool2d(x, 3, stride=-1), "stride must be positive"),
        (lambda x, w: avg_pool2d(x, 2, divisor_override=0), "divisor_override"),
        (lambda x, w: batch_norm(torch.randn(1, 3), None, None, training=True), "more than 1 value"),
        (lambda x, w: batch_norm(x, torch.zeros(2), torch.ones(3)), "running_mean must have 3"),
        (lambda x, w: batch_norm(x, None, None, training=False), "required"),
    ],
)
def test_invalid_settings_raise_value_error(call, match):
    x, w = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 3, 3)
    with pytest.raises(ValueError, match=match):
        call(x, w)


def test_conv2d_full_gradcheck_tiny():
    x, w, b = _d(1, 2, 4, 5), _d(2, 1, 2, 3, seed=1), _d(2, seed=2)
    assert torch.autograd.gradcheck(lambda *t: conv2d(*t, stride=(1, 2), padding=1, groups=2), (x, w, b))


def test_max_pool2d_ties_and_nans_route_gradients_like_torch():
    # ReLU outputs are full of tied zeros: the gradient must go to the first maximum, as in torch.
    x = torch.relu(torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))).round()
    x[0, 0, 0, 1] = math.nan
    x[0, 0, 1, 1] = math.nan
    x.requires_grad_()
    g = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)):
        ours, o_idx = max_pool2d(x, return_indices=True, **kwargs)
        theirs, t_idx = F.max_pool2d(x, return_indices=True, **kwargs)
        torch.testing.assert_close(ours, theirs, equal_nan=True)
        assert torch.equal(o_idx, t_idx)
        gg = g[..., : theirs.shape[-2], : theirs.shape[-1]]
        torch.testing.assert_close(torch.autograd.grad(ours, x, gg)[0], torch.autograd.grad(theirs, x, gg)[0])


def test_non_contiguous_and_channels_last_inputs():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 11, 9, generator=gen).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(6, 2, 3, 3, generator=gen).requires_grad_()
    g = torch.randn(3, 6, 5, 6, generator=gen).permute(0, 1, 3, 2)  # a non-contiguous output gradient
    ours, theirs = conv2d(x, w, None, 2, 1, 1, 2), F.conv2d(x, w, None, 2, 1, 1, 2)
    torch.testing.assert_close(ours, theirs, **TOL)
    for a, b in zip(torch.autograd.grad(ours, (x, w), g), torch.autograd.grad(theirs, (x, w), g)):
        torch.testing.assert_close(a, b, **TOL)
    xt = x.detach().transpose(2, 3)  # a transposed view
    torch.testing.assert_close(max_pool2d(xt, 3, 2, 1), F.max_pool2d(xt, 3, 2, 1))
    torch.testing.assert_close(avg_pool2d(xt, 2), F.avg_pool2d(xt, 2))
