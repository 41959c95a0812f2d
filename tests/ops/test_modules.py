"""nn.Module wrappers: torch-compatible state dicts, outputs and running statistics."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from lenetlab import ops


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: ops.Conv2d(4, 6, 3, 2, 1, groups=2), lambda: nn.Conv2d(4, 6, 3, 2, 1, groups=2)),
        (
            lambda: ops.Conv2d(4, 6, (3, 2), bias=False, dilation=2),
            lambda: nn.Conv2d(4, 6, (3, 2), bias=False, dilation=2),
        ),
        (lambda: ops.Conv2d(4, 4, 3, padding="same"), lambda: nn.Conv2d(4, 4, 3, padding="same")),
    ],
)
def test_conv2d_state_dicts_interchange(ours, theirs):
    a, b = ours(), theirs()
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    x = torch.randn(2, 4, 9, 9)
    a.load_state_dict(b.state_dict())
    torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)
    b.load_state_dict(ours().state_dict())  # and the other way round
    a.load_state_dict(b.state_dict())
    torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)


def test_conv2d_initialisation_matches_torch():
    torch.manual_seed(3)
    a = ops.Conv2d(6, 16, 5)
    torch.manual_seed(3)
    b = nn.Conv2d(6, 16, 5)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_conv2d_rejects_bad_groups():
    with pytest.raises(ValueError, match="divisible by groups"):
        ops.Conv2d(3, 4, 3, groups=2)


def test_pool_modules_match_torch():
    x = torch.randn(2, 3, 9, 8)
    torch.testing.assert_close(ops.MaxPool2d(3, 2, 1, ceil_mode=True)(x), nn.MaxPool2d(3, 2, 1, ceil_mode=True)(x))
    torch.testing.assert_close(ops.AvgPool2d(2)(x), nn.AvgPool2d(2)(x))
    torch.testing.assert_close(
        ops.AvgPool2d(3, 2, 1, count_include_pad=False)(x), nn.AvgPool2d(3, 2, 1, count_include_pad=False)(x)
    )
    out, idx = ops.MaxPool2d(2, return_indices=True)(x)
    ref, ref_idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert torch.equal(out, ref) and torch.equal(idx, ref_idx)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_tracks_like_torch(momentum):
    a, b = ops.BatchNorm2d(3, momentum=momentum), nn.BatchNorm2d(3, momentum=momentum)
    assert a.state_dict().keys() == b.state_dict().keys()
    with torch.no_grad():
        b.weight.uniform_(0.5, 1.5)
        b.bias.uniform_(-1, 1)
    a.load_state_dict(b.state_dict())
    for step in range(3):
        x = torch.randn(4, 3, 5, 5) * (step + 1) + step
        torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)
    for k, v in b.state_dict().items():
        torch.testing.assert_close(a.state_dict()[k], v)
    a.eval(), b.eval()
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)


def test_batchnorm2d_without_running_stats():
    a, b = (
        ops.BatchNorm2d(2, track_running_stats=False, affine=False),
        nn.BatchNorm2d(2, track_running_stats=False, affine=False),
    )
    a.eval(), b.eval()
    x = torch.randn(3, 2, 4, 4)
    torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="4-D"):
        a(torch.randn(3, 2))
