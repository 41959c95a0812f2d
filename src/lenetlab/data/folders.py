"""What a dataset name or path is (:func:`dataset_source`, the one dispatch of loading and inspection), and
folder and CSV datasets decoded into ``uint8 [N, C, S, S]`` tensors (RGB or grayscale, default as the first
image; resized bilinearly to ``image_size``, default the first image's width)."""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from lenetlab.choices import NAMED_DATASETS
from lenetlab.data.common import carve_val
from lenetlab.data.csvtable import Columns, Layout, label_order, read_pixels, read_rows, recognise
from lenetlab.data.download import IDX_DATASETS, find_file
from lenetlab.data.images import open_image
from lenetlab.data.splits import Split, Splits
from lenetlab.errors import DataError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
_DEV_DIRS = ("val", "valid", "dev")
#: Pillow modes that hold one channel of intensity (with alpha for ``LA``).
GRAY_MODES = ("1", "L", "I", "I;16", "F", "LA")


def decode_images(paths: list[Path], size: int, channels: int, progress: bool = False) -> torch.Tensor:
    """Decode ``paths`` into ``uint8 [N, channels, size, size]`` (converted and resized), in threads."""
    out = np.empty((len(paths), size, size, channels), dtype=np.uint8)
    mode = "L" if channels == 1 else "RGB"

    def one(i: int) -> None:
        im = open_image(paths[i], draft=(mode, size)).convert(mode)
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR, reducing_gap=3.0)
        out[i] = np.asarray(im).reshape(size, size, channels)

    quiet = not progress or len(paths) <= 2000
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:  # Pillow releases the GIL
        done = pool.map(one, range(len(paths)))
        for _ in tqdm(done, total=len(paths), unit="img", desc="decoding", leave=False, disable=quiet):
            pass
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


@dataclass
class Part:
    """One split of a folder before decoding: image paths, class indices (None: unlabelled) and ids."""

    paths: list[Path] = field(default_factory=list)
    y: list[int] | None = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


@dataclass
class FolderIndex:
    """A folder dataset before decoding (``dev`` None: carved from ``train``; ``carve_test``: so is test)."""

    root: Path
    layout: str
    classes: list[str]
    train: Part
    test: Part
    dev: Part | None = None
    carve_test: bool = False
    submission: tuple[str, str] = ("image", "label")

    def all_paths(self) -> list[Path]:
        """Every image path, training images first."""
        return self.train.paths + (self.dev.paths if self.dev else []) + self.test.paths


def encode(train: list[str] | None, test: list[str] | None, test_path) -> tuple[list[str], list[int], list[int] | None]:
    """The classes (:func:`~lenetlab.data.csvtable.label_order` of the training labels, else the test labels)
    and both label lists as class indices (None stays None)."""
    classes = label_order(train or test or [])
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(test or []) - set(index))
    if unknown:
        raise DataError(f"{test_path}: label {unknown[0]!r} is not among the training labels")
    return classes, [index[c] for c in train or []], None if test is None else [index[c] for c in test]


def _image_rows(root: Path, layout: Layout) -> tuple[Part, list[str] | None]:
    """A table's images (each inside ``root`` and existing) with their ids, and its labels (None: unlabelled)."""
    paths, labels, ids = [], [] if layout.labelled else None, []
    for i, row in enumerate(read_rows(layout.path), start=2):  # line 1 is the header
        name, label, key = (
            row[k] if k is not None and k < len(row) else "" for k in (layout.image, layout.label, layout.id)
        )
        if not name:
            raise DataError(f"{layout.path}: line {i} has no image name")
        # relative to the folder and inside it (checked on the names, so a symlinked images/ still works)
        inside = os.path.normpath(os.path.join(root, name))
        if os.path.isabs(name) or os.path.relpath(inside, os.path.normpath(root)).split(os.sep)[0] == "..":
            raise DataError(
                f"{layout.path}: line {i} names image {name!r}, outside the dataset folder {root} "
                "(image paths must be relative to it)"
            )
        if not (root / name).is_file():
            raise DataError(f"{layout.path}: line {i} names image {name!r}, which does not exist in {root}")
        if labels is not None:
            if not label:
                raise DataError(f"{layout.path}: line {i} has an empty label")
            labels.append(label)
        paths.append(root / name)
        ids.append(name if layout.id is None else key)
    return Part(paths, None, ids), labels


