"""The run-directory lock: a second process on one run directory is refused in one line naming the
holder's PID (two real `lenet train` processes); a lock left by a SIGKILLed process does not block."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lenetlab.errors import ConfigError
from lenetlab.inference.run import LOCK, read_metrics
from lenetlab.train.rundir import RunLock, check_unlocked, new_run_dir

FAST = ["--num-threads", "1", "--no-plots", "--progress", "plain", "--device", "cpu"]


def _lenet(*argv: str) -> subprocess.Popen:
    src = str(Path(__file__).resolve().parents[2] / "src")  # this checkout's code, whatever the cwd
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "lenetlab.cli", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"process ended (status {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def _pid_in_lock(run_dir: Path) -> int | None:
    try:
        text = (run_dir / LOCK).read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def test_second_holder_in_one_process_is_refused_with_the_pid(tmp_path):
    first = RunLock(tmp_path).acquire()
    assert _pid_in_lock(tmp_path) == os.getpid()
    with pytest.raises(ConfigError) as e:
        RunLock(tmp_path).acquire()
    msg = str(e.value)
    assert msg == (
        f"run directory {tmp_path} is in use by another lenet process (PID {os.getpid()}); "
        f"wait for it to end or stop it (kill {os.getpid()})"
    )
    with pytest.raises(ConfigError, match="in use"):
        check_unlocked(tmp_path)
    first.release()
    assert not (tmp_path / LOCK).exists()  # a clean end leaves no lock file
    check_unlocked(tmp_path)
    assert not (tmp_path / LOCK).exists()


def test_overwrite_never_deletes_a_run_in_progress(tmp_path):
    lock = new_run_dir(tmp_path, "r", "lenet5")
    (lock.run_dir / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="in use by another lenet process"):
        new_run_dir(tmp_path, "r", "lenet5", overwrite=True)
    assert (lock.run_dir / "config.json").exists()
    lock.release()
    again = new_run_dir(tmp_path, "r", "lenet5", overwrite=True)  # free now: emptied, lock kept
    assert [p.name for p in again.run_dir.iterdir()] == [LOCK]
    again.release()


def test_timestamped_names_in_the_same_second_get_their_own_folders(tmp_path):
    a, b = new_run_dir(tmp_path, None, "lenet5"), new_run_dir(tmp_path, None, "lenet5")
    assert a.run_dir != b.run_dir and a.held and b.held
    a.release(), b.release()


def test_lock_of_a_sigkilled_process_does_not_block(tmp_path):
    code = (
        "import sys, time; from lenetlab.train.rundir import RunLock; l = RunLock(sys.argv[1]).acquire(); "
        "print('locked', flush=True); time.sleep(600)"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=src),
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=f"PID {proc.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert _pid_in_lock(tmp_path) == proc.pid  # the stale file stays...
    lock = RunLock(tmp_path).acquire()  # ...but the kernel dropped the flock with the process
    assert _pid_in_lock(tmp_path) == os.getpid()
    lock.release()


@pytest.mark.slow
def test_two_trainings_on_one_run_directory(tmp_path):
    """A trains `--name x`; B (same --name), C (--resume x), D (--name x --overwrite) and E (--nproc 2
    --resume x) are each refused in one line naming A's PID, and nothing A wrote is duplicated or lost.
    Then A is killed with SIGKILL: its stale lock does not stop `--resume`."""
    out = tmp_path / "runs"
    run = out / "x"
    a = _lenet("train", "--out-dir", str(out), "--name", "x", "--epochs", "200", "--log-steps", "4", *FAST)
    try:
        _wait_for(lambda: _pid_in_lock(run) == a.pid and (run / "last.pt").is_file(), a, "A to lock and save")
        others = [
            _lenet("train", "--out-dir", str(out), "--name", "x", "--epochs", "1", *FAST),
            _lenet("train", "--resume", str(run), *FAST),
            _lenet("train", "--out-dir", str(out), "--name", "x", "--overwrite", "--epochs", "1", *FAST),
            _lenet("train", "--nproc", "2", "--resume", str(run), *FAST),
        ]
        for p in others:
            _, err = p.communicate(timeout=180)
            assert p.returncode == 2, err
            assert err.strip().splitlines()[-1] == (
                f"error: run directory {run} is in use by another lenet process "
                f"(PID {a.pid}); wait for it to end or stop it (kill {a.pid})"
            )
        assert a.poll() is None  # A still trains, undisturbed
        _wait_for(lambda: any(r["kind"] == "epoch" for r in read_metrics(run)), a, "A's first epoch")
    finally:
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=30)
    rows = [(r["kind"], r["step"]) for r in read_metrics(run)]
    assert len(rows) == len(set(rows)) and ("epoch", 16) in rows  # one writer: no duplicated rows
    assert _pid_in_lock(run) == a.pid  # stale
    b = _lenet("train", "--resume", str(run), *FAST)
    _wait_for(lambda: _pid_in_lock(run) == b.pid, b, "the resumed run to take the stale lock")
    b.send_signal(signal.SIGTERM)
    _, err = b.communicate(timeout=180)
    assert b.returncode == 143, err
    assert not (run / LOCK).exists()
