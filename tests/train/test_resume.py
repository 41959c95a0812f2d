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
from lenetlab.inference.run import read_metrics
from lenetlab.models.checkpoint import load_checkpoint

# three epochs of 16 steps; last.pt every 3 steps so a kill always lands between checkpoints
ARGS = [
    "--epochs",
    "3",
    "--deterministic",
    "--save-every",
    "3",
    "--log-steps",
    "4",
    "--progress",
    "plain",
    "--no-plots",
    "--num-threads",
    "1",
]
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


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_prints_resume_and_exits_143(reference, tmp_path):
    """`kill -TERM` behaves as Ctrl-C: last.pt at the next step boundary, the resume command, exit 143;
    the resumed run ends exactly where the uninterrupted one did."""
    run_dir = tmp_path / "termed"
    cmd = [sys.executable, "-m", "lenetlab.cli", "train", "--out-dir", str(tmp_path), "--name", "termed", *ARGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ck = torch.load(run_dir / "last.pt", weights_only=True)
            except Exception:  # not written yet
                ck = None
            if ck is not None and ck["step"] > 0 and ck["batch"] > 0:  # mid-epoch, inside the training loop
                seen = ck["step"]
                os.kill(proc.pid, signal.SIGTERM)
                break
            time.sleep(0.005)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-2000:]
    saved = torch.load(run_dir / "last.pt", weights_only=True)
    assert seen <= saved["step"] < 48
    assert (
        f"terminated (SIGTERM) at step {saved['step']}: saved {run_dir / 'last.pt'}; "
        f"resume with: lenet train --resume {run_dir}" in err
    )
    assert err.strip().splitlines()[-1] == "terminated" and "Traceback" not in err
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no lock, no temporary file
    assert main(["train", "--resume", str(run_dir), "--progress", "none"]) == 0
    _same_run(reference, run_dir)


# ----------------------------------------------------------------------------- last.pt is checked on resume
def _edit_last(run_dir: Path, dest: Path, **changes) -> Path:
    """A copy of ``run_dir`` whose last.pt has ``changes`` (``...`` deletes a field), saved with a fresh
    checksum so that the field checks, not the checksum, must catch it."""
    import shutil

    from lenetlab.models.checkpoint import save_checkpoint

    shutil.copytree(run_dir, dest)
    ck = torch.load(dest / "last.pt", weights_only=True)
    for key, value in changes.items():
        ck.pop(key) if value is ... else ck.__setitem__(key, value)
    save_checkpoint(dest / "last.pt", ck)
    return dest


def _bad_last_cases(run: Path, tmp: Path) -> list[tuple[Path, str]]:
    import shutil

    from lenetlab.models import create

    best_over = tmp / "best_over"
    shutil.copytree(run, best_over)
    shutil.copy(best_over / "best.pt", best_over / "last.pt")
    truncated = tmp / "truncated"
    shutil.copytree(run, truncated)
    data = (truncated / "last.pt").read_bytes()
    (truncated / "last.pt").write_bytes(data[: len(data) // 2])
    flipped = tmp / "flipped"
    shutil.copytree(run, flipped)
    raw = bytearray((flipped / "last.pt").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (flipped / "last.pt").write_bytes(bytes(raw))
    ck = torch.load(run / "last.pt", weights_only=True)
    other = create("lenet5-mini").state_dict()
    groups = [dict(g, params=g["params"][:2]) for g in ck["optimizer"]["param_groups"]]
    return [
        (best_over, "not a last.pt: no training state"),
        (truncated, "corrupt or truncated checkpoint"),
        (flipped, "does not match the contents"),  # or a corrupt archive, wherever the flipped bit lands
        (_edit_last(run, tmp / "no_opt", optimizer=...), "field 'optimizer' is missing"),
        (_edit_last(run, tmp / "neg_step", step=-5), "field 'step' must be a non-negative number"),
        (_edit_last(run, tmp / "float_epoch", epoch=1.5), "field 'epoch' must be int"),
        (_edit_last(run, tmp / "rng", rng={"python": 1}), "field 'rng' is not a saved RNG state"),
        (_edit_last(run, tmp / "meters", meters=torch.zeros(3)), "field 'meters' must have shape [2, 3]"),
        (
            _edit_last(run, tmp / "weights", state_dict=other),
            "field 'state_dict' does not fit the run's model 'lenet5'",
        ),
        (_edit_last(run, tmp / "best_w", best_state_dict=other), "field 'best_state_dict' does not fit"),
        (
            _edit_last(run, tmp / "groups", optimizer=dict(ck["optimizer"], param_groups=groups)),
            "field 'optimizer' cannot be restored",
        ),
        (_edit_last(run, tmp / "position", step=ck["step"] + 5), "fields 'epoch', 'batch', 'step'"),
        (_edit_last(run, tmp / "config", config=[1]), "field 'config' must be a dict"),
    ]


def test_resume_checks_last_pt_and_names_the_field(reference, tmp_path, capsys):
    for run, needle in _bad_last_cases(reference, tmp_path):
        before = (run / "metrics.jsonl").read_bytes()
        assert main(["train", "--resume", str(run), "--progress", "none"]) == 2, run.name
        err = capsys.readouterr().err
        if run.name == "flipped" and "does not match" not in err:
            needle = "corrupt or truncated checkpoint"
        assert err.startswith(f"error: {run / 'last.pt'}: ") and needle in err and err.count("\n") == 1, (run.name, err)
        assert (run / "metrics.jsonl").read_bytes() == before and not (run / ".lock").exists()


# ----------------------------------------------------------------------------- a full disk
@pytest.mark.parametrize("size, victim", [("300k", "best.pt"), ("600k", "last.pt")])
def test_full_disk_is_one_line_with_the_resume_command_and_resume_works_after(tmpfs, capsys, size, victim):
    """A real small tmpfs: 300 KB holds the first last.pt (step 0) but not best.pt beside it; 600 KB holds
    both but not the bigger last.pt of step 16 (with Adam's moments) next to the old one. Either way one
    line naming the file, the size it needed and the resume command; the old checkpoint intact, no
    temporary file; `--resume` on the still-full disk says the same (for best.pt, rewritten first when it
    exists); after making room it finishes."""
    import subprocess as sp

    disk = tmpfs(size)
    run = disk / "r"
    argv = [
        "train",
        "--out-dir",
        str(disk),
        "--name",
        "r",
        "--epochs",
        "1",
        "--no-plots",
        "--progress",
        "none",
        "--num-threads",
        "1",
    ]
    for attempt in (argv, ["train", "--resume", str(run), "--progress", "none"]):
        assert main(attempt) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith(f"error: {run / victim}: no space left on device (needs "), err
        victim = "best.pt" if (run / "best.pt").is_file() else victim  # resumed: best.pt rewritten first
        assert err.endswith(f"; free some space, then resume with: lenet train --resume {run}"), err
        assert " KB, " in err and "free)" in err
        assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary file, no lock
        assert load_checkpoint(run / "last.pt", training=True)["step"] == 0  # the old one, intact
    assert sp.run(["mount", "-o", "remount,size=4m", str(disk)]).returncode == 0
    assert main(["train", "--resume", str(run), "--progress", "none"]) == 0
    assert load_checkpoint(run / "last.pt", training=True)["step"] == 16
