"""Shared pytest fixtures: the real MNIST folder (skipped where absent), the embedded subset, and
small lenet5 checkpoints trained once per session (a few seconds). Helpers live in helpers.py.

Tests that need the real MNIST IDX files read them from the folder named by the environment variable
``LENETLAB_TEST_MNIST``; without it, from ``../shared/data/mnist`` next to the repository. A relative
value is taken relative to the repository root.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # helpers.py beside the tests (importlib mode)

from helpers import train_small, write_digit_recognizer

REPO = Path(__file__).resolve().parents[1]
MNIST_ENV = "LENETLAB_TEST_MNIST"
DEFAULT_MNIST = "../shared/data/mnist"


def mnist_test_dir() -> Path:
    """Where the tests look for real MNIST: ``$LENETLAB_TEST_MNIST``, else ``../shared/data/mnist``."""
    return (REPO / os.environ.get(MNIST_ENV, DEFAULT_MNIST)).resolve()


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the four real MNIST IDX files, or skip the test with the reason."""
    folder = mnist_test_dir()
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {folder} (set {MNIST_ENV} to the folder with the IDX files)")
    return folder


@pytest.fixture(scope="session")
def subset():
    """The embedded 1,000/200/200 MNIST subset as :class:`lenetlab.data.Splits`."""
    from lenetlab.data import load

    return load("mnist-subset")


@pytest.fixture(scope="session")
def digit_ckpt(subset, tmp_path_factory) -> Path:
    """A lenet5 trained on the embedded subset with affine augmentation (~96% test accuracy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on 2 shared cores one thread is several times faster than two
    try:
        path = tmp_path_factory.mktemp("ckpt") / "lenet5.pt"
        return train_small(subset, path, epochs=12, augment="affine", seed=0, metrics=path.parent / "metrics.jsonl")
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def second_ckpt(subset, tmp_path_factory) -> Path:
    """Another, weaker lenet5 (fewer epochs, no augmentation, other seed) for ensembles."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_small(subset, tmp_path_factory.mktemp("ckpt2") / "lenet5b.pt", epochs=4, augment="none", seed=1)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    """Run the test with one torch thread (benchmarks' own figures are per thread count), then restore."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def tmpfs(tmp_path):
    """A factory ``tmpfs(size, options="")`` mounting a small tmpfs (``size`` as mount takes it: ``300k``)
    under ``tmp_path`` and returning its folder, to fill a disk for real; unmounted afterwards. Skips the
    test with the reason where mounting is not allowed (it needs root)."""
    mounted = []

    def make(size: str, options: str = "") -> Path:
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        opts = f"size={size}" + (f",{options}" if options else "")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(
                f"cannot mount a tmpfs ({(r.stderr or 'mount failed').strip()}): run as root to test a full disk"
            )
        mounted.append(folder)
        return folder

    yield make
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def readonly_dir(tmp_path, tmpfs):
    """A folder nothing can be written in: mode 0555 for a normal user; for root (whom modes do not
    stop) a read-only tmpfs. Skips when neither is possible."""
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    yield tmpfs("64k", "ro")


@pytest.fixture(scope="session")
def digitrec(subset, tmp_path_factory) -> Path:
    """A small Kaggle "Digit Recognizer" folder in its exact format, made from the embedded subset:
    ``train.csv`` (``label,pixel0..pixel783``, 300 rows) and ``test.csv`` (``pixel0..pixel783``, 100
    rows); the test labels, for scoring, in ``solution.csv`` (``ImageId,Label``)."""
    return write_digit_recognizer(tmp_path_factory.mktemp("kaggle") / "digit-recognizer", subset, 300, 100)


def pytest_collection_modifyitems(items):
    """Run the modules with the most ``slow`` tests first, each module's tests together and in their
    order: with ``-n auto`` (``--dist loadfile``, pyproject.toml) the longest files start at once and
    the quick ones fill the workers' ends, instead of one worker finishing the DDP tests alone."""
    files: dict = {}
    for item in items:
        files.setdefault(item.path, []).append(item)
    order = sorted(files.values(), key=lambda tests: -sum(t.get_closest_marker("slow") is not None for t in tests))
    items[:] = [item for tests in order for item in tests]
