"""Shared pytest fixtures: the real MNIST folder (skipped where absent) and the embedded subset.

Tests that need the real MNIST IDX files read them from the folder named by the environment variable
``LENETLAB_TEST_MNIST``; without it, from ``../shared/data/mnist`` next to the repository. A relative
value is taken relative to the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
