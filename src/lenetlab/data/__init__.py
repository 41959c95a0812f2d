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
2. otherwise a path (anything that exists, contains a path separator or ends in ``.gz``/``.json``/``.csv``):
   a ``.csv`` file (always read as CSV, see :mod:`lenetlab.data.csvtable`: image names and labels,
   or pixel values as Kaggle's Digit Recognizer); an NNDL ``mnist.json.gz`` file; a folder with
   ``train.csv``/``test.csv`` (Kaggle classify-leaves or Digit Recognizer layout, told apart by the
   header); a folder holding the four MNIST-style IDX files; a folder of class sub-folders
   (optionally under ``train/`` and ``test/``);
3. anything else is an unknown name: one-line DataError listing the known names.

:func:`inspect` measures a dataset without decoding its images (sizes, classes, balance): the
facts the automatic training recipe (:mod:`lenetlab.train.recipe`) is chosen from.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from lenetlab.data.common import finish
from lenetlab.data.csvtable import Columns
from lenetlab.data.facts import DatasetFacts, inspect_path, named_facts
from lenetlab.data.folders import load_csv_file, load_folder
from lenetlab.data.loader import TensorLoader, eval_loader
from lenetlab.data.mnist import load_idx
from lenetlab.data.nndl import load_nndl
from lenetlab.data.splits import Split, Splits
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import DataError

__all__ = ["Columns", "DatasetFacts", "InputSpec", "Split", "Splits", "TensorLoader", "eval_loader", "inspect",
           "known_datasets", "load", "prepare"]

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


def _path_of(name: str) -> Path:
    """``name`` as an existing path, or a one-line DataError (unknown name, or no such file)."""
    if not _looks_like_path(name):
        raise DataError(f"unknown dataset {name!r} (known: {', '.join(_NAMED)}; or a path to an NNDL "
                        f"mnist.json.gz file, a CSV file or an image folder)")
    path = Path(name).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    return path


def load(name: str = "mnist-subset", data_dir: str | os.PathLike | None = None, *, download: bool = False,
         verify: bool = False, val_size: int | None = None, seed: int = 0, image_size: int | None = None,
         channels: int | None = None, normalize: str | None = None, mirrors=None,
         progressbar: bool = True, image_column: str | None = None, label_column: str | None = None,
         id_column: str | None = None) -> Splits:
    """Load dataset ``name`` (a known name or a path, see the module doc) as :class:`Splits`.

    Images are ``uint8 [N, C, H, W]``, labels ``int64 [N]`` (``None`` for an unlabelled test set,
    whose ``ids`` then name the images). ``val_size`` (default 5,000 for MNIST/Fashion-MNIST, a
    tenth of the training images for folders) is carved from the training set with ``seed``;
    the embedded subset and NNDL files keep their own dev split. ``image_size`` sets the model
    input size (``spec.size``; image folders are also resized to it when loaded), ``channels``
    converts to 1 (gray) or 3 (RGB). ``normalize`` is one of
    :data:`lenetlab.choices.NORMALIZE_CHOICES`: ``default`` is ``half`` (mean = std = 0.5)
    for digits and ``stats`` (the training split's per-channel statistics) for image folders. ``mirrors`` overrides the download mirrors (base URLs). ``image_column``,
    ``label_column`` and ``id_column`` name a CSV's columns (defaults ``image``, ``label``, none). Every
    bad input raises a one-line :class:`DataError`.
    """
    opts = dict(channels=channels, image_size=image_size, normalize=normalize)
    key = str(name).strip().lower()
    if key == "mnist-subset":
        return _load_subset(**opts)
    if key in ("mnist", "fashion-mnist"):
        return load_idx(key, data_dir, download=download, verify=verify, val_size=val_size, seed=seed,
                        mirrors=mirrors, progressbar=progressbar, **opts)
    path = _path_of(str(name))
    columns = Columns.of(image_column, label_column, id_column)
    if path.is_file() and path.suffix.lower() == ".csv":
        return load_csv_file(path, columns=columns, val_size=val_size, seed=seed, **opts)
    if path.is_file():
        return load_nndl(path, **opts)
    return load_folder(path, val_size=val_size, seed=seed, verify=verify, columns=columns, **opts)


def inspect(name: str = "mnist-subset", *, image_column: str | None = None, label_column: str | None = None,
            id_column: str | None = None, sample: int = 200) -> DatasetFacts:
    """What dataset ``name`` holds, measured without decoding its images: a :class:`DatasetFacts`
    (image counts, classes and their balance, channels, image sizes from up to ``sample`` files).

    Named datasets and NNDL files are described from what is known of them; tables and folders are
    read as :func:`load` would read them (same errors).
    """
    key = str(name).strip().lower()
    if key in _NAMED:
        return named_facts(key)
    path = _path_of(str(name))
    return inspect_path(path, Columns.of(image_column, label_column, id_column), sample=sample)
