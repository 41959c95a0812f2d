"""Datasets as tensors: :func:`load` returns :class:`Splits` of ``uint8 [N, C, H, W]`` images; :func:`inspect`
measures a dataset without decoding its images. Which names and paths are read how: ``docs/data.md``
(:func:`lenetlab.data.folders.dataset_source` decides it)."""

import os
from importlib import resources

import numpy as np
import torch

from lenetlab.data.common import finish
from lenetlab.data.csvtable import Columns
from lenetlab.data.download import IDX_DATASETS, locate
from lenetlab.data.facts import DatasetFacts, source_facts
from lenetlab.data.folders import dataset_source, load_index, load_pixel_tables
from lenetlab.data.idx import IDX_CLASSES, from_idx_files
from lenetlab.data.loader import TensorLoader
from lenetlab.data.nndl import load_nndl
from lenetlab.data.splits import Split, Splits
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import DataError

__all__ = ["DatasetFacts", "InputSpec", "Splits", "TensorLoader", "inspect", "load", "prepare"]


def _load_subset() -> Splits:
    with resources.files("lenetlab.data").joinpath("assets/mnist_subset.npz").open("rb") as f, np.load(f) as z:
        part = {
            p: Split(torch.tensor(z[f"{p}_x"]).unsqueeze(1), torch.tensor(z[f"{p}_y"]).long())
            for p in ("train", "dev", "test")
        }
    source = "embedded in the lenetlab package (lenetlab/data/assets/mnist_subset.npz)"
    return Splits("mnist-subset", part["train"], part["dev"], part["test"], list(IDX_CLASSES), source=source)


def load(
    name: str = "mnist-subset",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = False,
    verify: bool = False,
    val_size: int | None = None,
    seed: int = 0,
    image_size: int | None = None,
    channels: int | None = None,
    normalize: str | None = None,
    mirrors=None,
    progressbar: bool = True,
    image_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
) -> Splits:
    """Load dataset ``name`` (a known name or a path, see ``docs/data.md``) as :class:`Splits` of ``uint8
    [N, C, H, W]`` images and ``int64 [N]`` labels (None for an unlabelled test set, whose ``ids`` name the images).

    ``val_size`` (default :func:`lenetlab.data.splits.dev_size`) dev images are carved from train with
    ``seed``, except for the embedded subset and NNDL files, which have their own. ``image_size`` sets the
    model input size (image folders are also resized to it), ``channels`` converts to 1 (gray) or 3 (RGB),
    ``normalize`` is one of :data:`lenetlab.choices.NORMALIZE_CHOICES` (``default``: ``half`` for digits,
    ``stats`` for image folders). ``mirrors`` overrides the download mirrors; ``image_column``,
    ``label_column`` and ``id_column`` name a CSV's columns. Bad input raises a one-line :class:`DataError`.
    """
    columns = Columns.of(image_column, label_column, id_column)
    src = dataset_source(name, columns)
    split = dict(val_size=val_size, seed=seed)
    if src.kind in ("image-csv", "class-folders"):
        s = load_index(src.index, src.name, image_size=image_size, channels=channels, **split)
        return finish(s, digits=False, normalize=normalize)
    if src.kind == "named" and src.name == "mnist-subset":
        s = _load_subset()
    elif src.kind == "named":
        ds = IDX_DATASETS[src.name]
        paths = locate(ds, data_dir, download_missing=download, verify=verify, mirrors=mirrors, progressbar=progressbar)
        s = from_idx_files(src.name, paths, ds.class_names, **split)
    elif src.kind == "nndl":
        s = load_nndl(src.path)
    elif src.kind == "idx" and verify:
        raise DataError(
            f"{src.path}: checksums are known only for named datasets; use --dataset mnist "
            f"(or fashion-mnist) --data-dir {src.path} --verify"
        )
    elif src.kind == "idx":
        s = from_idx_files(src.name, src.idx, **split)
    else:
        s = load_pixel_tables(src.name, src.path, *src.tables, columns, **split)
    return finish(s, digits=True, channels=channels, image_size=image_size, normalize=normalize)


def inspect(
    name: str = "mnist-subset",
    *,
    image_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    sample: int = 200,
) -> DatasetFacts:
    """What dataset ``name`` holds, measured without decoding its images: a :class:`DatasetFacts` (image
    counts, classes and their balance, channels, image sizes from up to ``sample`` files), found by the same
    :func:`~lenetlab.data.folders.dataset_source` as :func:`load` (same errors)."""
    return source_facts(dataset_source(name, Columns.of(image_column, label_column, id_column)), sample=sample)
