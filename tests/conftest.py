"""Shared pytest fixtures: the real MNIST folder (skipped where absent) and the embedded subset."""

from __future__ import annotations

from pathlib import Path

import pytest

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
