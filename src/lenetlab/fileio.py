"""File writes and reads shared by every package: atomic writes (checkpoints, metrics, plots, downloads,
exports) and the one reader and writer of the project's own JSON and text files.

Reading: :func:`read_text` (UTF-8 only), :func:`loads` / :func:`read_json` / :func:`read_jsonl` (strict
JSON: nesting at most :data:`MAX_DEPTH` deep, no ``NaN``/``Infinity``, no integer longer than
:data:`MAX_INT_DIGITS` digits) and :func:`check_types` (the fields a reader expects, by type). Every
problem is a one-line :class:`~lenetlab.errors.DataError` (or the ``error`` class the caller names)
with the file. Writing: :func:`dumps`, strict JSON with non-finite numbers written as ``null``: what
the CLI prints with ``--json``, results files, configs and metrics use it.

Every write that fails because the device is full or the folder cannot be written becomes a one-line
:class:`~lenetlab.errors.LenetlabError` naming the file (:class:`~lenetlab.errors.DiskFullError` for
a full disk, with the bytes needed when known), never a C++ or OSError traceback, and the previous
file is left as it was.

Imports nothing else of lenetlab, so ``data``, ``models``, ``train``, ``plots`` and ``serve`` can
all use it.
"""

from __future__ import annotations

import errno
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
    """``n`` bytes as a short human string: ``512 B``, ``3.4 KB``, ``1.2 MB``, ``4.3 GB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # unreachable; keeps type checkers calm


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (itself or its cause/context chain), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def write_error(exc: BaseException, path: str | os.PathLike, size: int | None = None) -> LenetlabError | None:
    """The one-line error for a failed write of ``path`` (``size``: the bytes it needed, if known), or None
    when ``exc`` is not a full device or a folder that cannot be written (then it is a bug: keep it).

    A full device gives :class:`DiskFullError` ``PATH: no space left on device (needs N, M free)``; an
    unwritable folder ``PATH: cannot write (Permission denied / Read-only file system)``.
    """
    path = Path(path)
    err = _os_error(exc)
    if err is None:
        return None
    if err.errno in FULL_ERRNOS:
        try:
            free = f"{human_bytes(shutil.disk_usage(_existing_parent(path)).free)} free"
        except OSError:
            free = "free space unknown"
        need = f"needs {human_bytes(size)}, " if size is not None else ""
        return DiskFullError(f"{path}: no space left on device ({need}{free})")
    if err.errno in DENIED_ERRNOS:
        return LenetlabError(
            f"{path}: cannot write ({err.strerror or os.strerror(err.errno)}: {err.filename or path.parent})"
        )
    return None


def _existing_parent(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(".")


def ensure_writable(folder: str | os.PathLike, what: str = "") -> Path:
    """Create ``folder`` if needed and check a file can be created in it (written and removed at once).

    For commands that work for minutes before they write (``lenet submit`` trains first): they check
    here, up front, and fail in one line instead of after the work. ``what`` names the flag in the
    message (``--out``). Returns the folder.
    """
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
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp", size: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, move it onto ``path``.

    The caller writes the whole file to the yielded path. On success the file is fsynced, given the
    permissions a plain ``open()`` would have (``mkstemp`` creates it 0600) and renamed over
    ``path``, so readers see the old file or the new one, never half of one. On any exception the
    temporary file is removed and ``path`` is left as it was. Creates the parent folder.

    A full device (``ENOSPC``/``EDQUOT``, from the block, the fsync or the rename) becomes a one-line
    :class:`DiskFullError` naming ``path`` and ``size`` (the bytes the caller meant to write, when it
    knows them); a folder that cannot be written a one-line :class:`LenetlabError`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as e:
        err = write_error(e, path, size)
        if err is None:
            raise
        raise err from None
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
    """Append ``text`` to ``path`` (created if missing) and flush; a full disk or an unwritable folder
    is a one-line :class:`LenetlabError` naming ``path``. For append-only logs (``metrics.jsonl``),
    whose reader skips a torn last line."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        err = write_error(e, path, len(text.encode("utf-8")))
        if err is None:
            raise
        raise err from None


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
    depth = deepest = 0
    for m in _TOKENS.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


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
    """The JSON value in ``path`` read by :func:`read_text` and :func:`loads`; with ``types``, an object
    checked by :func:`check_types`. Every problem is one ``error`` line naming the file."""
    value = loads(read_text(path, error), path, error)
    return value if types is None else check_types(value, types, path, required, error)


def finite(value):
    """``value`` (nested dicts/lists/tuples of JSON values) with every non-finite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value, indent: int | None = 2, **kw) -> str:
    """``value`` as strict JSON (``NaN``/``Infinity`` become ``null``, also where a ``default=`` converter
    makes them; ``allow_nan=False`` refuses any other way in): the one JSON writer of the CLI's ``--json``
    output, configs, metrics, exported configs and results files. ``kw``: :func:`json.dumps`'s options."""
    if kw.get("default") is not None:
        convert = kw["default"]
        kw["default"] = lambda obj: finite(convert(obj))
    return json.dumps(finite(value), indent=indent, allow_nan=False, **kw)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The JSON objects of a JSON-lines file, one per line, in order (blank lines skipped), each parsed by
    :func:`loads` (strict: bounded depth, finite numbers).

    A process killed mid-write leaves a truncated last line: it is ignored. Any other line that is
    not strict JSON is a one-line :class:`DataError` naming the file and line; a missing file or
    bytes that are not UTF-8 too.
    """
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
