"""DistributedDataParallel under torchrun: 2 CPU processes (gloo, --standalone on localhost) on the
embedded subset, through the real CLI (`torchrun -m lenetlab.cli train` / `lenet train --nproc 2`).

Checked: both ranks hold identical weights; the 2-process run matches a 1-process run with the same
global batch (tolerance below); exactly one run directory and one set of checkpoints; exact sharded
evaluation; a killed rank and a raising rank end the job non-zero with a message naming the rank and
leave last.pt intact; resuming that run with 2 processes ends where the uninterrupted run ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lenetlab.cli import main
from lenetlab.inference.run import read_metrics
from lenetlab.models.checkpoint import build_model, load_checkpoint

WORKER = Path(__file__).with_name("_ddp_worker.py")
# 2 epochs x 16 steps of 64 (32 per rank); last.pt every 4 steps; deterministic CPU kernels
ARGS = [
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--deterministic",
    "--save-every",
    "4",
    "--log-steps",
    "4",
    "--progress",
    "plain",
    "--no-plots",
    "--num-threads",
    "1",
    "--device",
    "cpu",
]
# Tolerances against one process with the same global batch. The two runs see the same global
# batches (the rank shards of batch b are exactly examples [64b, 64b+64) of the epoch's permutation)
# and DDP averages the two per-rank mean gradients, so only float summation order differs:
# measured max |weight diff| 1.1e-6 after 32 Adam steps and identical accuracies (13:55 UTC).
WEIGHT_TOL = 1e-3
ACCURACY_TOL = 0.02  # 4 of the 200 test images


def _env() -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", LENETLAB_DIST_TIMEOUT="60", PYTHONUNBUFFERED="1")
    # the processes run in tmp_path: a relative PYTHONPATH=src would miss this checkout's code and import
    # whatever lenetlab the interpreter has installed
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _torchrun(cwd: Path, *worker_and_args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        *worker_and_args,
    ]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _weights(path: Path) -> dict:
    return load_checkpoint(path)["state_dict"]


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One uninterrupted 2-process run (with per-rank weight hashes) and its 1-process twin."""
    root = tmp_path_factory.mktemp("ddp")
    hashes = root / "hashes"
    hashes.mkdir()
    t = time.perf_counter()
    proc = _torchrun(root, "--hash-dir", str(hashes), "--", "--out-dir", "runs", "--name", "two", *ARGS)
    seconds = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(["train", "--out-dir", str(root / "single"), "--name", "one", *ARGS]) == 0
    return {
        "root": root,
        "run": root / "runs" / "two",
        "single": root / "single" / "one",
        "proc": proc,
        "hashes": hashes,
        "seconds": seconds,
    }


@pytest.mark.slow
def test_ranks_end_with_identical_weights(ddp_run):
    r0 = (ddp_run["hashes"] / "rank0.txt").read_text().splitlines()
    r1 = (ddp_run["hashes"] / "rank1.txt").read_text().splitlines()
    assert [line.split()[:2] for line in r0] == [["epoch", "16"], ["epoch", "32"], ["test", "32"]]
    assert r0 == r1  # same weights on both ranks after every epoch and for the best model
    # and rank 0 checkpointed exactly the weights it trained
    import importlib.util

    from lenetlab.models import create

    model = create("lenet5")
    model.load_state_dict(_weights(ddp_run["run"] / "last.pt"))
    spec = importlib.util.spec_from_file_location("_ddp_worker", WORKER)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    assert r0[1].split()[2] == worker._digest(model)


@pytest.mark.slow
def test_two_processes_match_one_process(ddp_run):
    two, one = ddp_run["run"], ddp_run["single"]
    assert _max_diff(_weights(two / "last.pt"), _weights(one / "last.pt")) < WEIGHT_TOL
    test2 = [r for r in read_metrics(two) if r["kind"] == "test"][0]
    test1 = [r for r in read_metrics(one) if r["kind"] == "test"][0]
    assert abs(test2["accuracy"] - test1["accuracy"]) <= ACCURACY_TOL
    # reduced train metrics: the examples of both ranks are counted once (16 steps x 64, last one 40)
    ep2 = [r for r in read_metrics(two) if r["kind"] == "epoch"]
    ep1 = [r for r in read_metrics(one) if r["kind"] == "epoch"]
    assert [r["step"] for r in ep2] == [16, 32]
    for a, b in zip(ep2, ep1):
        assert abs(a["loss"] - b["loss"]) < 1e-3 and abs(a["accuracy"] - b["accuracy"]) <= 0.01


@pytest.mark.slow
def test_one_run_directory_one_set_of_checkpoints_loadable_without_ddp(ddp_run):
    runs = ddp_run["root"] / "runs"
    assert [p.name for p in runs.iterdir()] == ["two"]
    files = sorted(p.name for p in ddp_run["run"].iterdir())
    events = [f for f in files if f.startswith("events.out.tfevents.")]
    assert [f for f in files if f not in events] == [
        "best.pt",
        "config.json",
        "last.pt",
        "metrics.csv",
        "metrics.jsonl",
    ]
    assert len(events) == 1  # rank 0 alone writes TensorBoard events (one writer, no plots)
    rows = read_metrics(ddp_run["run"])
    keys = [(r["kind"], r["step"]) for r in rows]
    assert len(keys) == len(set(keys))  # rank 0 alone wrote the metrics
    assert [k for k in keys if k[0] == "train"] == [("train", s) for s in range(4, 33, 4)]
    out = ddp_run["proc"].stdout
    assert out.count("best dev accuracy") == 1 and out.count("training lenet5") == 1
    assert "DDP over 2 processes (gloo" in out
    ckpt = load_checkpoint(ddp_run["run"] / "best.pt")
    assert not any(k.startswith("module.") for k in ckpt["state_dict"])
    model = build_model(ckpt)  # a plain nn.Module, no process group needed
    assert not isinstance(model, torch.nn.parallel.DistributedDataParallel)


