"""End to end: `lenet train` on the embedded subset, its run directory, `lenet eval`, failure modes."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch

from lenetlab.cli import main
from lenetlab.data.transforms import InputSpec
from lenetlab.inference.run import read_metrics
from lenetlab.models.checkpoint import build_model, load_checkpoint
from lenetlab.train import RunConfig, Runner

FAST = ["--num-threads", "1"]  # one thread keeps this test quick even when other jobs share the cores


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """`lenet train` with no run-configuration arguments, from an empty working directory."""
    cwd = tmp_path_factory.mktemp("e2e")
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        status = main(["train", *FAST])
    finally:
        os.chdir(old)
    assert status == 0
    (run_dir,) = (cwd / "runs").iterdir()
    return run_dir


@pytest.mark.slow
def test_default_train_reaches_85_percent_and_writes_run_dir(default_run, capsys):
    run_dir = default_run
    assert run_dir.name.startswith("lenet5-")
    for name in ("config.json", "metrics.jsonl", "best.pt", "last.pt"):
        assert (run_dir / name).is_file(), name
    cfg = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    assert cfg.model == "lenet5" and cfg.dataset == "mnist-subset" and cfg.num_threads == 1
    rows = read_metrics(run_dir)
    kinds = {r["kind"] for r in rows}
    assert {"train", "epoch", "dev", "test"} <= kinds
    assert rows[-1] == {**rows[-1], "kind": "end", "reason": "completed", "step": max(r["step"] for r in rows)}
    for r in rows[:-1]:
        assert {"kind", "step", "epoch", "loss"} <= r.keys() and math.isfinite(r["loss"])
        if r["kind"] == "train":
            assert {"lr", "examples_per_sec", "time", "accuracy"} <= r.keys()
        if r["kind"] in ("dev", "test"):  # whole-split accuracies: a count out of the split's 200 images
            assert r["accuracy"] * 200 == pytest.approx(round(r["accuracy"] * 200), abs=1e-6)
    test = [r for r in rows if r["kind"] == "test"]
    assert len(test) == 1 and test[0]["accuracy"] >= 0.85
    dev = [r for r in rows if r["kind"] == "dev"]
    best_dev = max(dev, key=lambda r: r["accuracy"])
    assert test[0]["step"] == best_dev["step"] == [r for r in dev if r["best"]][-1]["step"]
    assert sum(r["kind"] == "epoch" for r in rows) == cfg.epochs

    for name in ("best.pt", "last.pt"):
        ck = load_checkpoint(run_dir / name, map_location="cpu")
        assert RunConfig.from_dict(ck["config"]) == cfg
        assert ck["class_names"] == [str(i) for i in range(10)]
        spec = InputSpec.from_dict(ck["input_spec"])
        assert spec.size == 32 and spec.channels == 1
        model = build_model(ck, map_location="cpu")
        assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    last = load_checkpoint(run_dir / "last.pt")
    assert last["epoch"] == cfg.epochs and last["batch"] == 0 and last["step"] == max(r["step"] for r in rows)
    assert {"optimizer", "scheduler", "rng", "step", "batch", "best_accuracy"} <= last.keys()
    best = load_checkpoint(run_dir / "best.pt")
    assert best["step"] == best_dev["step"] and best["dev_accuracy"] == best_dev["accuracy"]
    if importlib.util.find_spec("lenetlab.plots") is not None and cfg.plots:
        assert list((run_dir / "plots").glob("*.png"))


@pytest.mark.slow
def test_eval_agrees_with_runner_final_test(default_run, capsys):
    test_row = [r for r in read_metrics(default_run) if r["kind"] == "test"][0]
    capsys.readouterr()
    assert main(["eval", str(default_run / "best.pt"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["accuracy"] == test_row["accuracy"]
    assert out["per_class"] == test_row["per_class"]
    assert math.isclose(out["loss"], test_row["loss"], rel_tol=1e-9)
    assert out["n"] == 200 and sum(map(sum, out["confusion"])) == 200
    assert main(["eval", str(default_run), "--split", "dev"]) == 0  # a run dir resolves to best.pt
    text = capsys.readouterr().out
    assert "confusion matrix" in text and "per-class accuracy" in text


def test_eval_missing_checkpoint_is_one_line_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert "nope.pt" in err and err.count("\n") == 1


def _quick(tmp_path, **kw) -> RunConfig:
    base = {"out_dir": str(tmp_path), "epochs": 1, "progress": "none", "plots": False, "num_threads": 1}
    return RunConfig(**{**base, **kw})


def test_existing_run_dir_is_not_overwritten(tmp_path, capsys, subset):
    Runner(_quick(tmp_path, name="r"), splits=subset)  # creates the run dir and config.json
    args = ["train", "--out-dir", str(tmp_path), "--name", "r", "--epochs", "1", *FAST]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--resume" in err
    assert main(args + ["--overwrite", "--progress", "none", "--no-plots", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run_dir"] == str(tmp_path / "r")
    test_rows = [r for r in read_metrics(tmp_path / "r") if r["kind"] == "test"]
    assert [out["test_accuracy"]] == [r["accuracy"] for r in test_rows]  # the new run's, not the replaced one's


def test_non_finite_loss_stops_with_last_good_checkpoint(tmp_path, capsys):
    args = [
        "train",
        "--out-dir",
        str(tmp_path),
        "--name",
        "nan",
        "--optimizer",
        "sgd",
        "--lr",
        "1e6",
        "--epochs",
        "2",
        "--log-steps",
        "4",
        "--save-every",
        "2",
        "--progress",
        "plain",
        "--no-plots",
        *FAST,
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: non-finite training loss at step") and "\n" not in err
    assert "last.pt" in err
    last = load_checkpoint(tmp_path / "nan" / "last.pt")
    bad_step = int(err.split("at step ")[1].split()[0])
    assert last["step"] < bad_step
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
    rows = read_metrics(tmp_path / "nan")
    assert all(math.isfinite(r["loss"]) for r in rows)


def test_callbacks_see_rows_and_can_stop(tmp_path, subset):
    seen = []

    def cb(event, runner, row):
        seen.append((event, row["step"]))
        if event == "train" and row["step"] >= 6:
            runner.stop = True

    res = Runner(_quick(tmp_path, name="cb", log_steps=3, epochs=3), splits=subset, callbacks=[cb]).run()
    assert res.steps == 6 and ("dev", 6) in seen and seen[-2:] == [("test", res.best_step), ("end", 6)]
    assert load_checkpoint(tmp_path / "cb" / "last.pt")["step"] == 6


@pytest.mark.parametrize(
    "overrides",
    [
        {
            "optimizer": "sgd",
            "lr": 0.05,
            "nesterov": True,
            "schedule": "cosine",
            "warmup": 0.2,
            "init": "xavier",
            "label_smoothing": 0.1,
            "grad_clip": 1.0,
            "channels_last": True,
            "eval_steps": 5,
            "augment": "affine+elastic",
        },
        {
            "optimizer": "adamw",
            "weight_decay": 0.01,
            "schedule": "onecycle",
            "normalize": "nndl-quirk",
            "amp": "bf16",
            "val_size": 0,
        },
    ],
)
def test_recipe_options_train(tmp_path, overrides):
    from lenetlab.data import load

    splits = load("mnist-subset")
    if overrides.get("val_size") == 0:  # no dev split: the last model is the best one
        splits.dev = type(splits.dev)(splits.dev.x[:0], splits.dev.y[:0])
    cfg = _quick(tmp_path, name="opt", **{k: v for k, v in overrides.items() if k != "val_size"})
    res = Runner(cfg, splits=splits).run()
    assert res.steps == 16 and res.test.n == 200 and sum(map(sum, res.test.confusion)) == 200
    correct = sum(res.test.confusion[c][c] for c in range(10))
    assert res.test.accuracy == pytest.approx(correct / 200)
    assert [r["accuracy"] for r in read_metrics(tmp_path / "opt") if r["kind"] == "test"] == [res.test.accuracy]
    assert (tmp_path / "opt" / "best.pt").is_file()


def test_plain_progress_when_not_a_terminal(capsys):
    from lenetlab.train.rundir import Progress

    p = Progress("auto", total=10)  # pytest's captured stdout is not a TTY
    assert p.mode == "plain" and p.bar is None
    p.update()
    p.train_row({"epoch": 0.5, "step": 5, "loss": 1.0, "accuracy": 0.5, "lr": 0.1, "examples_per_sec": 100.0}, 2)
    p.close()
    out = capsys.readouterr().out
    assert out.startswith("[train] epoch 0.50/2 step 5 loss 1.0000") and "\r" not in out
    assert Progress("none", total=10).mode == "none"
    import ipykernel  # noqa: F401  (an imported kernel module is not a running kernel)

    assert Progress("auto", total=10).mode == "plain"


def test_resuming_a_finished_run_only_retests(tmp_path, subset):
    Runner(_quick(tmp_path, name="done"), splits=subset).run()
    before = read_metrics(tmp_path / "done")
    res = Runner.resume(tmp_path / "done", splits=subset).run()
    after = read_metrics(tmp_path / "done")
    assert res.steps == 16 and len(after) == len(before) and [r["kind"] for r in after[-2:]] == ["test", "end"]
    assert after[-2]["accuracy"] == before[-2]["accuracy"] and after[-1]["reason"] == "completed"


def test_recipe_flags_reach_the_optimizer_and_the_criterion(tmp_path, subset, capsys):
    """--nesterov/--momentum/--weight-decay land in SGD, --label-smoothing in the loss, --grad-clip in the step."""
    import torch.nn.functional as F

    from lenetlab.apps.train import make_runner
    from lenetlab.train.config import config_overrides

    args = [
        "--out-dir",
        str(tmp_path),
        "--name",
        "flags",
        "--optimizer",
        "sgd",
        "--lr",
        "0.1",
        "--momentum",
        "0.8",
        "--nesterov",
        "--weight-decay",
        "0.01",
        "--label-smoothing",
        "0.2",
        "--grad-clip",
        "0.001",
    ]
    from lenetlab.cli import build_parser

    ns = build_parser().parse_args(["train", *args])
    runner = make_runner(overrides=config_overrides(ns), splits=subset)
    group = runner.optimizer.param_groups[0]
    assert isinstance(runner.optimizer, torch.optim.SGD)
    assert group["nesterov"] is True and group["momentum"] == 0.8 and group["weight_decay"] == 0.01
    out, y = torch.randn(8, 10), torch.arange(8)
    assert torch.allclose(runner.criterion(out, y), F.cross_entropy(out, y, label_smoothing=0.2))
    assert not torch.allclose(runner.criterion(out, y), F.cross_entropy(out, y))
    xb, yb = next(iter(runner.loader))
    runner._train_step(xb, yb)  # gradients stay on the parameters after the step
    norm = torch.nn.utils.get_total_norm([p.grad for p in runner.model.parameters()])
    assert norm <= 0.001 * (1 + 1e-4)
