"""The one CSV reader of lenetlab (UTF-8, with or without Excel's byte-order mark; columns found by name,
exactly, else ignoring case): :func:`recognise` tells **images** tables (an image-file column, as Kaggle's
classify-leaves) from **pixels** tables (``pixel0..`` columns of a square image, as Kaggle's Digit Recognizer)."""

import csv
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from lenetlab.errors import DataError, first_line

ENCODING = "utf-8-sig"  # UTF-8 with or without Excel's byte-order mark
_PIXEL = re.compile(r"^pixel_?(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Columns:
    """Names of the columns to read: image file, label, and the id a submission uses (None: the image name,
    or the row number)."""

    image: str = "image"
    label: str = "label"
    id: str | None = None

    @classmethod
    def of(cls, image: str | None = None, label: str | None = None, id: str | None = None) -> "Columns":
        """Columns from optional names (None keeps the default)."""
        return cls(image or "image", label or "label", id or None)


@dataclass
class Layout:
    """A recognised table: ``kind`` ``images`` or ``pixels`` and the column indices to read."""

    path: Path
    kind: str
    header: list[str]
    image: int | None = None
    label: int | None = None
    id: int | None = None
    pixels: list[int] = field(default_factory=list)
    side: int = 0

    @property
    def labelled(self) -> bool:
        """Whether the table has a label column."""
        return self.label is not None


@contextmanager
def open_csv(path: str | Path, binary: bool = False):
    """Open ``path`` as CSV text or bytes; a missing file, undecodable text or malformed CSV is a DataError."""
    try:
        f = open(path, "rb") if binary else open(path, newline="", encoding=ENCODING)  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        yield f
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 CSV file (save it as 'CSV UTF-8')") from None
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({first_line(e, 120)})") from None
    finally:
        f.close()


def read_rows(path: str | Path) -> list[list[str]]:
    """The data rows of ``path`` after its header, each a list of stripped strings (blank lines skipped)."""
    with open_csv(path) as f:
        reader = csv.reader(f)
        next(reader, None)
        return [[c.strip() for c in r] for r in reader if any(c.strip() for c in r)]


def find_column(header: list[str], name: str | None) -> int | None:
    """Index of column ``name`` in ``header``: an exact match, else one ignoring case; None if absent."""
    if not name:
        return None
    if name in header:
        return header.index(name)
    low = [h.lower() for h in header]
    return low.index(name.lower()) if name.lower() in low else None


def brief(header: list[str], k: int = 4) -> str:
    """The first ``k`` column names and how many there are, for one-line messages."""
    shown = ",".join(h[:24] for h in header[:k])
    return (shown + f",... ({len(header)} columns)") if len(header) > k else (shown or "no columns")


def _pixel_columns(header: list[str]) -> tuple[list[int], int]:
    """Indices of the ``pixelN`` columns in pixel order and the image side; ``([], 0)`` unless they number a
    square image of at least 4×4 from 0 or 1 without gaps."""
    found = sorted((int(m.group(1)), i) for i, h in enumerate(header) if (m := _PIXEL.match(h)))
    numbers, side = [n for n, _ in found], math.isqrt(len(found))
    square = side >= 4 and side * side == len(found)
    if not square or numbers not in (list(range(len(found))), list(range(1, len(found) + 1))):
        return [], 0
    return [i for _, i in found], side


def recognise(path: str | Path, columns: Columns = Columns(), *, need_label: bool = False) -> Layout:
    """The :class:`Layout` of ``path``'s table from its header (``need_label``: a training file); else one
    DataError naming the columns expected and found."""
    path = Path(path)
    with open_csv(path) as f:
        header = [c.strip() for c in next(csv.reader(f), [])]

    img, lab, idc = (find_column(header, n) for n in (columns.image, columns.label, columns.id))
    if columns.id and idc is None and not need_label:
        raise DataError(f"{path}: no id column {columns.id!r} (found {brief(header)})")
    pixels, side = _pixel_columns(header)
    if img is not None:
        layout = Layout(path, "images", header, image=img, label=lab, id=idc)
    elif pixels:
        layout = Layout(path, "pixels", header, label=lab, id=idc, pixels=pixels, side=side)
    else:
        raise DataError(
            f"{path}: not a table lenetlab can read: expected columns {columns.image},{columns.label} "
            f"(image files) or {columns.label},pixel0..pixel783 (pixel values, as Kaggle's Digit "
            f"Recognizer); found {brief(header)} (set the names with --image-column/--label-column)"
        )
    if need_label and lab is None:
        raise DataError(
            f"{path}: no label column {columns.label!r} (found {brief(header)}; set it with --label-column)"
        )
    return layout


#: Characters allowed per value when a pixel table's line is read: a line longer than this many per
#: header column is refused before it is parsed.
MAX_VALUE_CHARS = 32


def _rows(f, layout: Layout):
    """The non-blank data rows (bytes) of table ``f``; a line longer than the header's width allows, or
    with another number of values than the header's, is a DataError."""
    ncol = len(layout.header)
    limit = MAX_VALUE_CHARS * ncol + 64
    f.readline()  # the header
    n = 1
    while line := f.readline(limit + 1):
        n += 1
        if len(line) > limit:
            raise DataError(
                f"{layout.path}: line {n} is longer than {limit:,} characters, more than the header's "
                f"{ncol} columns can hold; refused"
            )
        if not line.strip():
            continue
        k = line.count(b",") + 1 if b'"' not in line else len(next(csv.reader([line.decode(ENCODING)])))
        if k != ncol:
            raise DataError(f"{layout.path}: line {n} has {k} values but the header names {ncol} columns")
        yield line


def _load_ints(layout: Layout, usecols=None, max_rows: int | None = None) -> np.ndarray:
    """The integer table ``[N, columns]`` after the header, its rows first checked by :func:`_rows`."""
    with open_csv(layout.path, binary=True) as f:
        for _ in islice(_rows(f, layout), max_rows):
            pass
    with open_csv(layout.path) as f:
        f.readline()  # the header
        return np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2, usecols=usecols, max_rows=max_rows)


