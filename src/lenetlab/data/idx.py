"""The IDX format of MNIST and Fashion-MNIST (raw or gzip; a zero-byte pair, a type code, the rank, one
big-endian ``int32`` per dimension, the data in C order), and four IDX files as :class:`Splits`."""

import gzip
import io
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from lenetlab.data.common import carve_val
from lenetlab.data.splits import Split, Splits
from lenetlab.errors import DataError, first_line
from lenetlab.fileio import human_bytes

GZIP_MAGIC = b"\x1f\x8b"
# Type codes of the IDX spec; MNIST only uses 0x08, the others cost nothing to support.
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
#: The most a gzip file is inflated to (1 GiB: EMNIST's largest IDX file is 0.55 GB; NNDL's JSON less).
MAX_INFLATED = 1 << 30
#: Output beyond an IDX header's declared size still read, so that a few trailing bytes get their own message.
SLACK = 1 << 20
#: The classes of an IDX folder given as a path: MNIST-style digits.
IDX_CLASSES = [str(i) for i in range(10)]


def read_raw(path: Path) -> bytes:
    """The bytes of ``path`` as stored; a missing or unreadable file is a one-line DataError naming it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def decompress(raw: bytes, name: str | Path = "<bytes>", limit: int = MAX_INFLATED, *, idx: bool = False) -> bytes:
    """``raw`` gunzipped if it starts with the gzip magic, inflated no further than ``limit`` bytes (for an
    ``idx`` file, its header's size plus :data:`SLACK`): more is a DataError (a decompression bomb)."""
    if not raw.startswith(GZIP_MAGIC):
        return raw
    shape = None
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            head = _read_head(f) if idx else b""
            if idx:
                shape, _, _, declared = _header(head, name)
                if declared > MAX_INFLATED:
                    raise DataError(
                        f"{name}: IDX header declares shape {shape} ({human_bytes(declared)}), more "
                        f"than the {human_bytes(MAX_INFLATED)} lenetlab inflates from a gzip file"
                    )
                limit = declared + SLACK
            out = head + f.read(limit + 1 - len(head))
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{name}: corrupt or truncated gzip data ({first_line(e)})") from None
    if len(out) > limit and shape is not None:
        raise DataError(
            f"{name}: gzip data inflates beyond the {limit - SLACK:,} bytes its IDX header declares for "
            f"shape {shape} ({human_bytes(len(raw))} compressed): a decompression bomb or a corrupt "
            f"file; refused"
        )
    if len(out) > limit:
        raise DataError(
            f"{name}: gzip data inflates to more than {human_bytes(limit)} "
            f"({human_bytes(len(raw))} compressed): a decompression bomb or not the file expected; refused"
        )
    return out


def _read_head(f) -> bytes:
    """An IDX header's bytes read from stream ``f`` (just the first 4 when they are not an IDX magic)."""
    head = f.read(4)
    if len(head) == 4 and head[:2] == b"\0\0" and head[2] in _DTYPES:
        head += f.read(4 * head[3])
    return head


def _header(data: bytes, name) -> tuple[tuple[int, ...], np.dtype, int, int]:
    """The shape, dtype, header length and file size an IDX file's first bytes ``data`` declare; DataError if bad."""
    if len(data) < 4:
        raise DataError(f"{name}: truncated IDX file ({len(data)} bytes, no header)")
    if data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{name}: not an IDX file (wrong magic number 0x{data[:4].hex()})")
    ndim = data[3]
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header ({len(data)} of {header} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[data[2]])
    return dims, dtype, header, header + int(np.prod(dims, dtype=object)) * dtype.itemsize


def parse_idx(data: bytes, name: str | Path = "<bytes>") -> np.ndarray:
    """A decompressed IDX file as a read-only array of its header's shape (``uint8 [N, 28, 28]`` images,
    ``uint8 [N]`` labels); DataError when truncated, with trailing bytes or not IDX."""
    dims, dtype, header, expected = _header(data, name)
    if len(data) < expected:
        raise DataError(f"{name}: truncated IDX data ({len(data):,} of {expected:,} bytes for shape {dims})")
    if len(data) > expected:
        raise DataError(f"{name}: {len(data) - expected:,} unexpected trailing bytes after IDX data of shape {dims}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def idx_shape(path: str | Path) -> tuple[int, ...]:
    """The shape IDX file ``path`` (raw or gzip) declares in its header; DataError naming it if bad."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) if gz else raw as f:
                head = _read_head(f)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({first_line(e)})") from None
    return _header(head, path)[0]


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) into a numpy array; DataError naming ``path`` if bad."""
    path = Path(path)
    return parse_idx(decompress(read_raw(path), path, idx=True), path)


def read_images_labels(images: str | Path, labels: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A matching pair of IDX files: ``uint8 [N, H, W]`` images and ``uint8 [N]`` labels (checked)."""
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise DataError(f"{images}: expected uint8 images of rank 3, got {x.dtype} of shape {x.shape}")
    if y.ndim != 1 or y.dtype != np.uint8:
        raise DataError(f"{labels}: expected uint8 labels of rank 1, got {y.dtype} of shape {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{labels}: {y.shape[0]:,} labels but {Path(images).name} holds {x.shape[0]:,} images")
    return x, y


def check_labels(files: list[tuple[Path, np.ndarray]], n_classes: int) -> None:
    """Refuse IDX labels outside ``0 .. n_classes - 1``: a one-line DataError naming the label file."""
    for path, y in files:
        if len(y) and int(y.max()) >= n_classes:
            raise DataError(f"{path}: label {int(y.max())} out of range for {n_classes} classes")


def from_idx_files(name: str, paths: list[Path], class_names=IDX_CLASSES, *, val_size=None, seed=0) -> Splits:
    """:class:`Splits` of ``uint8 [N, 1, H, W]`` images and int64 labels from four IDX paths (train
    images/labels, test images/labels), dev carved from train."""

    with ThreadPoolExecutor(2) as pool:  # gzip releases the GIL
        (xtr, ytr), (xte, yte) = pool.map(read_images_labels, paths[0::2], paths[1::2])
    check_labels([(paths[1], ytr), (paths[3], yte)], len(class_names))
    full = Split(torch.from_numpy(xtr.copy()).unsqueeze(1), torch.from_numpy(ytr.astype(np.int64)))
    train, dev = carve_val(full, val_size, seed, name)
    test = Split(torch.from_numpy(xte.copy()).unsqueeze(1), torch.from_numpy(yte.astype(np.int64)))
    return Splits(name, train, dev, test, list(class_names), source=str(paths[0].parent.resolve()))