def _index_image_tables(root: Path, train: Layout | None, test: Layout | None, columns: Columns) -> FolderIndex:
    """Index image-file tables: ``train`` (labelled) and ``test`` (labelled or not), either may be None."""
    train_part, train_labels = _image_rows(root, train) if train is not None else (Part(), [])
    if train is not None and not train_part.paths:
        raise DataError(f"{train.path}: no rows")
    test_part, test_labels = _image_rows(root, test) if test is not None else (Part(y=None), None)
    classes, train_part.y, test_part.y = encode(train_labels, test_labels, test and test.path)
    submission = (columns.id or columns.image, columns.label)
    return FolderIndex(root, "image-csv", classes, train_part, test_part, submission=submission)


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

    def gather(where: Path, dirs: dict[str, list[Path]] | None = None) -> Part:
        dirs = _class_dirs(where) if dirs is None else dirs
        unknown = sorted(set(dirs) - set(classes))
        if unknown:
            raise DataError(f"{where}: class folder {unknown[0]!r} is not among the training classes")
        files = [(f, classes.index(c)) for c in sorted(dirs) for f in dirs[c]]
        return Part([f for f, _ in files], [c for _, c in files], [f.relative_to(root).as_posix() for f, _ in files])

    nested = base != root  # else the test set is another seeded tenth of the images
    train = gather(base, train_dirs)
    dev = next((gather(root / d) for d in _DEV_DIRS if nested and (root / d).is_dir()), None)
    test = gather(root / "test") if nested and (root / "test").is_dir() else Part()
    return FolderIndex(root, "class-folders", classes, train, test, dev, carve_test=not nested)


