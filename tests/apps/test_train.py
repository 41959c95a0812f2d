"""Fast checks of the DDP plumbing that need no second process: the `--nproc` launcher (argument
round trip, early user errors, exit-status propagation), the context chosen from the environment,
the collective timeout setting and `--sync-bn`."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
import torch

from lenetlab.apps import train as launch
from lenetlab.cli import build_parser, main
from lenetlab.errors import ConfigError
from lenetlab.train.config import config_overrides
from lenetlab.train.dist import (
    DistributedContext,
    SingleProcess,
    timeout_from_env,
)

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LENETLAB_DIST_TIMEOUT")


@pytest.fixture(autouse=True)
def _no_torchrun_env(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)


def _parse(*argv: str):
    return build_parser().parse_args(["train", *argv])


def test_train_argv_round_trips_every_kind_of_flag():
    args = _parse(
        "--nproc",
        "2",
        "--epochs",
        "3",
        "--lr",
        "0.0015",
        "--no-plots",
        "--deterministic",
        "--model-kwargs",
        '{"dropout": 0.1}',
        "--val-size",
        "none",
        "--name",
        "x",
        "--json",
        "--overwrite",
    )
    argv = launch.train_argv(args)
    assert "--nproc" not in argv
    again = _parse(*argv)
    assert config_overrides(again) == config_overrides(args)
    assert (again.json, again.overwrite, again.resume, again.config) == (True, True, None, None)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--nproc", "3"], "global batch 64 is not divisible by --nproc 3"),
        (["--nproc", "0"], "--nproc must be >= 1"),
        (["--nproc", "2", "--epochs", "0"], "field 'epochs' must be >= 1"),
        (["--nproc", "2", "--resume", "nowhere"], "--resume nowhere: no last.pt"),
    ],
)
def test_launcher_user_errors_before_starting_processes(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(launch.subprocess, "Popen", lambda *a, **k: pytest.fail("must not launch"))
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_launcher_refuses_an_existing_run_directory(capsys, monkeypatch, tmp_path):
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "config.json").write_text("{}")
    monkeypatch.setattr(launch.subprocess, "Popen", lambda *a, **k: pytest.fail("must not launch"))
    assert main(["train", "--nproc", "2", "--out-dir", str(tmp_path / "runs"), "--name", "x"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_nproc_inside_torchrun_is_an_error(capsys, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--nproc", "2"]) == 2
    assert "already running under torchrun" in capsys.readouterr().err


def test_launcher_runs_torchrun_and_propagates_its_status(capsys, monkeypatch, tmp_path):
    calls = []

    class FakeTorchrun:
        def __init__(self, cmd, env):
            calls.append((cmd, env))

        def wait(self):
            return 3

    monkeypatch.setattr(launch.subprocess, "Popen", FakeTorchrun)
    status = main(["train", "--nproc", "2", "--out-dir", str(tmp_path), "--name", "r", "--epochs", "1"])
    assert status == 3
    cmd, env = calls[0]
    assert cmd[1:3] == ["-c", launch.TORCHRUN] and "from torch.distributed.run import main" in launch.TORCHRUN
    assert cmd[3:9] == ["--standalone", "--nproc_per_node", "2", "-m", "lenetlab.cli", "train"]
    assert env["OMP_NUM_THREADS"] == os.environ.get("OMP_NUM_THREADS", "1")  # set to 1 unless the user chose
    err = capsys.readouterr().err
    assert "torchrun exited with status 3" in err and f"--resume {tmp_path / 'r'}" in err


def test_launcher_forwards_sigterm_to_torchrun_and_exits_143(capsys, monkeypatch, tmp_path):
    """`kill PID` reaches the launcher only: it passes SIGTERM on to torchrun (which passes it to the ranks),
    waits for it, prints how to continue and exits 143. (The real chain: tests/train/test_ddp.py.)"""
    import os
    import signal

    sent = []

    class FakeTorchrun:
        def __init__(self, cmd, env):
            pass

        def send_signal(self, sig):
            sent.append(sig)

        def wait(self):
            if not sent:
                os.kill(os.getpid(), signal.SIGTERM)  # the user's kill, while the launcher waits
            return 143

    monkeypatch.setattr(launch.subprocess, "Popen", FakeTorchrun)
    assert main(["train", "--nproc", "2", "--out-dir", str(tmp_path), "--name", "r", "--epochs", "1"]) == 143
    assert sent == [signal.SIGTERM]
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"terminated (SIGTERM): continue with lenet train --nproc 2 --resume {tmp_path / 'r'}"
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_unwritable_out_dir_is_one_line(readonly_dir, capsys):
    assert main(["train", "--out-dir", str(readonly_dir), "--name", "r", "--epochs", "1", "--num-threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {readonly_dir / 'r'}: cannot write (") and err.count("\n") == 1, err


def test_timeout_setting(monkeypatch):
    assert timeout_from_env() == timedelta(seconds=1800)
    monkeypatch.setenv("LENETLAB_DIST_TIMEOUT", "45")
    assert timeout_from_env() == timedelta(seconds=45)
    for bad in ("soon", "0"):
        monkeypatch.setenv("LENETLAB_DIST_TIMEOUT", bad)
        with pytest.raises(ConfigError, match="LENETLAB_DIST_TIMEOUT"):
            timeout_from_env()


def test_sync_bn_needs_cuda_and_keeps_plain_checkpoint_keys():
    from lenetlab.models import create

    ctx = DistributedContext(rank=0, world_size=2)  # no group needed for these two methods
    model = create("lenet5-bn")
    with pytest.raises(ConfigError, match="field 'sync_bn'.*CUDA"):
        ctx.sync_batchnorm(model, torch.device("cpu"))
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(create("lenet5-bn"))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())
    create("lenet5-bn").load_state_dict(synced.state_dict())  # same keys: loads without SyncBatchNorm
    assert SingleProcess().sync_batchnorm(model, torch.device("cpu")) is model


def test_sync_bn_flag_single_process_trains(tmp_path):
    # one process: plain BatchNorm is already global, --sync-bn changes nothing and is accepted
    assert (
        main(
            [
                "train",
                "--sync-bn",
                "--model",
                "lenet5-bn",
                "--epochs",
                "1",
                "--no-plots",
                "--progress",
                "none",
                "--num-threads",
                "1",
                "--out-dir",
                str(tmp_path),
                "--name",
                "bn",
            ]
        )
        == 0
    )


class _Recording(DistributedContext):
    """Rank 1 of 2 without a process group: remembers what it would contribute to each all-reduce."""

    def __init__(self, rank, sent=None):
        super().__init__(rank=rank, world_size=2)
        self.sent, self.calls = sent if sent is not None else [], 0

    def all_reduce_sum(self, tensor):
        if self.rank == 1:
            self.sent.append(tensor.clone())
        else:  # rank 0 adds rank 1's contribution to the same call
            tensor += self.sent[self.calls]
        self.calls += 1
        return tensor


@pytest.mark.parametrize("n", [199, 200, 7])
def test_sharded_evaluation_equals_whole_split(subset, n):
    from lenetlab.data.splits import Split
    from lenetlab.inference.evaluate import evaluate, evaluate_sharded
    from lenetlab.models import create

    torch.manual_seed(0)
    model = create("lenet5").eval()
    split = Split(subset.test.x[:n], subset.test.y[:n])
    whole = evaluate(model, split, subset.input_spec)
    rank1 = _Recording(1)
    evaluate_sharded(model, split, subset.input_spec, "cpu", 1, 2, rank1.all_reduce_sum)
    rank0 = _Recording(0, rank1.sent)
    got = evaluate_sharded(model, split, subset.input_spec, "cpu", 0, 2, rank0.all_reduce_sum)
    assert got.n == whole.n == n  # 100 + 99 for n=199: no padding, nothing counted twice
    assert (got.accuracy, got.per_class, got.confusion) == (whole.accuracy, whole.per_class, whole.confusion)
    assert got.loss == pytest.approx(whole.loss, rel=1e-6)


def test_launcher_checks_the_batch_size_the_recipe_chose(digitrec, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(launch.subprocess, "Popen", lambda *a, **k: pytest.fail("must not launch"))
    assert main(["train", "--nproc", "3", "--dataset", str(digitrec)]) == 2  # auto: batch 64
    assert "global batch 64 is not divisible by --nproc 3" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--nproc",
                "3",
                "--dataset",
                str(digitrec),
                "--batch-size",
                "96",
                "--recipe",
                "lenet5",
                "--epochs",
                "0",
            ]
        )
        == 2
    )
    assert "field 'epochs' must be >= 1" in capsys.readouterr().err


def test_mnist_keeps_its_recipe_and_prints_no_recipe_block(capsys, tmp_path):
    assert (
        main(
            [
                "train",
                "--epochs",
                "1",
                "--out-dir",
                str(tmp_path),
                "--name",
                "s",
                "--num-threads",
                "1",
                "--device",
                "cpu",
                "--progress",
                "none",
                "--no-plots",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "recipe auto" not in out and out.startswith("training lenet5 on mnist-subset")
    saved = json.loads((tmp_path / "s" / "config.json").read_text())
    assert (saved["model"], saved["optimizer"], saved["recipe_notes"]["used"]) == ("lenet5", "adam", "lenet5")


def test_a_training_part_of_64k_plus_1_images_trains_with_batch_norm(subset, tmp_path, capsys):
    """The auto recipe picks a batch-norm model in batches of 64; 285 rows leave 257 = 4 x 64 + 1 for
    training, and the lone image joins the last batch instead of stopping epoch 1."""
    from helpers import write_digit_recognizer

    folder = write_digit_recognizer(tmp_path / "dr", subset, 285, 20)
    argv = [
        "train",
        "--dataset",
        str(folder),
        "--epochs",
        "1",
        "--out-dir",
        str(tmp_path),
        "--name",
        "r",
        "--no-plots",
        "--progress",
        "none",
        "--num-threads",
        "1",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "(257 train / 28 dev" in out and "lenet5-modern" in out and "1 epochs x 4 steps" in out


def test_batch_norm_with_a_batch_one_short_of_the_training_split(tmp_path, capsys):
    argv = [
        "train",
        "--model",
        "lenet5-bn",
        "--batch-size",
        "999",
        "--epochs",
        "1",
        "--out-dir",
        str(tmp_path),
        "--name",
        "r",
        "--no-plots",
        "--progress",
        "none",
        "--num-threads",
        "1",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    assert "1 epochs x 1 steps" in capsys.readouterr().out


@pytest.mark.slow
def test_a_budget_is_timed_on_the_batch_the_run_takes_in_bounded_memory(tmp_path):
    """`--budget` with a batch far larger than the dataset times a step on the 200 images (clamped), not
    on 100,000 random ones (23.8 GB before)."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(200):
        cls = tmp_path / "data" / f"c{i % 4}"
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(cls / f"{i}.png")
    code = (
        "import resource, sys\nfrom lenetlab.cli import main\nstatus = main(sys.argv[1:])\n"
        "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(status)\n"
    )
    argv = [
        "train",
        "--dataset",
        str(tmp_path / "data"),
        "--budget",
        "10s",
        "--batch-size",
        "100000",
        "--out-dir",
        str(tmp_path / "runs"),
        "--name",
        "b",
        "--no-plots",
        "--progress",
        "none",
        "--num-threads",
        "1",
    ]
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    maxrss_gb = int(res.stdout.split("maxrss_kb")[-1]) / 2**20  # Linux reports kilobytes
    assert maxrss_gb < 2.0, f"peak RSS {maxrss_gb:.2f} GB"
    assert "fill --budget 10s" in res.stdout  # the epochs came from the measured step


