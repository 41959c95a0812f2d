"""lenetlab.data.load: names vs paths, val split, input specs, real MNIST, the `lenet data` command."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest
import torch

from lenetlab.choices import NAMED_DATASETS
from lenetlab.cli import main
from lenetlab.data import InputSpec, load
from lenetlab.errors import DataError


def test_subset_default(subset):
    assert (len(subset.train), len(subset.dev), len(subset.test)) == (1000, 200, 200)
    assert subset.train.x.dtype == torch.uint8 and subset.train.x.shape[1:] == (1, 28, 28)
    assert subset.train.y.dtype == torch.int64 and subset.class_names == [str(i) for i in range(10)]
    assert subset.input_spec == InputSpec(1, 32, "pad", (0.5,), (0.5,))
    assert load("MNIST-Subset").name == "mnist-subset"  # names are case-insensitive


def test_subset_options():
    s = load("mnist-subset", channels=3, image_size=64, normalize="stats")
    assert s.train.x.shape[1:] == (3, 28, 28) and s.input_spec.channels == 3
    assert s.input_spec.size == 64 and s.input_spec.resize == "resize"
    assert 0.1 < s.input_spec.mean[0] < 0.16 and 0.28 < s.input_spec.std[0] < 0.33
    with pytest.raises(DataError, match="normalize='zscore'"):
        load("mnist-subset", normalize="zscore")


def test_unknown_name_lists_known(capsys):
    with pytest.raises(DataError, match=r"unknown dataset 'emnist' \(known: mnist-subset, mnist, fashion-mnist"):
        load("emnist")
    assert main(["data", "--dataset", "kmnist"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown dataset 'kmnist'" in err
    assert list(NAMED_DATASETS) == ["mnist-subset", "mnist", "fashion-mnist"]


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load(str(tmp_path / "nothing" / "mnist.json.gz"))


def test_val_split_seeded_and_disjoint(idx_dir):
    a = load("mnist", idx_dir, val_size=12, seed=1)
    b = load("mnist", idx_dir, val_size=12, seed=1)
    c = load("mnist", idx_dir, val_size=12, seed=2)
    assert (len(a.train), len(a.dev), len(a.test)) == (48, 12, 20)
    assert torch.equal(a.dev.x, b.dev.x) and not torch.equal(a.dev.x, c.dev.x)
    rows = {bytes(r.numpy()) for r in torch.cat([a.train.x, a.dev.x]).flatten(1)}
    assert len(rows) == 60  # train and dev partition the training file
    with pytest.raises(DataError, match="val_size=60"):
        load("mnist", idx_dir, val_size=60)


def test_idx_folder_as_path(idx_dir):
    s = load(str(idx_dir))
    assert s.name == "idx" and (len(s.train), len(s.dev), len(s.test)) == (54, 6, 20)
    with pytest.raises(DataError, match="checksums are known only for named datasets"):
        load(str(idx_dir), verify=True)


def test_cache_subfolder_and_env(idx_dir, tmp_path, monkeypatch):
    root = tmp_path / "root"
    shutil.copytree(idx_dir, root / "fashion-mnist")
    monkeypatch.setenv("LENETLAB_DATA", str(root))
    s = load("fashion-mnist")
    assert s.class_names[0] == "T-shirt/top" and s.source == str((root / "fashion-mnist").resolve())


def test_verify_refuses_unknown_content(idx_dir):
    with pytest.raises(DataError, match="checksum mismatch"):
        load("mnist", idx_dir, verify=True)  # random images are not MNIST


# ------------------------------------------------------------------- real MNIST
def test_real_mnist(mnist_dir):
    s = load("mnist", mnist_dir, verify=True)
    assert (len(s.train), len(s.dev), len(s.test)) == (55000, 5000, 10000)
    assert s.test.y[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test labels
    assert s.train.y.bincount().min() > 4000


def test_real_mnist_corrupted_copy_refused(mnist_dir, tmp_path, capsys):
    d = tmp_path / "m"
    shutil.copytree(mnist_dir, d)
    p = d / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(p.read_bytes()))
    data[100] = (data[100] + 1) % 10  # a plausible but wrong label: only the checksum can tell
    p.write_bytes(gzip.compress(bytes(data)))
    assert len(load("mnist", d).test) == 10000  # without --verify it loads
    assert main(["data", "--dataset", "mnist", "--data-dir", str(d), "--verify"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "t10k-labels-idx1-ubyte.gz: checksum mismatch" in err


def test_cli_done_when(mnist_dir, capsys):
    assert main(["data", "--dataset", "mnist", "--data-dir", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    assert "train 55,000 / dev 5,000 / test 10,000" in out and str(mnist_dir.resolve()) in out
    assert main(["data", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--json", "--verify"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["splits"] == {"train": 55000, "dev": 5000, "test": 10000} and d["verified"]
    assert d["image_shape"] == [1, 28, 28] and d["num_classes"] == 10
    assert abs(d["pixel_mean"][0] - 0.1307) < 0.002 and abs(d["pixel_std"][0] - 0.3081) < 0.002


def test_cli_subset_json(capsys):
    assert main(["data", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["splits"] == {"train": 1000, "dev": 200, "test": 200} and sum(d["train_class_counts"]) == 1000


@pytest.mark.slow
def test_subprocess_exit_2_without_traceback(tmp_path):
    import subprocess
    import sys

    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03")  # one of the four files only
    r = subprocess.run(
        [sys.executable, "-m", "lenetlab.cli", "data", "--dataset", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: ") and "train-labels-idx1-ubyte.gz: file not found" in r.stderr


@pytest.mark.slow
def test_closed_stdout_pipe_ends_quietly():
    """`lenet data | head -1`: the reader leaves early; no BrokenPipeError traceback, SIGPIPE-style status."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "lenetlab.cli", "data"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # gone before lenet prints anything (it needs a second or more to import torch)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err
