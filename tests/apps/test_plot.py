"""`lenet plot`: an interrupted run's plots redrawn from its files, several runs overlaid; and the plots
a run gets as it stops (Ctrl-C, a failing step)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import lenetlab
from lenetlab.apps import plot as plot_app
from lenetlab.apps import train as train_app
from lenetlab.cli import main
from lenetlab.inference.run import read_metrics
from lenetlab.models.checkpoint import load_checkpoint

FAST = ["--num-threads", "1", "--progress", "none", "--no-tensorboard"]
ALL = {"loss.png", "accuracy.png", "confusion.png", "misclassified.png", "kernels.png", "feature_maps.png"}


def _png(path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run stopped by a real SIGINT in epoch 2, without plots (--no-plots), so `lenet plot` draws them."""
    out = tmp_path_factory.mktemp("plot")

    def interrupt(event, runner, row):
        if event == "train" and row["step"] == 20:
            os.kill(os.getpid(), signal.SIGINT)

    real = train_app.make_runner
    train_app.make_runner = lambda *a, **k: real(*a, **{**k, "callbacks": [interrupt]})
    try:
        assert (
            main(
                [
                    "train",
                    "--out-dir",
                    str(out),
                    "--name",
                    "stopped",
                    "--epochs",
                    "3",
                    "--log-steps",
                    "4",
                    "--no-plots",
                    *FAST,
                ]
            )
            == 130
        )
    finally:
        train_app.make_runner = real
    assert not (out / "stopped" / "plots").exists()
    return out / "stopped"


def test_plot_redraws_an_interrupted_run(interrupted, capsys):
    assert main(["plot", str(interrupted)]) == 0
    out = capsys.readouterr().out
    assert f"wrote 6 plots to {interrupted / 'plots'}" in out
    assert {p.name for p in (interrupted / "plots").glob("*.png")} == ALL
    for p in (interrupted / "plots").glob("*.png"):
        _png(p)


def test_plot_into_another_folder_and_as_json(interrupted, tmp_path, capsys):
    assert main(["plot", str(interrupted), "--out", str(tmp_path / "figs"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {os.path.basename(p) for p in result["plots"]} == ALL and result["notes"] == []
    assert {p.name for p in (tmp_path / "figs").iterdir()} == ALL


def test_plot_overlays_two_runs(interrupted, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--out-dir",
                str(tmp_path),
                "--name",
                "other",
                "--epochs",
                "1",
                "--lr",
                "0.01",
                "--no-plots",
                *FAST,
            ]
        )
        == 0
    )
    capsys.readouterr()
    calls = []
    real = plot_app.plot_overlay
    plot_app.plot_overlay = lambda runs, path: calls.append([name for name, _ in runs]) or real(runs, path)
    try:
        assert main(["plot", str(interrupted), str(tmp_path / "other"), "--out", str(tmp_path / "cmp.png")]) == 0
    finally:
        plot_app.plot_overlay = real
    assert calls == [["stopped", "other"]]  # the legend's names
    assert f"wrote {tmp_path / 'cmp.png'} (2 runs: stopped, other)" in capsys.readouterr().out
    width, height = _png(tmp_path / "cmp.png")
    assert width > 2 * height * 0.9  # two panels side by side


def test_overlay_legend_and_lines(tmp_path):
    from lenetlab.plots import plot_overlay

    rows_a = [
        {"kind": "train", "step": 1, "epoch": 0.5, "loss": 2.0},
        {"kind": "dev", "step": 2, "epoch": 1.0, "loss": 1.0, "accuracy": 0.6},
    ]
    rows_b = [{"kind": "dev", "step": 4, "epoch": 1.0, "loss": 0.8, "accuracy": 0.7}]
    path = plot_overlay([("a", rows_a), ("b", rows_b)], tmp_path / "o.png")
    _png(path)
    with pytest.raises(Exception, match="none of the runs"):
        plot_overlay([("empty", [])], tmp_path / "e.png")


def test_plot_without_a_loadable_checkpoint_draws_the_curves(interrupted, tmp_path, capsys):
    run = tmp_path / "broken"
    shutil.copytree(interrupted, run)
    shutil.rmtree(run / "plots", ignore_errors=True)
    for name in ("best.pt", "last.pt"):
        (run / name).write_bytes(b"garbage")
    assert main(["plot", str(run)]) == 0
    out, err = capsys.readouterr()
    assert "wrote 2 plots" in out and "best.pt skipped" in err and "no loadable checkpoint" in err
    assert {p.name for p in (run / "plots").iterdir()} == {"loss.png", "accuracy.png"}


def test_plot_errors_are_one_line(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a run directory" in err and err.count("\n") == 1


def test_interrupted_training_draws_its_plots_as_it_stops(tmp_path, monkeypatch, capsys):
    def interrupt(event, runner, row):
        if event == "train" and row["step"] == 20:
            os.kill(os.getpid(), signal.SIGINT)

    real = train_app.make_runner
    monkeypatch.setattr(train_app, "make_runner", lambda *a, **k: real(*a, **{**k, "callbacks": [interrupt]}))
    assert main(["train", "--out-dir", str(tmp_path), "--name", "r", "--epochs", "3", "--log-steps", "4", *FAST]) == 130
    err = capsys.readouterr().err
    assert f"plots of the run so far: {tmp_path / 'r' / 'plots'} (6 PNG files)" in err
    assert {p.name for p in (tmp_path / "r" / "plots").iterdir()} == ALL
    assert max(r["step"] for r in read_metrics(tmp_path / "r")) == 20


def test_a_failing_step_still_gets_its_plots(tmp_path, monkeypatch, capsys):
    def fail(event, runner, row):
        if event == "train" and row["step"] == 12:
            raise RuntimeError("a failing step")

    real = train_app.make_runner
    monkeypatch.setattr(train_app, "make_runner", lambda *a, **k: real(*a, **{**k, "callbacks": [fail]}))
    with pytest.raises(RuntimeError, match="a failing step"):  # the run's own error goes on
        main(
            [
                "train",
                "--out-dir",
                str(tmp_path),
                "--name",
                "f",
                "--epochs",
                "2",
                "--log-steps",
                "4",
                "--eval-steps",
                "8",
                *FAST,
            ]
        )
    assert "plots of the run so far" in capsys.readouterr().err
    assert {p.name for p in (tmp_path / "f" / "plots").iterdir()} == ALL  # a best model (step 8) exists


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_with_checkpoint_and_plots(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(lenetlab.__file__).parents[1])}  # this checkout's lenetlab
    cmd = [
        sys.executable,
        "-m",
        "lenetlab",
        "train",
        "--out-dir",
        str(tmp_path),
        "--name",
        "t",
        "--epochs",
        "200",
        "--progress",
        "plain",
        *FAST,
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if any(r["kind"] == "dev" for r in read_metrics(tmp_path / "t")):  # a best model exists
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.05)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err[-2000:]  # 128 + SIGTERM, as schedulers expect
    assert "terminated (SIGTERM) at step" in err and "plots of the run so far" in err
    assert {p.name for p in (tmp_path / "t" / "plots").iterdir()} == ALL
    assert load_checkpoint(tmp_path / "t" / "last.pt")["step"] >= 16
