"""Atomic writes and the one strict reader and writer of the project's JSON and text files. Every problem
is a one-line :class:`~lenetlab.errors.LenetlabError` naming the file (a full device a
:class:`~lenetlab.errors.DiskFullError`), never an OSError traceback; a failed write leaves the
previous file as it was."""

import errno
import itertools
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from lenetlab.errors import DataError, DiskFullError, LenetlabError

#: errno values meaning "no room": a full device or an exhausted quota.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: errno values meaning "this folder cannot be written".
DENIED_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def human_bytes(n: int | float) -> str:
    """``n`` bytes as ``512 B``, ``3.4 KB``, ``1.2 MB`` or ``4.3 GB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _os_error(exc: BaseException | None) -> OSError | None:
    """The OSError with an errno behind ``exc`` (itself or its cause/context chain), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def write_error(exc: BaseException, path: str | os.PathLike, size: int | None = None) -> LenetlabError | None:
    """The one-line error for a failed write of ``path`` (``size``: the bytes it needed, if known):
    :class:`DiskFullError` ``PATH: no space left on device (needs N, M free)`` or ``PATH: cannot write
    (Permission denied: FOLDER)``; None when ``exc`` (or its cause) is neither: a bug, to keep."""
    path, err = Path(path), _os_error(exc)
    if err is None:
        return None
    if err.errno in FULL_ERRNOS:
        try:
            existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
            free = f"{human_bytes(shutil.disk_usage(existing).free)} free"
        except OSError:
            free = "free space unknown"
        need = f"needs {human_bytes(size)}, " if size is not None else ""
        return DiskFullError(f"{path}: no space left on device ({need}{free})")
    if err.errno in DENIED_ERRNOS:
        reason = err.strerror or os.strerror(err.errno)
        return LenetlabError(f"{path}: cannot write ({reason}: {err.filename or path.parent})")
    return None


def ensure_writable(folder: str | os.PathLike, what: str = "") -> Path:
    """Create ``folder`` if needed and check that a file can be created in it, for commands that work for
    minutes before they write (``lenet submit``); ``what`` names the flag in the message. Returns it."""
    folder = Path(folder)
    label = f"{what} {folder}" if what else str(folder)
    if folder.exists() and not folder.is_dir():
        raise LenetlabError(f"{label}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".lenetlab-write-check.", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        kind = DiskFullError if e.errno in FULL_ERRNOS else LenetlabError
        raise kind(f"{label}: cannot write in this folder ({e.strerror or type(e).__name__})") from None
    return folder


@contextmanager
def _one_line(path: str | os.PathLike, size: int | None = None) -> Iterator[None]:
    """Within the block, an OSError that :func:`write_error` knows becomes its one-line error."""
    try:
        yield
    except OSError as e:
        err = write_error(e, path, size)
        if err is None:
            raise
        raise err from None


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp", size: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the caller to write the whole file to; when the block
    succeeds, fsync it, give it a plain ``open()``'s permissions and rename it over ``path``, so readers
    see the old file or the new one. On any exception it is removed and ``path`` left as it was; a full
    device or an unwritable folder is one line (:func:`write_error`, ``size``: the bytes meant)."""
    path = Path(path)
    with _one_line(path, size):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except Exception as e:
        tmp.unlink(missing_ok=True)  # before measuring the free space
        err = None if isinstance(e, LenetlabError) else write_error(e, path, size)
        if err is None:
            raise
        kept = f"; the previous {path.name} is unchanged" if path.exists() else ""
        raise type(err)(f"{err}{kept}") from None
    finally:
        tmp.unlink(missing_ok=True)


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` to the log ``path`` (created if missing; its reader skips a torn last line); a full
    disk or an unwritable folder is one line."""
    with _one_line(path, len(text.encode("utf-8"))), open(path, "a", encoding="utf-8") as f:
        f.write(text)


#: The deepest nesting of arrays and objects a project JSON file may have (its own files nest 4 deep).
MAX_DEPTH = 64
#: The longest integer literal accepted (int64 has 19 digits): a 400-digit number is damage, not data.
MAX_INT_DIGITS = 20
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def read_text(path: str | os.PathLike, error: type[LenetlabError] = DataError) -> str:
    """The text of ``path``, which must be UTF-8; a missing file, an unreadable one or other bytes are a
    one-line ``error`` naming it."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a file") from None
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None


def _depth(text: str) -> int:
    """How deep ``text``'s arrays and objects nest (brackets inside strings do not count)."""
    steps = (1 if c in "[{" else -1 for c in _TOKENS.findall(text) if len(c) == 1)
    return max(itertools.accumulate(steps, initial=0))


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} overflows a float")
    return value


