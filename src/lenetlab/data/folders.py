"""Image-folder datasets, decoded once into ``uint8 [N, C, S, S]`` tensors.

Layouts recognised by :func:`load_folder` (first match wins):

* **Kaggle classify-leaves**: ``train.csv`` (columns ``image,label``) and optional ``test.csv``
  (column ``image``); image paths relative to the folder (``images/0.jpg``). String labels get a
  stable, sorted label→index map; a seeded dev split is carved from train; the test split is
  unlabelled (``y=None``) with ``ids`` = the image names from ``test.csv``.
* **four IDX files** (``train-images-idx3-ubyte[.gz]`` ...): read like MNIST, classes ``0..max``.
* **class per sub-folder**: ``train/<class>/*`` and optional ``test/<class>/*`` (and ``val/``,
  ``valid/`` or ``dev/`` as the dev split), or ``<class>/*`` directly under the root, in which case
  dev and test are each a seeded tenth of the images.

Images are converted to RGB (3 channels) or grayscale (1), default: RGB unless the first image is
grayscale, and resized (bilinear) to ``image_size``, default: the first image's size (square).
Decoding runs in a thread pool (Pillow releases the GIL). A missing or unreadable image, or one too
large to decode safely (Pillow's decompression-bomb limit), raises a one-line :class:`DataError`
naming the file; so does a CSV row naming an image outside the dataset folder.
"""

from __future__ import annotations

import csv
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from lenetlab.data.common import carve_val, finish
from lenetlab.data.download import IDX_DATASETS, find_file
from lenetlab.data.mnist import from_idx_files
from lenetlab.data.splits import Split, Splits
from lenetlab.errors import DataError, first_line

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
_DEV_DIRS = ("val", "valid", "dev")


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
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
    from PIL import Image

    out = np.empty((len(paths), size, size, channels), dtype=np.uint8)
    mode = "L" if channels == 1 else "RGB"

    def one(i: int) -> None:
        im = _open(paths[i]).convert(mode)
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        out[i] = np.asarray(im).reshape(size, size, channels)

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        it = pool.map(one, range(len(paths)))
        if progress and len(paths) > 2000:
            from tqdm import tqdm

            it = tqdm(it, total=len(paths), unit="img", desc="decoding", leave=False)
        for _ in it:
            pass
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _probe(first: Path, image_size, channels) -> tuple[int, int]:
    im = _open(first)
    size = int(image_size) if image_size else int(im.size[0])
    if channels is None:
        channels = 1 if im.mode in ("1", "L", "I", "I;16", "F", "LA") else 3
    if channels not in (1, 3):
        raise DataError(f"channels={channels} must be 1 (grayscale) or 3 (RGB)")
    return size, int(channels)


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in columns if c not in header]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} (header: {','.join(header)})")
            reader.fieldnames = header
            return [row for row in reader]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 CSV file") from None
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({e})") from None


def _csv_images(root: Path, csv_path: Path, rows: list[dict[str, str]]) -> list[Path]:
    paths = []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        name = (row.get("image") or "").strip()
        if not name:
            raise DataError(f"{csv_path}: line {i} has no image name")
        # relative to the folder and inside it (checked on the names, so a symlinked images/ still works)
        inside = os.path.normpath(os.path.join(root, name))
        if os.path.isabs(name) or os.path.relpath(inside, os.path.normpath(root)).split(os.sep)[0] == "..":
            raise DataError(f"{csv_path}: line {i} names image {name!r}, outside the dataset folder {root} "
                            "(image paths must be relative to it)")
        p = root / name
        if not p.is_file():
            raise DataError(f"{csv_path}: line {i} names image {name!r}, which does not exist in {root}")
        paths.append(p)
    return paths


