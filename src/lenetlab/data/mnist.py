"""MNIST and Fashion-MNIST from their four IDX files: local folder, cache, or download."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from lenetlab.data.common import carve_val, finish
from lenetlab.data.download import (
    IDX_DATASETS,
    IdxDataset,
    cache_root,
    candidate_folders,
    dataset_folder,
    download,
    find_file,
    verify_file,
)
from lenetlab.data.idx import read_images_labels
from lenetlab.data.splits import Split, Splits, dev_size
from lenetlab.errors import DataError


def locate(
    ds: IdxDataset, data_dir=None, *, download_missing: bool = False, mirrors=None, progressbar: bool = True
) -> list[Path]:
    """The four local files of ``ds`` (train images, train labels, test images, test labels).

    Looks in the data root, ``root/<name>`` and torchvision's ``root/MNIST/raw`` (or
    ``FashionMNIST/raw``); downloads missing ones when ``download_missing``, else raises a one-line
    DataError naming the missing file, where it looked and how to get it.
    """
    folder = dataset_folder(ds, data_dir)
    found = [find_file(folder, r.filename) for r in ds.resources]
    if all(found):
        return found  # type: ignore[return-value]
    if download_missing:
        return download(ds, folder, mirrors=mirrors, progressbar=progressbar)
    missing = next(r.filename for r, f in zip(ds.resources, found) if f is None)
    mirror = (tuple(mirrors) if mirrors else ds.mirrors)[0]
    others = [p for p in candidate_folders(ds, data_dir) if p != folder]
    tv = f"{cache_root(data_dir)}/{ds.torchvision}/raw"
    looked = ", ".join(str(p) + (" (torchvision's layout)" if str(p) == tv else "") for p in others)
    raise DataError(
        f"{folder / missing}: file not found (also looked in {looked}); run with --download, "
        f"or fetch it from {mirror} into {folder}"
    )


def read_idx_folder(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the train and test image/label pairs (in two threads: gzip releases the GIL)."""
    with ThreadPoolExecutor(2) as pool:
        tr = pool.submit(read_images_labels, paths[0], paths[1])
        te = pool.submit(read_images_labels, paths[2], paths[3])
        return (*tr.result(), *te.result())


def load_idx(
    name: str,
    data_dir=None,
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
) -> Splits:
    """Load MNIST or Fashion-MNIST as :class:`Splits` of ``uint8 [N, 1, 28, 28]`` and int64 labels.

    ``dev`` holds ``val_size`` (default :func:`~lenetlab.data.splits.dev_size`) training images chosen
    by ``seed``; ``test`` is the official 10,000-image test set. ``verify`` checks every file's md5
    (downloads are always verified). Default input spec: pad 28→32, mean = std = 0.5 (NNDL's and the
    tutorials'); ``normalize="stats"`` uses the training split's own statistics.
    """
    ds = IDX_DATASETS[name]
    paths = locate(ds, data_dir, download_missing=download, mirrors=mirrors, progressbar=progressbar)
    if verify:
        for path, res in zip(paths, ds.resources):
            verify_file(path, res)
    return from_idx_files(
        name,
        paths,
        list(ds.class_names),
        val_size=val_size,
        seed=seed,
        channels=channels,
        image_size=image_size,
        normalize=normalize,
    )


#: The classes of an IDX folder given as a path: MNIST-style digits.
IDX_CLASSES = [str(i) for i in range(10)]


def check_labels(files: list[tuple[Path, np.ndarray]], n_classes: int) -> None:
    """Refuse IDX labels outside ``0 .. n_classes - 1``: a one-line DataError naming the label file."""
    for path, y in files:
        if len(y) and int(y.max()) >= n_classes:
            raise DataError(f"{path}: label {int(y.max())} out of range for {n_classes} classes")


def from_idx_files(
    name: str,
    paths: list[Path],
    class_names: list[str] | None,
    *,
    val_size: int | None = None,
    seed: int = 0,
    channels=None,
    image_size=None,
    normalize=None,
) -> Splits:
    """Build :class:`Splits` from four IDX paths (train images/labels, test images/labels).

    ``class_names`` None means the ten digits (:data:`IDX_CLASSES`). Labels beyond the class list raise DataError.
    """
    xtr, ytr, xte, yte = read_idx_folder(paths)
    class_names = class_names or IDX_CLASSES
    check_labels([(paths[1], ytr), (paths[3], yte)], len(class_names))
    x = torch.from_numpy(xtr.copy()).unsqueeze(1)
    y = torch.from_numpy(ytr.astype(np.int64))
    train, dev = carve_val(x, y, dev_size(len(x), val_size), seed, name)
    test = Split(torch.from_numpy(xte.copy()).unsqueeze(1), torch.from_numpy(yte.astype(np.int64)))
    return finish(
        name,
        train,
        dev,
        test,
        class_names,
        str(paths[0].parent.resolve()),
        channels=channels,
        image_size=image_size,
        normalize=normalize,
        default_norm="half",
    )
