"""Reader for NNDL's ``mnist.json.gz`` (Neural Networks and Deep Learning's MNIST export): gzip-compressed
(or plain) JSON ``[[train_images, train_labels], [dev...], [test...]]``, each image 784 floats in [0, 1].
"""

import json
from pathlib import Path

import numpy as np
import torch

from lenetlab.data.idx import IDX_CLASSES, check_labels, decompress, read_raw
from lenetlab.data.splits import Split, Splits
from lenetlab.errors import DataError, first_line


def _split(part, which: str, path) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(part, list) or len(part) != 2:
        raise DataError(f"{path}: the {which} entry must be a pair [images, labels]")
    images, labels = part
    if not isinstance(images, list) or not isinstance(labels, list):
        raise DataError(f"{path}: the {which} images and labels must be lists")
    if len(images) != len(labels):
        raise DataError(f"{path}: {which} has {len(images):,} images but {len(labels):,} labels")
    try:
        x = np.asarray(images, dtype=np.float32).reshape(len(images), -1) if images else np.zeros((0, 784), np.float32)
        y = np.asarray(labels, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise DataError(f"{path}: {which} images must be equal-length lists of numbers and labels numbers") from None
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: {which} labels must be a flat list of numbers")
    if x.shape[1] != 784:
        raise DataError(f"{path}: {which} images have {x.shape[1]} values, expected 784 (28×28)")
    if not np.isfinite(x).all() or (x < 0).any() or (x > 1).any():
        raise DataError(f"{path}: {which} pixel values must lie in [0, 1]")
    if not np.isfinite(y).all() or (y != np.round(y)).any() or (y < 0).any() or (y > 999).any():
        raise DataError(f"{path}: {which} labels must be integers in 0..999")
    return np.rint(x * pixel_scale(x)).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28), y.astype(np.int64)


def pixel_scale(x: np.ndarray) -> int:
    """256 when every pixel is a multiple of 1/256 at most 255/256 (deeplearning.net's mnist.pkl, which
    the NNDL file is exported from, stores pixel/256), else 255 (pixel/255, the usual convention)."""
    nz = x[x > 0]
    if nz.size and float(x.max()) <= 255 / 256 + 1e-6 and float(np.abs(nz * 256 - np.rint(nz * 256)).max()) < 1e-3:
        return 256
    return 255


def parse_nndl(raw: bytes, path: str | Path = "<bytes>") -> list[tuple[np.ndarray, np.ndarray]]:
    """Parse the (possibly gzip-compressed) bytes of an NNDL file into three (uint8 [N,28,28], int64 [N]) pairs."""
    try:
        obj = json.loads(decompress(raw, path))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise DataError(f"{path}: not valid JSON ({first_line(e, 120)})") from None
    if not isinstance(obj, list) or len(obj) != 3:
        raise DataError(f"{path}: expected a JSON list [train, dev, test] of three [images, labels] pairs")
    return [_split(part, which, path) for part, which in zip(obj, ("train", "dev", "test"))]


def load_nndl(path: str | Path) -> Splits:
    """Load an NNDL ``mnist.json.gz`` as :class:`Splits` (uint8 ``[N, 1, 28, 28]``, its own dev split)."""
    path = Path(path)
    parts = parse_nndl(read_raw(path), path)
    check_labels([(path, y) for _, y in parts], len(IDX_CLASSES))  # MNIST's digits, as the IDX folders
    train, dev, test = (Split(torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)) for x, y in parts)
    return Splits(path.name, train, dev, test, list(IDX_CLASSES), source=str(path.resolve()))
