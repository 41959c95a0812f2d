"""The faithful 1998 LeNet-5: parameter counts, C3 table, RBF centres, MAP loss, training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import lenetlab.models as M
from lenetlab.models import lenet1998 as L


def test_parameter_counts_reconcile():
    model = M.create("lenet5-1998")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert trainable == 60_000 and frozen == 840
    per_layer = {
        n: sum(p.numel() for p in getattr(model, n).parameters()) for n in ("C1", "S2", "C3", "S4", "C5", "F6")
    }
    assert per_layer == {"C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 10164}
    # a typical tutorial's torchsummary figures follow from ours: it misses the 22 coefficients and files
    # the 22 subsampling biases and the 840 centres under non-trainable
    assert trainable - 22 - 22 == 59_956 and frozen + 22 == 862 and 59_956 + 862 == 60_818


def test_c3_follows_the_connection_table():
    c3 = M.create("lenet5-1998").C3
    dense = c3.dense_weight().detach()
    assert c3.weight.shape == (60, 5, 5)
    assert ((dense.abs().sum((2, 3)) > 0).T.int() == torch.tensor(L.C3_TABLE)).all()
    x = torch.randn(2, 6, 14, 14)
    torch.testing.assert_close(c3(x), F.conv2d(x, dense, c3.bias), atol=1e-5, rtol=1e-5)
    # the gradient reaches only real connections: a missing kernel cannot be trained into existence
    c3(x).sum().backward()
    assert c3.weight.grad.shape == (60, 5, 5) and c3.weight.grad.abs().sum() > 0


def test_rbf_centres_are_the_digit_bitmaps():
    c = L.digit_centres()
    assert c.shape == (10, 84) and set(c.unique().tolist()) == {-1.0, 1.0}
    zero = c[0].view(12, 7)
    assert zero[0].tolist() == [-1, 1, 1, 1, 1, 1, -1] and zero[4].tolist() == [1, 1, -1, -1, -1, 1, 1]
    model = M.create("lenet5-1998")
    assert torch.equal(model.output.weight, c) and not model.output.weight.requires_grad


def test_outputs_are_negative_squared_distances_and_map_loss():
    torch.manual_seed(0)
    model = M.create("lenet5-1998", j=0.5)
    x = torch.randn(5, 1, 32, 32)
    out = model(x)
    feats = {}
    model.F6.register_forward_hook(lambda m, i, o: feats.setdefault("f6", o))
    model(x)
    f6 = 1.7159 * torch.tanh(2 / 3 * feats["f6"])
    dist = ((f6[:, None, :] - L.digit_centres()[None]) ** 2).sum(-1)
    torch.testing.assert_close(out, -dist, atol=1e-3, rtol=1e-4)
    assert torch.equal(out.argmax(1), dist.argmin(1))
    y = torch.tensor([0, 1, 2, 3, 4])
    expected = (dist[torch.arange(5), y] + torch.log(torch.exp(torch.tensor(-0.5)) + torch.exp(-dist).sum(1))).mean()
    torch.testing.assert_close(model.loss(out, y), expected, atol=1e-4, rtol=1e-5)


def test_map_loss_trains_on_real_digits(subset):
    # 30 Adam steps on 128 embedded MNIST digits: the MAP loss must fall and accuracy rise
    torch.manual_seed(0)
    x = subset.train.x[:128].float() / 255
    x = (F.pad(x, (2, 2, 2, 2)) - 0.1307) / 0.3081  # 28 -> 32 with background 0, normalised
    y = subset.train.y[:128]
    model = M.create("lenet5-1998")
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    first = model.loss(model(x), y).item()
    for _ in range(30):
        opt.zero_grad()
        model.loss(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        out = model(x)
    assert model.loss(out, y).item() < 0.7 * first
    assert (out.argmax(1) == y).float().mean() > 0.4


def test_checkpoint_round_trip_keeps_frozen_centres(tmp_path):
    model = M.create("lenet5-1998")
    path = M.save_checkpoint(
        tmp_path / "best.pt", {"model": {"name": "lenet5-1998", "kwargs": {}}, "state_dict": model.state_dict()}
    )
    back = M.build_model(M.load_checkpoint(path))
    assert not back.output.weight.requires_grad
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(back(x), model.eval()(x))


def test_subsampling_is_window_sum_times_coefficient_plus_bias():
    s = L.Subsampling(2)
    with torch.no_grad():
        s.weight.copy_(torch.tensor([1.0, -2.0]))
        s.bias.copy_(torch.tensor([0.5, 0.0]))
    x = torch.arange(32.0).view(1, 2, 4, 4)
    expected = x.view(1, 2, 2, 2, 2, 2).sum((3, 5)) * torch.tensor([1.0, -2.0]).view(1, 2, 1, 1)
    torch.testing.assert_close(s(x), expected + torch.tensor([0.5, 0.0]).view(1, 2, 1, 1))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # from torch.export internals
def test_onnx_export_matches(tmp_path):
    # serving exports models to ONNX: every op of the 1998 model must survive the export
    ort = pytest.importorskip("onnxruntime")
    model = M.create("lenet5-1998").eval()
    x = torch.randn(3, 1, 32, 32)
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True, dynamic_shapes=({0: torch.export.Dim("n")},))
    sess = ort.InferenceSession(str(path))
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(y), model(x).detach(), atol=1e-4, rtol=1e-5)