def _decode(text: str):
    """``json.loads`` under the strict rules: JSONDecodeError for bad syntax, ValueError for the rest."""
    if _depth(text) > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} deep")
    return json.loads(text, parse_constant=_no_constant, parse_int=_int, parse_float=_float)


def loads(text: str, source: str | os.PathLike = "JSON", error: type[LenetlabError] = DataError):
    """Parse strict JSON ``text`` (from ``source``, named in errors): nesting at most :data:`MAX_DEPTH`
    deep, finite numbers only, integers of at most :data:`MAX_INT_DIGITS` digits; else a one-line ``error``."""
    try:
        return _decode(text)
    except json.JSONDecodeError as e:
        raise error(f"{source}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except ValueError as e:
        raise error(f"{source}: not valid JSON ({e})") from None


def check_types(
    obj,
    types: Mapping[str, type | tuple[type, ...]],
    source: str | os.PathLike = "JSON",
    required: tuple[str, ...] = (),
    error: type[LenetlabError] = DataError,
) -> dict:
    """Check that ``obj`` is a dict whose fields named in ``types`` (when present; those in ``required``
    must be) have those types (``bool`` is not an ``int`` unless named; ``type(None)`` allows null).
    Returns ``obj``; a one-line ``error`` naming ``source`` and the field otherwise."""
    if not isinstance(obj, dict):
        raise error(f"{source}: expected a JSON object, got {type(obj).__name__}")
    for key, kind in types.items():
        if key not in obj:
            if key in required:
                raise error(f"{source}: missing field {key!r}")
            continue
        kinds = kind if isinstance(kind, tuple) else (kind,)
        value = obj[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise error(f"{source}: field {key!r} must be {names}, got {type(value).__name__}")
    return obj


def read_json(
    path: str | os.PathLike,
    types: Mapping[str, type | tuple[type, ...]] | None = None,
    required: tuple[str, ...] = (),
    error: type[LenetlabError] = DataError,
):
    """The strict JSON value in the UTF-8 file ``path``; with ``types``, an object checked by
    :func:`check_types`. Every problem is one ``error`` line naming the file."""
    value = loads(read_text(path, error), path, error)
    return value if types is None else check_types(value, types, path, required, error)


def finite(value):
    """``value`` (nested dicts, lists, tuples) with every non-finite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value, indent: int | None = 2, **kw) -> str:
    """``value`` as strict JSON, ``NaN``/``Infinity`` written as ``null`` (also where a ``default=``
    converter makes them): the one JSON writer. ``kw``: :func:`json.dumps`'s options."""
    if kw.get("default") is not None:
        convert = kw["default"]
        kw["default"] = lambda obj: finite(convert(obj))
    return json.dumps(finite(value), indent=indent, allow_nan=False, **kw)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The JSON objects of a JSON-lines file in order, each strict JSON (:func:`loads`). A truncated last
    line (a process killed mid-write) is ignored; any other bad line is a one-line :class:`DataError`
    naming the file and line."""
    path = Path(path)
    lines = read_text(path).splitlines()
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = _decode(line)
        except json.JSONDecodeError:
            if i == len(lines):
                break
            raise DataError(f"{path}:{i}: not a JSON object") from None
        except ValueError as e:
            raise DataError(f"{path}:{i}: not valid JSON ({e})") from None
        if isinstance(row, dict):
            rows.append(row)
    return rows
