"""Datasets as tensors: ``lenetlab.data.load(name, ...)`` returns :class:`Splits`.

(Foundation stub: only the embedded ``mnist-subset`` for now; the full data layer replaces this.)
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch

from lenetlab.data.splits import Split, Splits
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import DataError

__all__ = ["InputSpec", "Split", "Splits", "load", "prepare"]


def load(name: str = "mnist-subset", data_dir=None, **kwargs) -> Splits:
    """Load dataset ``name`` as :class:`Splits` of ``uint8 [N, 1, 28, 28]`` images and int64 labels."""
    if name != "mnist-subset":
        raise DataError(f"unknown dataset {name!r}")
    with resources.files("lenetlab.data").joinpath("assets/mnist_subset.npz").open("rb") as f:
        z = np.load(f)
        parts = {k: torch.from_numpy(z[k].copy()) for k in z.files}

    def split(p: str) -> Split:
        return Split(parts[f"{p}_x"].unsqueeze(1), parts[f"{p}_y"].long())

    return Splits("mnist-subset", split("train"), split("dev"), split("test"), [str(i) for i in range(10)],
                  InputSpec(), source="embedded in the lenetlab package")
