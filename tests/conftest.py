"""Shared pytest fixtures: the real MNIST folder (skipped where absent), the embedded subset, and
small lenet5 checkpoints trained once per session (a few seconds). Helpers live in helpers.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # helpers.py beside the tests (importlib mode)

from helpers import train_small, write_digit_recognizer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the four real MNIST IDX files, or skip the test with the reason."""
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST}")
    return SHARED_MNIST


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
        return train_small(subset, path, epochs=12, augment="affine", seed=0,
                           metrics=path.parent / "metrics.jsonl")
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


@pytest.fixture(scope="session")
def digitrec(subset, tmp_path_factory) -> Path:
    """A small Kaggle "Digit Recognizer" folder in its exact format, made from the embedded subset:
    ``train.csv`` (``label,pixel0..pixel783``, 300 rows) and ``test.csv`` (``pixel0..pixel783``, 100
    rows); the test labels, for scoring, in ``solution.csv`` (``ImageId,Label``)."""
    return write_digit_recognizer(tmp_path_factory.mktemp("kaggle") / "digit-recognizer", subset, 300, 100)