def test_batch_norm_with_batches_of_one_is_one_line(tmp_path, capsys):
    argv = [
        "train",
        "--model",
        "lenet5-bn",
        "--batch-size",
        "1",
        "--max-steps",
        "2",
        "--out-dir",
        str(tmp_path),
        "--name",
        "r",
        "--no-plots",
        "--progress",
        "none",
        "--num-threads",
        "1",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: field 'batch_size': a batch of one example cannot train this model (Expected more")
    assert err.count("\n") == 1


def test_the_summary_sets_the_training_time_against_the_budget(tmp_path):
    from lenetlab.apps.train import format_summary
    from lenetlab.train.rundir import RunResult

    result = RunResult(tmp_path, tmp_path / "best.pt", tmp_path / "last.pt", 0.9, 10, None, 10, 31.4, 29.1)
    lines = format_summary(result, budget_s=30.0).splitlines()
    assert "trained 10 steps in 29.1 s (31.4 s wall; budget 30 s)" in lines
    assert "trained 10 steps in 29.1 s (31.4 s wall)" in format_summary(result).splitlines()
    assert "TensorBoard" not in format_summary(result)  # no event files in the run: nothing to point at


def test_init_pretrained_says_the_replaced_head_in_one_note_line(tmp_path, capsys, monkeypatch):
    """The fine-tuning warning of ``models.create`` reaches the user as one ``note:`` line, not Python's
    two-line UserWarning; the Python API still warns (tests/models/test_finetune.py)."""
    import warnings

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for part in ("train", "test"):
        for i in range(6):
            cls = tmp_path / "data" / part / f"c{i % 3}"
            cls.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(cls / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping the run would fail it
        argv = ["train", "--dataset", str(tmp_path / "data"), "--init", "pretrained", "--dry-run", "--no-plots"]
        assert main([*argv, "--progress", "none", "--num-threads", "1"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "pretrained" in line]
    assert notes == [
        "note: create('lenet5', pretrained=True, num_classes=3): kept the pretrained weights except "
        "output: new, initialised afresh, shape (3, 84) (fine-tune before use)"
    ]
