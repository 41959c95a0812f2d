"""What a dataset name or path is (:func:`dataset_source`, the one dispatch of loading and inspection),
and folder and CSV datasets decoded once into ``uint8 [N, C, S, S]`` tensors.

Layouts recognised in a folder (first match wins):

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
* **four IDX files** (``train-images-idx3-ubyte[.gz]`` ...): read like MNIST, classes ``0..9``.
* **class per sub-folder**: ``train/<class>/*`` and optional ``test/<class>/*`` (and ``val/``,
  ``valid/`` or ``dev/`` as the dev split), or ``<class>/*`` directly under the root, in which case
  dev and test are each a seeded tenth of the images.

One CSV file given directly is a table too: a labelled file is the training set, with ``test.csv``
beside it as the test set; an unlabelled one is a test set alone.

Images are converted to RGB (3 channels) or grayscale (1), default: RGB unless the first image is
grayscale, and resized (bilinear) to ``image_size``, default: the first image's size (square).
Decoding runs in a thread pool (Pillow releases the GIL). Every image is opened by
:func:`lenetlab.data.images.open_image`: a missing, unreadable or too large image raises a one-line
:class:`DataError` naming the file; so does a CSV row naming an image outside the dataset folder.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from lenetlab.data.common import carve_val, finish
from lenetlab.data.csvtable import Columns, Layout, label_order, read_pixels, read_rows, recognise
from lenetlab.data.download import IDX_DATASETS, find_file
from lenetlab.data.images import open_image
from lenetlab.data.splits import Split, Splits, dev_size
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

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        it = pool.map(one, range(len(paths)))
        if progress and len(paths) > 2000:
            it = tqdm(it, total=len(paths), unit="img", desc="decoding", leave=False)
        for _ in it:
            pass
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _probe(first: Path, image_size, channels) -> tuple[int, int]:
    with open_image(first, decode=False) as im:
        size = int(image_size) if image_size else int(im.size[0])
        if channels is None:
            channels = 1 if im.mode in GRAY_MODES else 3
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
            raise DataError(
                f"{layout.path}: line {i} names image {name!r}, outside the dataset folder {root} "
                "(image paths must be relative to it)"
            )
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


def index_image_tables(
    root: Path,
    train_csv: Path | None,
    test_csv: Path | None,
    columns: Columns,
    train_layout: Layout | None,
    test_layout: Layout | None,
) -> FolderIndex:
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
            raise DataError(
                f"{test.path}: {test.side}x{test.side} images but {train.path.name} has {train.side}x{train.side}"
            )
    return train, test


# ----------------------------------------------------------------------------- loading
def load_index(
    idx: FolderIndex, *, val_size=None, seed=0, image_size=None, channels=None, normalize=None, name: str | None = None
) -> Splits:
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
    if idx.dev is not None:
        train, dev = full, make(*idx.dev)
    elif len(full):
        train, dev = carve_val(full.x, full.y, dev_size(len(full), val_size), seed, where, ids=full.ids)
    else:
        train, dev = full, make([], [], [])
    if idx.carve_test:
        train, test = carve_val(train.x, train.y, len(full) // 10, seed + 1, where, ids=train.ids)
    else:
        test = make(idx.test, idx.test_y, idx.test_ids)
    splits = finish(
        name or idx.root.name,
        train,
        dev,
        test,
        idx.classes,
        str(idx.root.resolve()),
        channels=None,
        image_size=size,
        normalize=normalize,
        default_norm="stats",
    )
    splits.submission = idx.submission
    return splits


def load_pixel_tables(
    name: str,
    source: Path,
    train: Layout | None,
    test: Layout | None,
    *,
    val_size=None,
    seed=0,
    image_size=None,
    channels=None,
    normalize=None,
    columns: Columns = Columns(),
) -> Splits:
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
        tr, dev = carve_val(full.x, full.y, dev_size(len(full), val_size), seed, str(train.path))
    else:
        tr, dev = full, full
    te = split(
        xte,
        yte_s,
        test and test.path,
        ids if ids is not None else (None if xte is None else [str(i) for i in range(1, len(xte) + 1)]),
    )
    if te.ids is None:
        te.ids = []
    splits = finish(
        name,
        tr,
        dev,
        te,
        classes,
        str(source.resolve()),
        channels=channels,
        image_size=image_size,
        normalize=normalize,
        default_norm="half",
    )
    # Kaggle's Digit Recognizer wants ImageId,Label; a configured id or label column keeps its name
    splits.submission = (columns.id or "ImageId", "Label" if columns.label == "label" else columns.label)
    return splits


# ----------------------------------------------------------------------------- what a name is
#: The dataset names :func:`lenetlab.data.load` knows besides paths.
NAMED = ("mnist-subset", "mnist", "fashion-mnist")


@dataclass
class Source:
    """What a dataset name or path holds, decided once for loading and for inspection.

    ``kind``: ``named`` (``name`` one of :data:`NAMED`), ``nndl`` (a JSON file at ``path``), ``idx``
    (``idx``: the four files), ``pixel-csv`` (``tables``: the train and test layouts, either may be
    None), ``image-csv`` or ``class-folders`` (``index``: the images and their labels).
    """

    kind: str
    name: str
    path: Path | None = None
    idx: list[Path] = field(default_factory=list)
    tables: tuple[Layout | None, Layout | None] = (None, None)
    index: FolderIndex | None = None


def _path_of(name: str) -> Path:
    """``name`` as an existing path, or a one-line DataError (unknown name, or no such file)."""
    looks = (
        os.path.exists(name)
        or "/" in name
        or os.sep in name
        or name.endswith((".gz", ".json", ".csv"))
        or name.startswith((".", "~"))
    )
    if not looks:
        raise DataError(
            f"unknown dataset {name!r} (known: {', '.join(NAMED)}; or a path to an NNDL "
            f"mnist.json.gz file, a CSV file or an image folder)"
        )
    path = Path(name).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    return path


def _csv_file_tables(path: Path, columns: Columns) -> tuple[Layout | None, Layout | None]:
    """One CSV file given directly: a labelled table is the training set (``test.csv`` beside it, if
    any and of the same kind, the test set); an unlabelled one is a test set alone."""
    layout = recognise(path, columns)
    if not layout.labelled:
        return None, layout
    sibling = path.parent / "test.csv"
    test = recognise(sibling, columns) if sibling.is_file() and sibling.resolve() != path.resolve() else None
    return layout, test if test is not None and test.kind == layout.kind else None


def dataset_source(name: str, columns: Columns = Columns()) -> Source:
    """Decide what dataset ``name`` is (first match wins, see :mod:`lenetlab.data`): a known name, an
    NNDL file, a CSV file, a folder with ``train.csv``/``test.csv``, a folder of the four IDX files, a
    folder of class sub-folders. Tables and folders are indexed (no image decoded). One-line DataError
    for an unknown name, a missing path, partial IDX files or an unreadable table."""
    key = str(name).strip().lower()
    if key in NAMED:
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
        idx = [find_file(path, r.filename) for r in IDX_DATASETS["mnist"].resources]
        if any(idx) and not all(idx):
            missing = next(r.filename for r, f in zip(IDX_DATASETS["mnist"].resources, idx) if f is None)
            raise DataError(f"{path / missing}: file not found (the folder holds only some of the four IDX files)")
        if all(idx):
            return Source("idx", path.name, path, idx=idx)
        return Source("class-folders", path.name, path, index=_index_class_folders(path))
    if (train or test).kind == "pixels":
        return Source("pixel-csv", label, root, tables=(train, test))
    return Source(
        "image-csv",
        root.name,
        root,
        index=index_image_tables(root, train and train.path, test and test.path, columns, train, test),
    )
