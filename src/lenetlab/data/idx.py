"""Reader for the IDX format of MNIST and Fashion-MNIST (raw or gzip-compressed).

IDX layout: two zero bytes, a type code (``0x08`` = unsigned byte), the number of dimensions,
then one big-endian ``int32`` per dimension, then the data in C order. Every malformed input
(wrong magic, truncated or over-long data, bad gzip stream) raises :class:`DataError` naming
the file, so callers never see a ``struct``/``zlib``/``numpy`` exception.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from lenetlab.errors import DataError, first_line

GZIP_MAGIC = b"\x1f\x8b"
# Type codes of the IDX spec; MNIST only uses 0x08, the others cost nothing to support.
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path: str | Path) -> bytes:
    """Return the (decompressed, when gzip) bytes of ``path``; DataError if missing or corrupt."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    return decompress(raw, path)


def decompress(raw: bytes, name: str | Path = "<bytes>") -> bytes:
    """Gunzip ``raw`` if it starts with the gzip magic, else return it unchanged."""
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{name}: corrupt or truncated gzip data ({first_line(e)})") from None


def parse_idx(data: bytes, name: str | Path = "<bytes>") -> np.ndarray:
    """Parse decompressed IDX bytes into a read-only numpy array of the header's shape.

    ``data`` is the whole file; returns e.g. ``uint8 [N, 28, 28]`` for images, ``uint8 [N]`` for
    labels. Raises DataError for a wrong magic number, a truncated header/body or trailing bytes.
    """
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
    expected = header + int(np.prod(dims, dtype=object)) * dtype.itemsize
    if len(data) < expected:
        raise DataError(f"{name}: truncated IDX data ({len(data):,} of {expected:,} bytes for shape {dims})")
    if len(data) > expected:
        raise DataError(f"{name}: {len(data) - expected:,} unexpected trailing bytes after IDX data of shape {dims}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) into a numpy array; DataError naming ``path`` if bad."""
    return parse_idx(read_bytes(path), path)


def read_images_labels(images: str | Path, labels: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a matching pair of IDX files: ``uint8 [N, H, W]`` images and ``uint8 [N]`` labels.

    Checks the ranks (3 and 1), the unsigned-byte type and that both hold the same count.
    """
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise DataError(f"{images}: expected uint8 images of rank 3, got {x.dtype} of shape {x.shape}")
    if y.ndim != 1 or y.dtype != np.uint8:
        raise DataError(f"{labels}: expected uint8 labels of rank 1, got {y.dtype} of shape {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{labels}: {y.shape[0]:,} labels but {Path(images).name} holds {x.shape[0]:,} images")
    return x, y


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write a ``uint8`` array as IDX (gzip when ``compress`` or the name ends in ``.gz``); for tests/tools."""
    path = Path(path)
    a = np.ascontiguousarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes() + a.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    path.write_bytes(data)
    return path