def read_pixels(layout: Layout, max_rows: int | None = None) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """Images ``uint8 [N, side, side]`` and the label and id columns as strings (or None) of a ``pixels``
    table's first ``max_rows`` rows; a pixel value not an integer in 0..255 is a DataError naming the line."""
    path = layout.path
    try:  # the usual case, every column a number: one parse of the whole table
        table = _load_ints(layout, max_rows=max_rows)
        px = table[:, layout.pixels] if table.size else np.zeros((0, len(layout.pixels)), np.int64)
        labels, ids = (None if k is None else [str(v) for v in table[:, k].tolist()] for k in (layout.label, layout.id))
    except ValueError as e:
        if layout.label is None and layout.id is None:
            raise DataError(f"{path}: not a table of integers ({first_line(e, 120)})") from None
        try:  # a label or id column of words: parse the pixels alone, read those columns as text
            px = _load_ints(layout, usecols=layout.pixels, max_rows=max_rows)
        except ValueError as e2:
            raise DataError(f"{path}: pixel values must be integers ({first_line(e2, 120)})") from None
        labels, ids = (None if k is None else column_values(layout, k)[: len(px)] for k in (layout.label, layout.id))
    if px.size and (px.min() < 0 or px.max() > 255):
        row = int(np.argwhere((px < 0) | (px > 255))[0, 0]) + 2
        raise DataError(f"{path}: line {row}: pixel values must be integers in 0..255")
    return px.astype(np.uint8).reshape(-1, layout.side, layout.side), labels, ids


def label_order(labels: list[str]) -> list[str]:
    """The sorted distinct labels (numerically when all are integers): their position is the class index."""
    distinct = set(labels)
    return sorted(distinct, key=int if all(re.fullmatch(r"-?\d+", s) for s in distinct) else None)


def count_rows(layout: Layout) -> int:
    """Data rows of a table (non-blank lines after the header, each checked by :func:`_rows`)."""
    with open_csv(layout.path, binary=True) as f:
        return sum(1 for _ in _rows(f, layout))


def column_values(layout: Layout, index: int) -> list[str]:
    """The stripped values of column ``index`` of a table's rows (a first column cut without CSV parsing)."""

    out = []
    with open_csv(layout.path, binary=True) as f:
        for line in _rows(f, layout):
            if index == 0 and not line.startswith(b'"'):
                out.append(line.split(b",", 1)[0].decode(ENCODING).strip())
            else:
                row = next(csv.reader([line.decode(ENCODING)]))
                out.append(row[index].strip() if index < len(row) else "")
    return out
