"""Folder and CSV datasets, decoded once into ``uint8 [N, C, S, S]`` tensors.

Layouts recognised by :func:`load_folder` (first match wins):

* **a table** ``train.csv`` and optional ``test.csv`` (read by :mod:`lenetlab.data.csvtable`,
  recognised by their header):

  - *image files* (Kaggle classify-leaves, d2l's Kaggle chapter): columns ``image,label`` /
    ``image``, image paths relative to the folder (``images/0.jpg``);
  - *pixel values* (Kaggle's Digit Recognizer): ``label,pixel0..pixel783`` / ``pixel0..pixel783``;
    test ids are the row numbers from 1 (Kaggle's ``ImageId``).

  String labels get a stable label→index map (numeric order when every label is an integer); a
  seeded dev split is carved from train; the test split is unlabelled (``y=None``) unless
  ``test.csv`` has the label column, with ``ids`` = the image names as written (or the id column).
  A folder with only ``test.csv`` has just that test split (for predicting with a trained model).
* **four IDX files** (``train-images-idx3-ubyte[.gz]`` ...): read like MNIST, classes ``0..max``.
* **class per sub-folder**: ``train/<class>/*`` and optional ``test/<class>/*`` (and ``val/``,
  ``valid/`` or ``dev/`` as the dev split), or ``<class>/*`` directly under the root, in which case
  dev and test are each a seeded tenth of the images.

:func:`load_csv_file` reads one CSV file given directly (a labelled file is the training set, with
``test.csv`` beside it as the test set; an unlabelled one is a test set alone).

Images are converted to RGB (3 channels) or grayscale (1), default: RGB unless the first image is
grayscale, and resized (bilinear) to ``image_size``, default: the first image's size (square).
Decoding runs in a thread pool (Pillow releases the GIL). A missing or unreadable image, or one too
large to decode safely (Pillow's decompression-bomb limit), raises a one-line :class:`DataError`
naming the file; so does a CSV row naming an image outside the dataset folder. :func:`index_folder`
lists a folder's images and labels without decoding them (what :func:`lenetlab.data.inspect`
measures a dataset from).
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from lenetlab.data.common import carve_val, finish
from lenetlab.data.csvtable import Columns, Layout, label_order, read_pixels, read_rows, recognise
from lenetlab.data.download import IDX_DATASETS, find_file
from lenetlab.data.mnist import from_idx_files
from lenetlab.data.splits import Split, Splits
from lenetlab.errors import DataError, first_line

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
_DEV_DIRS = ("val", "valid", "dev")
_GRAY_MODES = ("1", "L", "I", "I;16", "F", "LA")


def _open(path: Path, draft: tuple[str, int] | None = None):
    """The decoded image at ``path``; ``draft=(mode, size)`` lets a JPEG decode directly at a reduced
    scale (1/2, 1/4, 1/8) no smaller than ``size`` — much faster for photos resized to 32 pixels."""
    try:
        with Image.open(path) as im:
            if draft is not None and im.format == "JPEG":
                im.draft(draft[0], (draft[1], draft[1]))
            im.load()
            return im.copy()
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except Image.DecompressionBombError as e:  # raised from the header, before anything is decoded
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
        raise DataError(f"{path}: image of {size} is larger than Pillow decodes safely "
                        f"({Image.MAX_IMAGE_PIXELS * 2:,} pixels at most); refused") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path}: unreadable image ({first_line(e, 120)})") from None


def decode_images(paths: list[Path], size: int, channels: int, progress: bool = False) -> torch.Tensor:
    """Decode ``paths`` into ``uint8 [N, channels, size, size]`` (converted and resized), in threads."""
    out = np.empty((len(paths), size, size, channels), dtype=np.uint8)
    mode = "L" if channels == 1 else "RGB"

    def one(i: int) -> None:
        im = _open(paths[i], draft=(mode, size)).convert(mode)
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR, reducing_gap=3.0)
        out[i] = np.asarray(im).reshape(size, size, channels)

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        it = pool.map(one, range(len(paths)))
        if progress and len(paths) > 2000:
            it = tqdm(it, total=len(paths), unit="img", desc="decoding", leave=False)
        for _ in it:
            pass
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _probe(first: Path, image_size, channels) -> tuple[int, int]:
    im = _open(first)
    size = int(image_size) if image_size else int(im.size[0])
    if channels is None:
        channels = 1 if im.mode in _GRAY_MODES else 3
    if channels not in (1, 3):
        raise DataError(f"channels={channels} must be 1 (grayscale) or 3 (RGB)")
    return size, int(channels)


# ----------------------------------------------------------------------------- the index
@dataclass
class FolderIndex:
    """A folder dataset before decoding: image paths, class indices and ids of each part.

    ``dev`` is None when it is carved from ``train`` at load; ``carve_test`` means the test split is
    a seeded tenth of ``train`` too (a flat folder of class sub-folders). ``test_y`` is None for an
    unlabelled test set. ``submission`` is the header of a submission file (id column, label column).
    """

    root: Path
    layout: str
    classes: list[str]
    train: list[Path] = field(default_factory=list)
    train_y: list[int] = field(default_factory=list)
    train_ids: list[str] = field(default_factory=list)
    dev: tuple[list[Path], list[int], list[str]] | None = None
    test: list[Path] = field(default_factory=list)
    test_y: list[int] | None = None
    test_ids: list[str] = field(default_factory=list)
    carve_test: bool = False
    submission: tuple[str, str] = ("image", "label")

    def all_paths(self) -> list[Path]:
        """Every image path, training images first."""
        return self.train + (self.dev[0] if self.dev else []) + self.test


def _csv_images(root: Path, layout: Layout, rows: list[list[str]]) -> tuple[list[Path], list[str]]:
    """The image paths of a table (checked to exist) and their names as written."""
    paths, names = [], []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        name = row[layout.image] if layout.image < len(row) else ""
        if not name:
            raise DataError(f"{layout.path}: line {i} has no image name")
        # relative to the folder and inside it (checked on the names, so a symlinked images/ still works)
        inside = os.path.normpath(os.path.join(root, name))
        if os.path.isabs(name) or os.path.relpath(inside, os.path.normpath(root)).split(os.sep)[0] == "..":
            raise DataError(f"{layout.path}: line {i} names image {name!r}, outside the dataset folder {root} "
                            "(image paths must be relative to it)")
        p = root / name
        if not p.is_file():
            raise DataError(f"{layout.path}: line {i} names image {name!r}, which does not exist in {root}")
        paths.append(p)
        names.append(name)
    return paths, names


def _labels(layout: Layout, rows: list[list[str]]) -> list[str]:
    out = []
    for i, row in enumerate(rows, start=2):
        lab = row[layout.label] if layout.label < len(row) else ""
        if not lab:
            raise DataError(f"{layout.path}: line {i} has an empty label")
        out.append(lab)
    return out


def _ids(layout: Layout, rows: list[list[str]], default: list[str]) -> list[str]:
    return default if layout.id is None else [r[layout.id] if layout.id < len(r) else "" for r in rows]


def index_image_tables(root: Path, train_csv: Path | None, test_csv: Path | None, columns: Columns,
                        train_layout: Layout | None, test_layout: Layout | None) -> FolderIndex:
    """Index the image-file tables ``train_csv`` (labelled) and ``test_csv`` (optional)."""
    idx = FolderIndex(root, "image-csv", [], submission=(columns.id or columns.image, columns.label))
    train_labels: list[str] = []
    if train_csv is not None:
        _, rows = read_rows(train_csv)
        if not rows:
            raise DataError(f"{train_csv}: no rows")
        train_labels = _labels(train_layout, rows)
        idx.train, names = _csv_images(root, train_layout, rows)
        idx.train_ids = _ids(train_layout, rows, names)
    test_labels = None
    if test_csv is not None:
        _, rows = read_rows(test_csv)
        idx.test, names = _csv_images(root, test_layout, rows)
        idx.test_ids = _ids(test_layout, rows, names)
        if test_layout.labelled:
            test_labels = _labels(test_layout, rows)
    idx.classes = label_order(train_labels or test_labels or [])
    index = {c: i for i, c in enumerate(idx.classes)}
    idx.train_y = [index[c] for c in train_labels]
    if test_labels is not None:
        unknown = sorted(set(test_labels) - set(index))
        if unknown and train_labels:
            raise DataError(f"{test_csv}: label {unknown[0]!r} is not among the training labels")
        idx.test_y = [index[c] for c in test_labels]
    return idx


def _class_dirs(folder: Path) -> dict[str, list[Path]]:
    out = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in d.rglob("*") if f.suffix.lower() in IMAGE_EXTS and f.is_file())
        if files:
            out[d.name] = files
    return out


def _index_class_folders(root: Path) -> FolderIndex:
    """Class-per-sub-folder layout (under ``train/``/``test/`` or directly under ``root``)."""
    base = root / "train" if (root / "train").is_dir() else root
    train_dirs = _class_dirs(base)
    if not train_dirs:
        raise DataError(f"{root}: no dataset found (no train.csv, IDX files or class sub-folders with images)")
    classes = sorted(train_dirs)
    index = {c: i for i, c in enumerate(classes)}

    def gather(dirs: dict[str, list[Path]], where: Path) -> tuple[list[Path], list[int], list[str]]:
        unknown = sorted(set(dirs) - set(index))
        if unknown:
            raise DataError(f"{where}: class folder {unknown[0]!r} is not among the training classes")
        pairs = [(f, index[c]) for c in sorted(dirs) for f in dirs[c]]
        return [p for p, _ in pairs], [c for _, c in pairs], [p.relative_to(root).as_posix() for p, _ in pairs]

    idx = FolderIndex(root, "class-folders", classes, submission=("image", "label"))
    idx.train, idx.train_y, idx.train_ids = gather(train_dirs, base)
    dev_dir = next((root / d for d in _DEV_DIRS if base != root and (root / d).is_dir()), None)
    if dev_dir is not None:
        idx.dev = gather(_class_dirs(dev_dir), dev_dir)
    if base != root and (root / "test").is_dir():
        idx.test, idx.test_y, idx.test_ids = gather(_class_dirs(root / "test"), root / "test")
    else:
        idx.test_y = []
        idx.carve_test = base == root  # a single root: the test set is another seeded tenth of the images
    return idx


def _tables(root: Path, columns: Columns) -> tuple[Layout | None, Layout | None]:
    """The recognised layouts of ``root/train.csv`` and ``root/test.csv`` (None where absent)."""
    train = recognise(root / "train.csv", columns, need_label=True) if (root / "train.csv").is_file() else None
    test = recognise(root / "test.csv", columns) if (root / "test.csv").is_file() else None
    if train is not None and test is not None:
        if test.kind != train.kind:
            raise DataError(f"{test.path}: holds {test.kind} but {train.path.name} holds {train.kind}")
        if test.kind == "pixels" and test.side != train.side:
            raise DataError(f"{test.path}: {test.side}x{test.side} images but {train.path.name} has "
                            f"{train.side}x{train.side}")
    return train, test


def index_folder(root: Path, columns: Columns = Columns()) -> FolderIndex | tuple[Layout | None, Layout | None]:
    """The :class:`FolderIndex` of an image-file table or class-folder layout at ``root``; for pixel
    tables, their ``(train, test)`` layouts (their images are in the tables themselves)."""
    if (root / "train.csv").is_file() or (root / "test.csv").is_file():
        train, test = _tables(root, columns)
        kind = (train or test).kind
        if kind == "pixels":
            return train, test
        return index_image_tables(root, train and train.path, test and test.path, columns, train, test)
    return _index_class_folders(root)


# ----------------------------------------------------------------------------- loading
def load_index(idx: FolderIndex, *, val_size=None, seed=0, image_size=None, channels=None, normalize=None,
               name: str | None = None) -> Splits:
    """Decode an indexed folder into :class:`Splits` (dev carved from train unless the folder has one)."""
    first = next(iter(idx.all_paths()), None)
    if first is None:
        raise DataError(f"{idx.root}: no images listed")
    size, ch = _probe(first, image_size, channels)

    def make(ps: list[Path], ys: list[int] | None, ids: list[str]) -> Split:
        y = None if ys is None else torch.tensor(ys, dtype=torch.int64)
        return Split(decode_images(ps, size, ch, progress=True), y, list(ids))

    full = make(idx.train, idx.train_y, idx.train_ids)
    where = str(idx.root / "train.csv" if idx.layout == "image-csv" else idx.root)
    n_val = len(full) // 10 if val_size is None else int(val_size)
    if idx.dev is not None:
        train, dev = full, make(*idx.dev)
    elif len(full):
        train, dev = carve_val(full.x, full.y, n_val, seed, where, ids=full.ids)
    else:
        train, dev = full, make([], [], [])
    if idx.carve_test:
        train, test = carve_val(train.x, train.y, len(full) // 10, seed + 1, where, ids=train.ids)
    else:
        test = make(idx.test, idx.test_y, idx.test_ids)
    splits = finish(name or idx.root.name, train, dev, test, idx.classes, str(idx.root.resolve()), channels=None,
                    image_size=size, normalize=normalize, default_norm="stats")
    splits.submission = idx.submission
    return splits


def load_pixel_tables(name: str, source: Path, train: Layout | None, test: Layout | None, *, val_size=None,
                      seed=0, image_size=None, channels=None, normalize=None, columns: Columns = Columns()) -> Splits:
    """Pixel tables (Kaggle's Digit Recognizer) → Splits of ``uint8 [N, 1, side, side]``.

    Dev is carved from ``train`` (a tenth, at most 5,000 rows, by default); the test split holds
    ``test``'s rows, unlabelled unless it has the label column, with ids from the id column or
    the row numbers from 1 (Kaggle's ``ImageId``).
    """
    xtr, ytr_s, _ = read_pixels(train) if train is not None else (None, None, None)
    xte, yte_s, ids = read_pixels(test) if test is not None else (None, None, None)
    if train is not None and len(xtr) == 0:
        raise DataError(f"{train.path}: no rows")
    classes = label_order(ytr_s or yte_s or [])
    index = {c: i for i, c in enumerate(classes)}
    side = (train or test).side

    def split(x, labels, path, ids_=None) -> Split:
        if x is None:
            return Split(torch.zeros((0, 1, side, side), dtype=torch.uint8), torch.zeros(0, dtype=torch.int64), [])
        y = None
        if labels is not None:
            unknown = sorted(set(labels) - set(index))
            if unknown:
                raise DataError(f"{path}: label {unknown[0]!r} is not among the training labels")
            y = torch.tensor([index[c] for c in labels], dtype=torch.int64)
        return Split(torch.from_numpy(x).unsqueeze(1), y, ids_)

    full = split(xtr, ytr_s, train and train.path)
    if len(full):
        n_val = min(5000, len(full) // 10) if val_size is None else int(val_size)
        tr, dev = carve_val(full.x, full.y, n_val, seed, str(train.path))
    else:
        tr, dev = full, full
    te = split(xte, yte_s, test and test.path, ids if ids is not None else
               (None if xte is None else [str(i) for i in range(1, len(xte) + 1)]))
    if te.ids is None:
        te.ids = []
    splits = finish(name, tr, dev, te, classes, str(source.resolve()), channels=channels, image_size=image_size,
                    normalize=normalize, default_norm="half")
    # Kaggle's Digit Recognizer wants ImageId,Label; a configured id or label column keeps its name
    splits.submission = (columns.id or "ImageId", "Label" if columns.label == "label" else columns.label)
    return splits


def index_csv_file(path: Path, columns: Columns = Columns()) -> FolderIndex | tuple[Layout | None, Layout | None]:
    """What one CSV file given directly holds: a labelled table is the training set (``test.csv``
    beside it, if any and of the same kind, the test set); an unlabelled one is a test set alone.
    Returns a :class:`FolderIndex` for image tables, the ``(train, test)`` layouts for pixel tables."""
    layout = recognise(path, columns)
    sibling = path.parent / "test.csv"
    if layout.labelled:
        train = layout
        test = recognise(sibling, columns) if sibling.is_file() and sibling.resolve() != path.resolve() else None
        if test is not None and test.kind != train.kind:
            test = None  # a test.csv of another kind belongs to something else
    else:
        train, test = None, layout
    if layout.kind == "pixels":
        return train, test
    return index_image_tables(path.parent, train and train.path, test and test.path, columns, train, test)


def load_csv_file(path: Path, *, columns: Columns = Columns(), **opts) -> Splits:
    """One CSV file given directly (see :func:`index_csv_file`) as :class:`Splits`. Never parsed as
    anything but CSV."""
    found = index_csv_file(path, columns)
    if isinstance(found, tuple):
        name = path.stem if path.stem not in ("train", "test") else path.parent.name
        return load_pixel_tables(name, path.parent, *found, columns=columns, **opts)
    return load_index(found, name=path.parent.name, **opts)


def load_folder(root: Path, *, val_size=None, seed=0, verify=False, image_size=None, channels=None,
                normalize=None, columns: Columns = Columns()) -> Splits:
    """Detect the layout of folder ``root`` (see the module doc) and load it as :class:`Splits`."""
    opts = dict(val_size=val_size, seed=seed, image_size=image_size, channels=channels, normalize=normalize)
    if (root / "train.csv").is_file() or (root / "test.csv").is_file():
        found = index_folder(root, columns)
        if isinstance(found, tuple):
            return load_pixel_tables(root.name, root, *found, columns=columns, **opts)
        return load_index(found, val_size=val_size, seed=seed, image_size=image_size, channels=channels,
                          normalize=normalize)
    idx = [find_file(root, r.filename) for r in IDX_DATASETS["mnist"].resources]
    if any(idx) and not all(idx):
        missing = next(r.filename for r, f in zip(IDX_DATASETS["mnist"].resources, idx) if f is None)
        raise DataError(f"{root / missing}: file not found (the folder holds only some of the four IDX files)")
    if all(idx):
        if verify:
            raise DataError(f"{root}: checksums are known only for named datasets; use --dataset mnist "
                            f"(or fashion-mnist) --data-dir {root} --verify")

        return from_idx_files(root.name, idx, None, **opts)
    return load_index(_index_class_folders(root), val_size=val_size, seed=seed, image_size=image_size,
                      channels=channels, normalize=normalize)
