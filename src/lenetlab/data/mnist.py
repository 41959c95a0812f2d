"""MNIST and Fashion-MNIST from their four IDX files: local folder, cache, or download."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from lenetlab.data.common import carve_val
from lenetlab.data.download import IdxDataset, candidate_folders, dataset_folder, download, find_file, verify_file
from lenetlab.data.idx import read_images_labels
from lenetlab.data.splits import Split, Splits
from lenetlab.errors import DataError

#: The classes of an IDX folder given as a path: MNIST-style digits.
IDX_CLASSES = [str(i) for i in range(10)]


def locate(
    ds: IdxDataset, data_dir=None, *, download_missing=False, verify=False, mirrors=None, progressbar=True
) -> list[Path]:
    """The four local files of ``ds`` (train images, train labels, test images, test labels), found in
    :func:`~lenetlab.data.download.candidate_folders`, downloaded if missing and ``download_missing``, their
    md5 checked if ``verify``. A missing file is a one-line DataError saying where it looked and how to get it."""
    folder = dataset_folder(ds, data_dir)
    found = [find_file(folder, r.filename) for r in ds.resources]
    if not all(found) and download_missing:
        found = download(ds, folder, mirrors=mirrors, progressbar=progressbar)
    if not all(found):
        missing = next(r.filename for r, f in zip(ds.resources, found) if f is None)
        folders = candidate_folders(ds, data_dir)
        looked = ", ".join(
            f"{p}" + (" (torchvision's layout)" if i == 2 else "") for i, p in enumerate(folders) if p != folder
        )
        raise DataError(
            f"{folder / missing}: file not found (also looked in {looked}); run with --download, "
            f"or fetch it from {(tuple(mirrors) if mirrors else ds.mirrors)[0]} into {folder}"
        )
    if verify:
        for path, res in zip(found, ds.resources):
            verify_file(path, res)
    return found


def check_labels(files: list[tuple[Path, np.ndarray]], n_classes: int) -> None:
    """Refuse IDX labels outside ``0 .. n_classes - 1``: a one-line DataError naming the label file."""
    for path, y in files:
        if len(y) and int(y.max()) >= n_classes:
            raise DataError(f"{path}: label {int(y.max())} out of range for {n_classes} classes")


def from_idx_files(name: str, paths: list[Path], class_names=IDX_CLASSES, *, val_size=None, seed=0) -> Splits:
    """:class:`Splits` of ``uint8 [N, 1, H, W]`` images and int64 labels from four IDX paths (train
    images/labels, test images/labels); dev is carved from train. Labels beyond the classes raise DataError."""
    with ThreadPoolExecutor(2) as pool:  # gzip releases the GIL
        (xtr, ytr), (xte, yte) = pool.map(read_images_labels, paths[0::2], paths[1::2])
    check_labels([(paths[1], ytr), (paths[3], yte)], len(class_names))
    full = Split(torch.from_numpy(xtr.copy()).unsqueeze(1), torch.from_numpy(ytr.astype(np.int64)))
    train, dev = carve_val(full, val_size, seed, name)
    test = Split(torch.from_numpy(xte.copy()).unsqueeze(1), torch.from_numpy(yte.astype(np.int64)))
    return Splits(name, train, dev, test, list(class_names), source=str(paths[0].parent.resolve()))
