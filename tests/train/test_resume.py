"""Resume equivalence: an interrupted run (Ctrl-C in process, SIGKILL of a subprocess) resumed with
`lenet train --resume` ends with exactly the weights of an uninterrupted run (CPU, deterministic)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lenetlab.apps import train as commands
from lenetlab.cli import main
from lenetlab.train.rundir import read_metrics

# three epochs of 16 steps; last.pt every 3 steps so a kill always lands between checkpoints
ARGS = ["--epochs", "3", "--deterministic", "--save-every", "3", "--log-steps", "4", "--progress", "plain",
        "--no-plots", "--num-threads", "1"]
VOLATILE = {"time", "train_time", "examples_per_sec"}


def _train(out: Path, name: str, *extra: str) -> int:
    return main(["train", "--out-dir", str(out), "--name", name, *ARGS, *extra])


def _weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)["state_dict"]


def _same_run(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs after resume"
    best_a = torch.load(a / "best.pt", weights_only=True)
    best_b = torch.load(b / "best.pt", weights_only=True)
    assert best_a["step"] == best_b["step"]
    assert all(torch.equal(best_a["state_dict"][k], best_b["state_dict"][k]) for k in wa)
    rows_a = [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_metrics(a)]
    rows_b = [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_metrics(b)]
    assert rows_a == rows_b  # no duplicated or missing rows, identical losses and accuracies


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref")
    assert _train(out, "ref") == 0
    return out / "ref"


@pytest.mark.slow
def test_ctrl_c_saves_and_resume_is_exact(reference, tmp_path, monkeypatch, capsys):
    def interrupt(event, runner, row):  # a real SIGINT, delivered mid-epoch 2
        if event == "train" and row["step"] == 20:
            os.kill(os.getpid(), signal.SIGINT)

    real = commands.make_runner
    monkeypatch.setattr(commands, "make_runner", lambda *a, **k: real(*a, **{**k, "callbacks": [interrupt]}))
    assert _train(tmp_path, "run") == 130
    err = capsys.readouterr().err
    assert "interrupted at step 20" in err and f"lenet train --resume {tmp_path / 'run'}" in err
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert (saved["step"], saved["epoch"], saved["batch"]) == (20, 1, 4)
    monkeypatch.setattr(commands, "make_runner", real)
    assert main(["train", "--resume", str(tmp_path / "run"), "--progress", "none"]) == 0
    _same_run(reference, tmp_path / "run")


def test_resume_refuses_to_change_the_recipe(reference, capsys):
    assert main(["train", "--resume", str(reference), "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "'lr'" in err and "resum" in err


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_exact(reference, tmp_path):
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "lenetlab.cli", "train", "--out-dir", str(tmp_path), "--name", "killed", *ARGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    saved = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ck = torch.load(run_dir / "last.pt", weights_only=True)
            except Exception:  # not written yet
                ck = None
            if ck is not None and ck["step"] > 0 and ck["batch"] > 0:  # a mid-epoch checkpoint exists
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    saved = torch.load(run_dir / "last.pt", weights_only=True)
    assert 0 < saved["step"] < 48
    assert main(["train", "--resume", str(run_dir), "--progress", "none"]) == 0
    _same_run(reference, run_dir)
