"""Fixtures for the model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each model test on one intra-op thread (restored afterwards).

    These tests run small tensors on a CPU shared with other jobs; there two threads per process
    oversubscribe the cores and a LeNet step ran 4-5x slower than with one thread.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
