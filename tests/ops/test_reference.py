"""The loop teaching references (corr2d, LoopConv2d with bias [C, 1], LoopPool2d) against PyTorch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lenetlab.ops import LoopConv2d, LoopLeNet, LoopPool2d, corr2d


def test_corr2d_matches_the_textbook_example_and_torch():
    X = torch.arange(9.0).view(3, 3)
    K = torch.arange(4.0).view(2, 2)
    assert torch.equal(corr2d(X, K), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))  # d2l's worked example
    X, K = torch.randn(6, 7), torch.randn(3, 2)
    torch.testing.assert_close(corr2d(X, K), F.conv2d(X[None, None], K[None, None])[0, 0])


def test_corr2d_rejects_bad_shapes():
    with pytest.raises(ValueError, match="larger than the input"):
        corr2d(torch.randn(2, 2), torch.randn(3, 3))
    with pytest.raises(ValueError, match="2-D"):
        corr2d(torch.randn(1, 2, 2), torch.randn(1, 1))


@pytest.mark.parametrize(
    "cin, cout, k, stride, padding", [(1, 2, 3, 1, 0), (3, 2, (3, 2), (2, 1), 1), (2, 3, 2, 2, (0, 2))]
)
def test_loop_conv_matches_torch_forward_and_backward(cin, cout, k, stride, padding):
    conv = LoopConv2d(cin, cout, k, stride, padding, init="torch")
    assert conv.bias.shape == (cout, 1)
    x = torch.randn(2, cin, 7, 6, requires_grad=True)
    ours = conv(x)
    theirs = F.conv2d(x, conv.weight, conv.bias.view(-1), stride, padding)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(theirs)
    for a, b in zip(
        torch.autograd.grad(ours, (x, conv.weight, conv.bias), g),
        torch.autograd.grad(theirs, (x, conv.weight, conv.bias), g),
    ):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_loop_conv_seed_initialisation_and_dtype():
    conv = LoopConv2d(2, 3, 3)
    assert torch.equal(conv.weight, torch.ones(3, 2, 3, 3)) and torch.equal(conv.bias, torch.zeros(3, 1))
    conv = conv.double()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    assert conv(x).dtype == torch.float64
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, conv.bias.view(-1)))


@pytest.mark.parametrize("mode, fn", [("max", F.max_pool2d), ("avg", F.avg_pool2d)])
@pytest.mark.parametrize("size, stride", [((2, 2), 2), ((3, 2), (1, 2)), (2, 1)])
def test_loop_pool_matches_torch(mode, fn, size, stride):
    x = torch.randn(3, 2, 7, 6, requires_grad=True)
    ours, theirs = LoopPool2d(size, mode, stride)(x), fn(x, size, stride)
    torch.testing.assert_close(ours, theirs)
    g = torch.randn_like(theirs)
    torch.testing.assert_close(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(theirs, x, g)[0])


def test_loop_pool_is_per_sample_unlike_the_seed_bug():
    x = torch.zeros(2, 1, 2, 2)
    x[0, 0, 0, 0] = 5.0
    assert LoopPool2d((2, 2), "max", 2)(x).flatten().tolist() == [5.0, 0.0]


def test_loop_layers_reject_bad_settings():
    with pytest.raises(ValueError, match="mode"):
        LoopPool2d(mode="median")
    with pytest.raises(ValueError, match="stride"):
        LoopConv2d(1, 1, 3, stride=0)
    with pytest.raises(ValueError, match="larger than the padded input"):
        LoopConv2d(1, 1, 5)(torch.randn(1, 1, 3, 3))
    with pytest.raises(ValueError, match="expected"):
        LoopConv2d(2, 1, 3)(torch.randn(1, 1, 5, 5))


def test_loop_lenet_shapes_and_parameter_count():
    net = LoopLeNet()
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in net.parameters()) == 61706  # NNDL's count
