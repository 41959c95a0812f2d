"""Run plots (lenetlab.plots): every PNG written, valid, and the first conv found generically."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from PIL import Image

from lenetlab import plots
from lenetlab.data.splits import Split
from lenetlab.errors import DataError, LenetlabError
from lenetlab.inference.run import read_metrics
from lenetlab.models import build_model, create, load_checkpoint
from lenetlab.models.trace import first_conv

ALL = {"loss.png", "accuracy.png", "confusion.png", "misclassified.png", "kernels.png", "feature_maps.png"}


def _valid_png(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.size[0] > 100 and im.size[1] > 100
        return im.size


@pytest.fixture()
def run_dir(digit_ckpt, tmp_path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    shutil.copy(digit_ckpt.parent / "metrics.jsonl", d / "metrics.jsonl")
    with open(d / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"kind": "test", "step": 100, "epoch": 6.0, "loss": 0.2, "accuracy": 0.95}) + "\n")
    return d


def test_save_run_plots_writes_every_plot(run_dir, digit_ckpt, subset):
    model = build_model(load_checkpoint(digit_ckpt))
    written = plots.save_run_plots(run_dir, read_metrics(run_dir), model, subset, subset.input_spec, "cpu")
    assert {p.name for p in written} == ALL
    for p in written:
        assert p.parent == run_dir / "plots"
        _valid_png(p)
    assert not list((run_dir / "plots").glob(".*"))  # no temporary files left behind


def test_unlabelled_test_split_uses_dev_and_missing_metrics_skip_curves(subset, tmp_path):
    unl = replace(subset, test=Split(subset.test.x[:20], None, ids=[f"{i}.png" for i in range(20)]))
    written = plots.save_run_plots(tmp_path, [], create("lenet5").eval(), unl, subset.input_spec, "cpu")
    assert {p.name for p in written} == ALL - {"loss.png", "accuracy.png"}


def test_model_without_convolution_skips_kernels(subset, tmp_path):
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 10))
    small = replace(subset, test=Split(subset.test.x[:30], subset.test.y[:30]))
    written = plots.save_run_plots(tmp_path, [], mlp, small, subset.input_spec, "cpu")
    assert {p.name for p in written} == {"confusion.png", "misclassified.png"}


@pytest.mark.parametrize("name", ["lenet5", "lenet5-1998", "lenet5-scratch", "lenet-d2l", "resnet18-small"])
def test_first_conv_found_in_execution_order(name, tmp_path):
    from lenetlab.models import model_info

    c, h, w = model_info(name).input_size
    model = create(name).eval()
    x = torch.rand(1, c, h, w)
    _, module, out = first_conv(model, x)
    assert module.weight.dim() == 4 and out.dim() == 4 and out.shape[1] == module.weight.shape[0]
    _valid_png(plots.plot_kernels(model, x, tmp_path / "k.png"))
    _valid_png(plots.plot_feature_maps(model, x, tmp_path / "f.png"))


def test_first_conv_by_execution_not_definition_order():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.late = nn.Conv2d(4, 2, 3)  # defined first, runs second
            self.early = nn.Conv2d(1, 4, 5)

        def forward(self, x):
            return self.late(self.early(x)).mean(dim=(2, 3))

    net = Net()
    _, module, out = first_conv(net, torch.rand(1, 1, 12, 12))
    assert module is net.early and out.shape == (1, 4, 8, 8)
    with pytest.raises(LenetlabError, match="no convolution"):
        first_conv(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.rand(1, 1, 2, 2))


def test_individual_plots(tmp_path, subset):
    rows = [{"kind": "train", "step": s, "epoch": s / 10, "loss": 2.0 / s} for s in range(1, 30)]
    rows += [
        {"kind": "dev", "step": s, "epoch": s / 10, "loss": 1.5 / s, "accuracy": 1 - 0.5 / s} for s in (10, 20, 29)
    ]
    _valid_png(plots.plot_loss_curves(rows, tmp_path / "l.png"))
    _valid_png(plots.plot_accuracy_curve(rows, tmp_path / "a.png"))
    with pytest.raises(DataError):
        plots.plot_loss_curves([], tmp_path / "x.png")
    cm = torch.randint(0, 20, (40, 40)).tolist()  # many classes (a Kaggle set): no per-cell numbers
    _valid_png(plots.plot_confusion(cm, [f"c{i}" for i in range(40)], tmp_path / "c.png"))
    y = subset.test.y[:10]
    _valid_png(plots.plot_misclassified(subset.test.x[:10], y, y, subset.class_names, tmp_path / "none_wrong.png"))
    rgb = torch.randint(0, 255, (6, 3, 16, 16), dtype=torch.uint8)
    _valid_png(
        plots.plot_misclassified(
            rgb, torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.long), ["a", "b"], tmp_path / "rgb.png"
        )
    )


def test_given_test_evaluation_is_used_not_recomputed(run_dir, digit_ckpt, subset, monkeypatch):
    from lenetlab.inference.evaluate import evaluate

    model = build_model(load_checkpoint(digit_ckpt))
    test = evaluate(model, subset.test, subset.input_spec, keep_predictions=True, class_names=subset.class_names)
    monkeypatch.setattr(plots, "evaluate", lambda *a, **k: pytest.fail("the test split was evaluated twice"))
    written = plots.save_run_plots(run_dir, read_metrics(run_dir), model, subset, subset.input_spec, "cpu", test=test)
    assert {p.name for p in written} == ALL


@pytest.mark.slow
def test_runner_writes_the_plots_at_the_end_of_a_run(tmp_path, subset, capsys):
    """A real (one-epoch) run through `lenet train`'s application ends with all six plots, and
    its run directory works with `lenet predict` and `lenet ensemble`."""
    from lenetlab.plots.runplots import run_with_plots
    from lenetlab.train import RunConfig, Runner

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = RunConfig(name="p", out_dir=str(tmp_path), epochs=1, progress="none", device="cpu", augment="affine")
        res = run_with_plots(Runner(cfg, splits=subset))
    finally:
        torch.set_num_threads(threads)
    pngs = {p.name for p in (Path(res.run_dir) / "plots").glob("*.png")}
    assert pngs == ALL
    for p in (Path(res.run_dir) / "plots").glob("*.png"):
        _valid_png(p)
    from lenetlab.cli import main

    img = tmp_path / "digit.png"
    Image.fromarray(255 - subset.test.x[0, 0].numpy()).resize((84, 84)).save(img)
    assert main(["predict", str(res.run_dir), str(img), "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "ok"
    assert main(["ensemble", str(res.run_dir), str(res.best_path), "--json", "--device", "cpu"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["members"][0]["accuracy"] == pytest.approx(res.test.accuracy)  # same as the runner's test figure
    assert data["accuracy"] == pytest.approx(res.test.accuracy)  # the same model twice


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_save_run_plots_with_the_model_on_cuda(run_dir, digit_ckpt, subset):
    model = build_model(load_checkpoint(digit_ckpt, map_location="cuda"), map_location="cuda")
    written = plots.save_run_plots(run_dir, read_metrics(run_dir), model, subset, subset.input_spec, "cuda")
    assert {p.name for p in written} == ALL
