"""Datasets as tensors: ``lenetlab.data.load(name, ...)`` returns :class:`Splits`.

Example::

    from lenetlab.data import load, TensorLoader
    s = load("mnist", data_dir="../shared/data/mnist")        # 55,000 / 5,000 / 10,000
    s.train.x.shape, s.train.y.shape                            # uint8 [55000, 1, 28, 28], int64 [55000]
    s.input_spec                                                # pad 28→32, mean = std = 0.5
    loader = TensorLoader(s.train.x, s.train.y, 128, shuffle=True, seed=0, device="cpu", spec=s.input_spec)
    for epoch in range(2):
        loader.set_epoch(epoch)
        for xb, yb in loader:                                   # float [128, 1, 32, 32], int64 [128]
            ...

How ``name`` is read (first match wins):

1. a known name, case-insensitive: ``mnist-subset`` (embedded, the default), ``mnist``,
   ``fashion-mnist`` (files in ``data_dir``, ``$LENETLAB_DATA`` or ``~/.cache/lenetlab``;
   ``download=True`` fetches missing ones);
2. otherwise a path (anything that exists, contains a path separator or ends in ``.gz``/``.json``):
   an NNDL ``mnist.json.gz`` file; a folder with ``train.csv`` (Kaggle classify-leaves layout); a
   folder holding the four MNIST-style IDX files; a folder of class sub-folders (optionally under
   ``train/`` and ``test/``);
3. anything else is an unknown name: one-line DataError listing the known names.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from lenetlab.data.common import finish
from lenetlab.data.loader import TensorLoader, eval_loader
from lenetlab.data.splits import Split, Splits
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import DataError

__all__ = ["InputSpec", "Split", "Splits", "TensorLoader", "eval_loader", "known_datasets", "load", "prepare"]

_NAMED = ("mnist-subset", "mnist", "fashion-mnist")


def known_datasets() -> list[str]:
    """The dataset names :func:`load` accepts besides paths."""
    return list(_NAMED)


def _load_subset(**opts) -> Splits:
    with resources.files("lenetlab.data").joinpath("assets/mnist_subset.npz").open("rb") as f:
        z = np.load(f)
        parts = {k: torch.from_numpy(z[k].copy()) for k in z.files}

    def split(p: str) -> Split:
        return Split(parts[f"{p}_x"].unsqueeze(1), parts[f"{p}_y"].long())

    return finish("mnist-subset", split("train"), split("dev"), split("test"), [str(i) for i in range(10)],
                  "embedded in the lenetlab package (lenetlab/data/assets/mnist_subset.npz)",
                  default_norm="half", **opts)


def _looks_like_path(name: str) -> bool:
    return (os.path.exists(name) or "/" in name or os.sep in name
            or name.endswith((".gz", ".json", ".csv")) or name.startswith((".", "~")))


def load(name: str = "mnist-subset", data_dir: str | os.PathLike | None = None, *, download: bool = False,
         verify: bool = False, val_size: int | None = None, seed: int = 0, image_size: int | None = None,
         channels: int | None = None, normalize: str | None = None, mirrors=None,
         progressbar: bool = True) -> Splits:
    """Load dataset ``name`` (a known name or a path, see the module doc) as :class:`Splits`.

    Images are ``uint8 [N, C, H, W]``, labels ``int64 [N]`` (``None`` for an unlabelled test set,
    whose ``ids`` then name the images). ``val_size`` (default 5,000 for MNIST/Fashion-MNIST, a
    tenth of the training images for folders) is carved from the training set with ``seed``;
    the embedded subset and NNDL files keep their own dev split. ``image_size`` sets the model
    input size (``spec.size``; image folders are also resized to it when loaded), ``channels``
    converts to 1 (gray) or 3 (RGB). ``normalize`` is one of
    :data:`lenetlab.data.transforms.NORMALIZE_CHOICES`: ``default`` is ``half`` (mean = std = 0.5)
    for digits and ``stats`` (the training split's per-channel statistics) for image folders. ``mirrors`` overrides the download mirrors (base URLs). Every bad input
    raises a one-line :class:`DataError`.
    """
    opts = dict(channels=channels, image_size=image_size, normalize=normalize)
    key = str(name).strip().lower()
    if key == "mnist-subset":
        return _load_subset(**opts)
    if key in ("mnist", "fashion-mnist"):
        from lenetlab.data.mnist import load_idx

        return load_idx(key, data_dir, download=download, verify=verify, val_size=val_size, seed=seed,
                        mirrors=mirrors, progressbar=progressbar, **opts)
    name = str(name)
    if not _looks_like_path(name):
        raise DataError(f"unknown dataset {name!r} (known: {', '.join(_NAMED)}; or a path to an NNDL "
                        f"mnist.json.gz file or an image folder)")
    path = Path(name).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        from lenetlab.data.nndl import load_nndl

        return load_nndl(path, **opts)
    from lenetlab.data.folders import load_folder

    return load_folder(path, val_size=val_size, seed=seed, verify=verify, **opts)