def load_index(idx: FolderIndex, name: str, *, val_size=None, seed=0, image_size=None, channels=None) -> Splits:
    """Decode an indexed folder into :class:`Splits` (dev carved from train unless the folder has one)."""
    first = next(iter(idx.all_paths()), None)
    if first is None:
        raise DataError(f"{idx.root}: no images listed")
    with open_image(first, decode=False) as im:
        size = int(image_size or im.size[0])
        if channels is None:
            channels = 1 if im.mode in GRAY_MODES else 3
    if channels not in (1, 3):
        raise DataError(f"channels={channels} must be 1 (grayscale) or 3 (RGB)")

    def make(part: Part) -> Split:
        y = None if part.y is None else torch.tensor(part.y, dtype=torch.int64)
        return Split(decode_images(part.paths, size, channels, progress=True), y, list(part.ids))

    full = make(idx.train)
    where = str(idx.root / "train.csv" if idx.layout == "image-csv" else idx.root)
    train, dev = (full, make(idx.dev)) if idx.dev else carve_val(full, val_size, seed, where)
    train, test = carve_val(train, len(full) // 10, seed + 1, where) if idx.carve_test else (train, make(idx.test))
    return Splits(name, train, dev, test, idx.classes, source=str(idx.root.resolve()), submission=idx.submission)


def load_pixel_tables(
    name: str, source: Path, train: Layout | None, test: Layout | None, columns: Columns, *, val_size=None, seed=0
) -> Splits:
    """Pixel tables (Kaggle's Digit Recognizer) → Splits of ``uint8 [N, 1, side, side]``; test ids from the id
    column, else the row numbers from 1."""
    empty = np.zeros((0, (train or test).side, (train or test).side), np.uint8)
    xtr, ytr, _ = read_pixels(train) if train is not None else (empty, [], None)
    if train is not None and len(xtr) == 0:
        raise DataError(f"{train.path}: no rows")
    xte, yte, ids = read_pixels(test) if test is not None else (empty, [], [])
    classes, ytr, yte = encode(ytr, yte, test and test.path)
    full = Split(torch.from_numpy(xtr).unsqueeze(1), torch.tensor(ytr, dtype=torch.int64))
    tr, dev = carve_val(full, val_size, seed, str(train and train.path))
    ids = ids if ids is not None else [str(i) for i in range(1, len(xte) + 1)]
    te = Split(torch.from_numpy(xte).unsqueeze(1), None if yte is None else torch.tensor(yte, dtype=torch.int64), ids)
    # Kaggle's Digit Recognizer wants ImageId,Label; a configured id or label column keeps its name
    submission = (columns.id or "ImageId", "Label" if columns.label == "label" else columns.label)
    return Splits(name, tr, dev, te, classes, source=str(source.resolve()), submission=submission)


@dataclass
class Source:
    """What a dataset name or path holds: ``kind`` ``named``, ``nndl`` (``path``), ``idx`` (the four files
    ``idx``), ``pixel-csv`` (``tables``: train and test, either may be None), ``image-csv`` or ``class-folders``
    (``index``)."""

    kind: str
    name: str
    path: Path | None = None
    idx: list[Path] = field(default_factory=list)
    tables: tuple[Layout | None, Layout | None] = (None, None)
    index: FolderIndex | None = None


def _path_of(name: str) -> Path:
    """``name`` as an existing path, or a one-line DataError (unknown name, or no such file)."""
    looks = os.path.exists(name) or "/" in name or os.sep in name or name.endswith((".gz", ".json", ".csv"))
    if not (looks or name.startswith((".", "~"))):
        raise DataError(
            f"unknown dataset {name!r} (known: {', '.join(NAMED_DATASETS)}; or a path to an NNDL "
            f"mnist.json.gz file, a CSV file or an image folder)"
        )
    path = Path(name).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    return path


def _tables(root: Path, columns: Columns) -> tuple[Layout | None, Layout | None]:
    """The recognised layouts of ``root/train.csv`` and ``root/test.csv`` (None where absent)."""
    train = recognise(root / "train.csv", columns, need_label=True) if (root / "train.csv").is_file() else None
    test = recognise(root / "test.csv", columns) if (root / "test.csv").is_file() else None
    if train is not None and test is not None:
        if test.kind != train.kind:
            raise DataError(f"{test.path}: holds {test.kind} but {train.path.name} holds {train.kind}")
        if test.kind == "pixels" and test.side != train.side:
            raise DataError(
                f"{test.path}: {test.side}x{test.side} images but {train.path.name} has {train.side}x{train.side}"
            )
    return train, test


def _csv_file_tables(path: Path, columns: Columns) -> tuple[Layout | None, Layout | None]:
    """One CSV file given directly: a labelled table is the training set (``test.csv`` beside it, if of the
    same kind, the test set); an unlabelled one is a test set alone."""
    layout = recognise(path, columns)
    if not layout.labelled:
        return None, layout
    sibling = path.parent / "test.csv"
    test = recognise(sibling, columns) if sibling.is_file() and sibling.resolve() != path.resolve() else None
    return layout, test if test is not None and test.kind == layout.kind else None


def dataset_source(name: str, columns: Columns = Columns()) -> Source:
    """What dataset ``name`` is (first match wins, the rules of ``docs/data.md``), tables and folders indexed
    without decoding an image; a one-line DataError for an unknown name, a missing path or partial IDX files."""

    key = str(name).strip().lower()
    if key in NAMED_DATASETS:
        return Source("named", key)
    path = _path_of(str(name))
    if path.is_file() and path.suffix.lower() != ".csv":
        return Source("nndl", path.name, path)
    if path.is_file():
        (train, test), root = _csv_file_tables(path, columns), path.parent
        label = path.stem if path.stem not in ("train", "test") else root.name
    elif (path / "train.csv").is_file() or (path / "test.csv").is_file():
        (train, test), root, label = _tables(path, columns), path, path.name
    else:
        files = IDX_DATASETS["mnist"].resources
        idx = [find_file(path, r.filename) for r in files]
        if any(idx) and not all(idx):
            missing = next(r.filename for r, f in zip(files, idx) if f is None)
            raise DataError(f"{path / missing}: file not found (the folder holds only some of the four IDX files)")
        if all(idx):
            return Source("idx", path.name, path, idx=idx)
        return Source("class-folders", path.name, path, index=_index_class_folders(path))
    if (train or test).kind == "pixels":
        return Source("pixel-csv", label, root, tables=(train, test))
    return Source("image-csv", root.name, root, index=_index_image_tables(root, train, test, columns))