def load_leaves(root: Path, *, val_size=None, seed=0, image_size=None, channels=None, normalize=None) -> Splits:
    """Kaggle classify-leaves layout → Splits (dev carved from train.csv; unlabelled test from test.csv)."""
    train_csv = root / "train.csv"
    rows = _read_csv(train_csv, ("image", "label"))
    if not rows:
        raise DataError(f"{train_csv}: no rows")
    labels = [(r.get("label") or "").strip() for r in rows]
    for i, lab in enumerate(labels, start=2):
        if not lab:
            raise DataError(f"{train_csv}: line {i} has an empty label")
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    paths = _csv_images(root, train_csv, rows)
    test_csv = root / "test.csv"
    test_paths = _csv_images(root, test_csv, _read_csv(test_csv, ("image",))) if test_csv.is_file() else []
    size, ch = _probe(paths[0], image_size, channels)
    x = decode_images(paths, size, ch, progress=True)
    y = torch.tensor([index[lab] for lab in labels], dtype=torch.int64)
    ids = [p.relative_to(root).as_posix() for p in paths]
    n_val = len(x) // 10 if val_size is None else int(val_size)
    train, dev = carve_val(x, y, n_val, seed, str(train_csv), ids=ids)
    test = Split(decode_images(test_paths, size, ch, progress=True), None,
                 [p.relative_to(root).as_posix() for p in test_paths])
    return finish(root.name, train, dev, test, classes, str(root.resolve()), channels=None,
                  image_size=size, normalize=normalize, default_norm="stats")


def _class_dirs(folder: Path) -> dict[str, list[Path]]:
    out = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in d.rglob("*") if f.suffix.lower() in IMAGE_EXTS and f.is_file())
        if files:
            out[d.name] = files
    return out


def load_class_folders(root: Path, *, val_size=None, seed=0, image_size=None, channels=None,
                       normalize=None) -> Splits:
    """Class-per-sub-folder layout (under ``train/``/``test/`` or directly under ``root``) → Splits."""
    base = root / "train" if (root / "train").is_dir() else root
    train_dirs = _class_dirs(base)
    if not train_dirs:
        raise DataError(f"{root}: no dataset found (no train.csv, IDX files or class sub-folders with images)")
    classes = sorted(train_dirs)
    index = {c: i for i, c in enumerate(classes)}

    def gather(dirs: dict[str, list[Path]], where: Path) -> tuple[list[Path], list[int]]:
        unknown = sorted(set(dirs) - set(index))
        if unknown:
            raise DataError(f"{where}: class folder {unknown[0]!r} is not among the training classes")
        pairs = [(f, index[c]) for c in sorted(dirs) for f in dirs[c]]
        return [p for p, _ in pairs], [c for _, c in pairs]

    paths, labels = gather(train_dirs, base)
    size, ch = _probe(paths[0], image_size, channels)

    def make(ps: list[Path], ys: list[int]) -> Split:
        return Split(decode_images(ps, size, ch, progress=True), torch.tensor(ys, dtype=torch.int64),
                     [p.relative_to(root).as_posix() for p in ps])

    full = make(paths, labels)
    dev_dir = next((root / d for d in _DEV_DIRS if base != root and (root / d).is_dir()), None)
    test_dir = root / "test" if base != root and (root / "test").is_dir() else None
    n_val = len(full) // 10 if val_size is None else int(val_size)
    if dev_dir is not None:
        train, dev = full, make(*gather(_class_dirs(dev_dir), dev_dir))
    else:
        train, dev = carve_val(full.x, full.y, n_val, seed, str(base), ids=full.ids)
    if test_dir is not None:
        test = make(*gather(_class_dirs(test_dir), test_dir))
    elif base == root:  # a single root: the test set is another seeded tenth of the images
        train, test = carve_val(train.x, train.y, len(full) // 10, seed + 1, str(base), ids=train.ids)
    else:
        test = Split(full.x[:0], full.y[:0], [])
    return finish(root.name, train, dev, test, classes, str(root.resolve()), channels=None,
                  image_size=size, normalize=normalize, default_norm="stats")


def load_folder(root: Path, *, val_size=None, seed=0, verify=False, image_size=None, channels=None,
                normalize=None) -> Splits:
    """Detect the layout of folder ``root`` (see the module doc) and load it as :class:`Splits`."""
    opts = dict(val_size=val_size, seed=seed, image_size=image_size, channels=channels, normalize=normalize)
    if (root / "train.csv").is_file():
        return load_leaves(root, **opts)
    idx = [find_file(root, r.filename) for r in IDX_DATASETS["mnist"].resources]
    if any(idx) and not all(idx):
        missing = next(r.filename for r, f in zip(IDX_DATASETS["mnist"].resources, idx) if f is None)
        raise DataError(f"{root / missing}: file not found (the folder holds only some of the four IDX files)")
    if all(idx):
        if verify:
            raise DataError(f"{root}: checksums are known only for named datasets; use --dataset mnist "
                            f"(or fashion-mnist) --data-dir {root} --verify")

        return from_idx_files(root.name, idx, None, **opts)
    return load_class_folders(root, **opts)