@pytest.mark.slow
def test_sharded_evaluation_is_exact(ddp_run, subset):
    from lenetlab.data.transforms import InputSpec
    from lenetlab.inference.evaluate import evaluate

    ckpt = load_checkpoint(ddp_run["run"] / "best.pt")
    model, spec = build_model(ckpt), InputSpec.from_dict(ckpt["input_spec"])
    dev, test = evaluate(model, subset.dev, spec), evaluate(model, subset.test, spec)
    assert ckpt["dev_accuracy"] == dev.accuracy  # computed from two shards of 100, summed
    row = [r for r in read_metrics(ddp_run["run"]) if r["kind"] == "test"][0]
    assert row["n"] == len(subset.test) == 200  # nothing padded or counted twice
    assert row["accuracy"] == test.accuracy and abs(row["loss"] - test.loss) < 1e-6
    assert row["per_class"] == test.per_class


@pytest.mark.slow
def test_killed_rank_ends_job_and_resume_with_two_processes(ddp_run, tmp_path):
    t = time.perf_counter()
    proc = _torchrun(
        tmp_path,
        "--fail-rank",
        "1",
        "--fail-step",
        "26",
        "--fail-how",
        "kill",
        "--",
        "--out-dir",
        "runs",
        "--name",
        "cut",
        *ARGS,
    )
    assert time.perf_counter() - t < 120
    assert proc.returncode != 0
    assert "rank      : 1" in proc.stderr and "SIGKILL" in proc.stderr
    run = tmp_path / "runs" / "cut"
    last = load_checkpoint(run / "last.pt")  # intact and loadable
    assert last["step"] == 24  # the save_every checkpoint before the kill at step 28
    # resume with `lenet train --nproc 2` (the launcher runs torchrun -m lenetlab.cli train)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lenetlab.cli",
            "train",
            "--nproc",
            "2",
            "--resume",
            str(run),
            "--num-threads",
            "1",
            "--progress",
            "plain",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming lenet5" in proc.stdout and "launching:" in proc.stderr
    assert _max_diff(_weights(run / "last.pt"), _weights(ddp_run["run"] / "last.pt")) < 1e-6
    resumed = [(r["kind"], r["step"]) for r in read_metrics(run)]
    assert resumed == [(r["kind"], r["step"]) for r in read_metrics(ddp_run["run"])]


@pytest.mark.slow
def test_raising_rank_ends_job_with_its_rank_and_message(tmp_path):
    t = time.perf_counter()
    proc = _torchrun(
        tmp_path,
        "--fail-rank",
        "1",
        "--fail-step",
        "6",
        "--fail-how",
        "raise",
        "--",
        "--out-dir",
        "runs",
        "--name",
        "boom",
        *ARGS,
    )
    assert time.perf_counter() - t < 120  # rank 0 did not wait forever
    assert proc.returncode != 0
    assert "[rank 1/2] failed: RuntimeError: injected failure at step 8" in proc.stderr
    assert "rank      : 1" in proc.stderr  # torchrun's failure report names the root-cause rank
    assert load_checkpoint(tmp_path / "runs" / "boom" / "last.pt")["step"] == 4


@pytest.mark.slow
def test_sigterm_to_lenet_train_nproc_2_saves_on_every_rank_and_resumes_exactly(ddp_run, tmp_path):
    """`kill -TERM` of `lenet train --nproc 2`: the launcher forwards it to torchrun, torchrun to both ranks;
    they agree on one step boundary, rank 0 saves last.pt there, every process ends with 143 and the
    resume command, without a traceback. Resuming with 2 processes ends where the uninterrupted run did."""
    run = tmp_path / "runs" / "term"
    cmd = [sys.executable, "-m", "lenetlab.cli", "train", "--nproc", "2", "--out-dir", "runs", "--name", "term", *ARGS]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ck = torch.load(run / "last.pt", weights_only=True)
            except Exception:  # not written yet
                ck = None
            if ck is not None and ck["step"] > 0 and ck["batch"] > 0:  # inside the training loop
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.005)
        out, err = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-3000:]
    step = load_checkpoint(run / "last.pt", training=True)["step"]
    assert 0 < step < 32
    assert (
        f"terminated (SIGTERM) at step {step}: saved runs/term/last.pt; resume with: "
        f"lenet train --nproc 2 --resume runs/term"
    ) in err
    assert (
        err.strip().splitlines()[-1] == "terminated (SIGTERM): continue with lenet train --nproc 2 --resume runs/term"
    )
    assert "Traceback" not in err and "failed" not in err
    assert not (run / ".lock").exists()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lenetlab.cli",
            "train",
            "--nproc",
            "2",
            "--resume",
            str(run),
            "--num-threads",
            "1",
            "--progress",
            "plain",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _max_diff(_weights(run / "last.pt"), _weights(ddp_run["run"] / "last.pt")) < 1e-6
    assert [(r["kind"], r["step"]) for r in read_metrics(run)] == [
        (r["kind"], r["step"]) for r in read_metrics(ddp_run["run"])
    ]
