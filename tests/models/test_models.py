"""Every registered model: construction, forward shapes, a training step, parameter counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import lenetlab.models as M
from lenetlab.errors import ConfigError, LenetlabError

ALL = [i.name for i in M.list_models()]
SMALL = [i.name for i in M.list_models() if i.input_size[1] <= 32]
FULL = [i.name for i in M.list_models() if i.input_size[1] > 32]
EXPECTED = {
    "lenet5",
    "lenet5-1998",
    "lenet-d2l",
    "lenet5-mini",
    "lenet5-bn",
    "lenet5-modern",
    "lenet5-fast",
    "alexnet",
    "vgg11",
    "nin",
    "googlenet",
    "resnet18",
    "alexnet-small",
    "vgg11-small",
    "nin-small",
    "googlenet-small",
    "resnet18-small",
}


def n_params(model: nn.Module, trainable: bool | None = None) -> int:
    return sum(p.numel() for p in model.parameters() if trainable is None or p.requires_grad == trainable)


def test_registry_has_every_model():
    assert set(ALL) >= EXPECTED
    for name in EXPECTED:
        info = M.model_info(name)
        assert len(info.input_size) == 3 and info.description
    assert all(
        M.model_info(n).input_size[1:] == (224, 224) for n in ("alexnet", "vgg11", "nin", "googlenet", "resnet18")
    )


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        M.register_model("lenet5", input_size=(1, 32, 32), description="dup")(lambda **kw: nn.Identity())


def test_unknown_model_is_a_one_line_error():
    with pytest.raises(LenetlabError) as e:
        M.create("lenet6")
    assert "lenet6" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", SMALL)
def test_forward_shape_small(name):
    info = M.model_info(name)
    model = M.create(name, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(3, *info.input_size))
    assert out.shape == (3, 7) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", FULL)
def test_forward_shape_full_224(name):
    # batch 1 at 224x224: the book's full forms (vgg11 is ~7.6 GFLOPs, keep it to one pass)
    model = M.create(name).eval()
    with torch.no_grad():
        out = model(torch.randn(1, *M.model_info(name).input_size))
    assert out.shape == (1, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", SMALL)
def test_rgb_input(name):
    _, h, w = M.model_info(name).input_size
    model = M.create(name, num_classes=10, in_channels=3).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, h, w)).shape == (2, 10)


@pytest.mark.parametrize("name", SMALL)
def test_one_training_step(name):
    torch.manual_seed(0)
    info = M.model_info(name)
    model = M.create(name).train()
    x, y = torch.randn(8, *info.input_size), torch.arange(8) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    out = model(x)
    loss = model.loss(out, y) if hasattr(model, "loss") else F.cross_entropy(out, y)
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    params = dict(model.named_parameters())
    # every trainable tensor gets a gradient (a conv bias right before batch norm gets ~0: fine)
    assert all(p.grad is not None for p in params.values() if p.requires_grad)
    changed = [k for k, p in params.items() if p.requires_grad and not torch.equal(p, before[k])]
    assert len(changed) >= 0.8 * sum(1 for p in params.values() if p.requires_grad)
    assert all(torch.equal(p, before[k]) for k, p in params.items() if not p.requires_grad)


def test_lenet5_layers_and_params():
    model = M.create("lenet5")
    assert [n for n, _ in model.named_children()] == ["C1", "S2", "C3", "S4", "C5", "F6", "output"]
    assert isinstance(model.S2, nn.MaxPool2d) and isinstance(model.S4, nn.AvgPool2d)
    assert n_params(model) == 61_706
    assert [n_params(getattr(model, n)) for n in ("C1", "C3", "C5", "F6", "output")] == [156, 2416, 48120, 10164, 850]


def test_lenet_d2l_and_mini_params():
    assert n_params(M.create("lenet-d2l")) == 61_706  # 16x5x5 -> 120 keeps LeNet-5's count
    assert n_params(M.create("lenet5-mini")) == 44_426  # 16x4x4 -> 120
    assert 100_000 < n_params(M.create("lenet5-modern")) < 500_000


def test_lenet5_mini_seed_exact_form():
    linear = M.create("lenet5-mini", activation="none").eval()
    relu = M.create("lenet5-mini").eval()
    relu.load_state_dict(linear.state_dict())
    x = torch.randn(2, 1, 28, 28)
    assert not torch.allclose(linear(x), relu(x))
    with pytest.raises(LenetlabError, match="activation"):
        M.create("lenet5-mini", activation="tanh")


def test_lenet_d2l_relu_max_pool_form():
    sigmoid = M.create("lenet-d2l").eval()
    modern = M.create("lenet-d2l", activation="relu", pool="max").eval()
    assert isinstance(modern.S2, torch.nn.MaxPool2d) and isinstance(sigmoid.S2, torch.nn.AvgPool2d)
    modern.load_state_dict(sigmoid.state_dict())  # the same weights: only the functions differ
    x = torch.rand(2, 1, 28, 28)
    assert modern(x).shape == (2, 10) and not torch.allclose(modern(x), sigmoid(x))
    with pytest.raises(LenetlabError, match="activation must be sigmoid or relu"):
        M.create("lenet-d2l", pool="min")


def test_lenet5_fast_pools_before_batch_norm_and_relu():
    """lenet5-fast's layers in order: C1 -> S2 -> BN -> ReLU, so BN sees the pooled 12x12 maps."""
    m = M.create("lenet5-fast", c1=4, c3=8).eval()
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = tuple(output.shape)

        return hook

    for name in ("C1", "S2", "C1_bn", "C3", "S4", "C3_bn", "C5"):
        getattr(m, name).register_forward_hook(record(name))
    m(torch.randn(2, 1, 28, 28))
    assert seen == {
        "C1": (2, 4, 24, 24),
        "S2": (2, 4, 12, 12),
        "C1_bn": (2, 4, 12, 12),
        "C3": (2, 8, 8, 8),
        "S4": (2, 8, 4, 4),
        "C3_bn": (2, 8, 4, 4),
        "C5": (2, 120, 1, 1),
    }
    assert n_params(M.create("lenet5-fast")) == 86_074
    with pytest.raises(ConfigError, match="lenet5-fast: c1 and c3 must be positive"):
        M.create("lenet5-fast", c1=0)
