"""Training controls: early stopping on a scripted dev-metric sequence (accuracy and loss), its
counter across a resume, --max-steps, and `lenet train --dry-run`."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

from lenetlab.cli import main
from lenetlab.inference.evaluate import EvalResult
from lenetlab.inference.run import read_metrics
from lenetlab.models.checkpoint import load_checkpoint
from lenetlab.train import RunConfig, Runner

SPE = 16  # steps per epoch: 1,000 subset images, batch 64


def _cfg(tmp_path, **kw) -> RunConfig:
    base = {
        "out_dir": str(tmp_path),
        "name": "r",
        "progress": "none",
        "plots": False,
        "num_threads": 1,
        "tensorboard": False,
        "deterministic": True,
        "log_steps": 8,
    }
    return RunConfig(**{**base, **kw})


def _script(monkeypatch, accuracy=None, loss=None):
    """Make the dev evaluation at the end of epoch e return ``accuracy[e-1]`` and ``loss[e-1]`` (0.5 and
    1.0 when not scripted; keyed by step, so a resumed run sees the same sequence); tests stay real."""
    real = Runner._evaluate

    def fake(self, model, split, **kwargs):
        res = real(self, model, split, **kwargs)
        if split is self.splits.dev:
            e = self.step // self.steps_per_epoch - 1
            res = EvalResult(
                accuracy[e] if accuracy else 0.5, loss[e] if loss else 1.0, res.n, res.per_class, res.confusion
            )
        return res

    monkeypatch.setattr(Runner, "_evaluate", fake)


def _kinds_by_epoch(rows, kind) -> list:
    return [r["epoch"] for r in rows if r["kind"] == kind]


def test_early_stopping_on_dev_accuracy_stops_at_the_right_epoch(tmp_path, subset, monkeypatch, capsys):
    _script(monkeypatch, accuracy=[0.50, 0.60, 0.58, 0.60, 0.70, 0.80, 0.90, 0.95])
    res = Runner(_cfg(tmp_path, epochs=8, patience=2, progress="plain"), splits=subset).run()
    # epochs 3 and 4 do not beat 0.60 (equal is no improvement): the run stops after epoch 4
    rows = read_metrics(tmp_path / "r")
    assert _kinds_by_epoch(rows, "epoch") == [1, 2, 3, 4] and res.steps == 4 * SPE
    assert res.best_step == 2 * SPE and res.dev_accuracy == 0.60
    assert [r["best"] for r in rows if r["kind"] == "dev"] == [True, True, False, False]
    assert rows[-1]["kind"] == "end" and rows[-1]["reason"] == "early_stop"
    assert rows[-2]["kind"] == "test" and rows[-2]["step"] == 2 * SPE
    assert load_checkpoint(tmp_path / "r" / "best.pt")["step"] == 2 * SPE
    last = load_checkpoint(tmp_path / "r" / "last.pt")
    assert (last["step"], last["bad_evals"], last["best_score"]) == (4 * SPE, 2, 0.60)
    assert (
        "[early stop] dev accuracy has not improved for 2 evaluations: stopping at step 64" in capsys.readouterr().out
    )


def test_early_stopping_on_dev_loss_chooses_best_on_loss(tmp_path, subset, monkeypatch):
    _script(monkeypatch, loss=[1.0, 0.8, 0.9, 0.7, 0.75, 0.71, 0.72, 0.5])
    res = Runner(_cfg(tmp_path, epochs=8, patience=3, monitor="dev_loss"), splits=subset).run()
    rows = read_metrics(tmp_path / "r")
    assert _kinds_by_epoch(rows, "epoch") == [1, 2, 3, 4, 5, 6, 7] and res.best_step == 4 * SPE
    assert load_checkpoint(tmp_path / "r" / "best.pt")["dev_loss"] == 0.7
    assert rows[-1]["reason"] == "early_stop"


def test_monitor_last_keeps_the_final_model_and_refuses_patience(tmp_path, subset, monkeypatch, capsys):
    _script(monkeypatch, accuracy=[0.9, 1.0, 1.0, 0.95])  # the top is reached mid-run, then lost
    res = Runner(_cfg(tmp_path, epochs=4, monitor="last"), splits=subset).run()
    rows = read_metrics(tmp_path / "r")
    assert [r["best"] for r in rows if r["kind"] == "dev"] == [True] * 4
    assert res.best_step == 4 * SPE and load_checkpoint(tmp_path / "r" / "best.pt")["step"] == 4 * SPE
    with pytest.raises(Exception, match="field 'patience' needs monitor dev_acc or dev_loss"):
        RunConfig(monitor="last", patience=2).validate()
    assert (
        main(["train", "--dataset", "mnist-subset", "--monitor", "last", "--patience", "2", "--progress", "none"]) != 0
    )
    err = capsys.readouterr().err
    assert "field 'patience' needs monitor" in err and "Traceback" not in err


def test_without_patience_every_epoch_runs(tmp_path, subset, monkeypatch):
    _script(monkeypatch, accuracy=[0.9, 0.5, 0.5])
    res = Runner(_cfg(tmp_path, epochs=3), splits=subset).run()
    assert res.steps == 3 * SPE and res.best_step == SPE and read_metrics(tmp_path / "r")[-1]["reason"] == "completed"


def test_early_stopping_counter_survives_a_resume_bit_exactly(tmp_path, subset, monkeypatch):
    accuracy = [0.50, 0.60, 0.55, 0.58, 0.59, 0.9]
    _script(monkeypatch, accuracy=accuracy)
    ref = Runner(_cfg(tmp_path, name="ref", epochs=6, patience=3), splits=subset).run()
    assert ref.steps == 5 * SPE

    def interrupt(event, runner, row):  # what Ctrl-C does, after the evaluation of epoch 3
        if event == "dev" and row["step"] == 3 * SPE:
            runner.interrupt(signal.SIGINT, None)

    with pytest.raises(KeyboardInterrupt):
        Runner(_cfg(tmp_path, epochs=6, patience=3), splits=subset, callbacks=[interrupt]).run()
    saved = load_checkpoint(tmp_path / "r" / "last.pt")
    assert (saved["step"], saved["bad_evals"]) == (3 * SPE, 1)
    res = Runner.resume(tmp_path / "r", splits=subset).run()
    assert res.steps == ref.steps and res.best_step == ref.best_step == 2 * SPE
    a, b = load_checkpoint(tmp_path / "ref" / "last.pt"), load_checkpoint(tmp_path / "r" / "last.pt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert b["bad_evals"] == 3
    again = Runner.resume(tmp_path / "r", splits=subset).run()  # an early-stopped run stays stopped
    assert again.steps == 5 * SPE


def test_max_steps_stops_mid_epoch_with_a_row_evaluation_and_checkpoint(tmp_path, subset):
    res = Runner(_cfg(tmp_path, epochs=3, max_steps=21), splits=subset).run()
    rows = read_metrics(tmp_path / "r")
    assert res.steps == 21 and [r["step"] for r in rows if r["kind"] == "train"] == [8, 16, 21]
    assert [r["step"] for r in rows if r["kind"] == "dev"] == [16, 21]
    assert rows[-1]["reason"] == "max_steps" and load_checkpoint(tmp_path / "r" / "last.pt")["step"] == 21
    again = Runner.resume(tmp_path / "r", splits=subset).run()
    assert again.steps == 21


def test_max_steps_flag(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--out-dir",
                str(tmp_path),
                "--name",
                "m",
                "--max-steps",
                "5",
                "--num-threads",
                "1",
                "--no-plots",
                "--progress",
                "none",
                "--no-tensorboard",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "trained 5 steps" in out and "(--max-steps reached)" in out
    assert main(["train", "--max-steps", "-1"]) == 2
    assert "field 'max_steps' must be >= 0" in capsys.readouterr().err


def test_dry_run_finishes_and_writes_what_it_says(tmp_path, monkeypatch, capsys):
    import tempfile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    assert main(["train", "--dry-run", "--epochs", "50", "--num-threads", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent.parent == tmp_path / "tmp" and not (tmp_path / "runs").exists()
    assert summary["steps"] == 3 and summary["dev_evaluations"] == 1 and summary["dry_run"] == "ok"
    files = set(summary["files"])
    assert {
        "config.json",
        "metrics.jsonl",
        "metrics.csv",
        "best.pt",
        "last.pt",
        "plots/loss.png",
        "plots/confusion.png",
    } <= files and any(f.startswith("events.out.tfevents") for f in files)
    assert files == {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}
    assert read_metrics(run_dir)[-1]["reason"] == "max_steps"
    assert main(["train", "--dry-run", "--model", "lenet5-bn", "--num-threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "\ndry run ok: lenet5-bn on mnist-subset, 3 steps, 1 dev evaluation" in out and "temporary" in out


def test_dry_run_errors(tmp_path, capsys):
    assert main(["train", "--dry-run", "--resume", str(tmp_path)]) == 2
    assert "--dry-run" in capsys.readouterr().err
    assert main(["train", "--dry-run", "--nproc", "2"]) == 2
    assert "--dry-run" in capsys.readouterr().err
    import tempfile

    monkeypatch_dir = tmp_path / "tmp"
    monkeypatch_dir.mkdir()
    old, tempfile.tempdir = tempfile.tempdir, str(monkeypatch_dir)
    try:
        assert main(["train", "--dry-run", "--model", "nope"]) == 2
    finally:
        tempfile.tempdir = old
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert list(monkeypatch_dir.iterdir()) == []  # nothing left behind by a configuration error
