"""File writes and reads shared by every package: atomic writes (checkpoints, metrics, plots, downloads,
exports) and the JSON-lines reader (metrics logs).

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
import os
import shutil
import tempfile
from collections.abc import Iterator
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
        return LenetlabError(f"{path}: cannot write ({err.strerror or os.strerror(err.errno)}: "
                             f"{err.filename or path.parent})")
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


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The JSON objects of a JSON-lines file, one per line, in order (blank lines skipped).

    A process killed mid-write leaves a truncated last line: it is ignored. Any other line that is
    not JSON is a one-line :class:`DataError` naming the file and line; a missing file too.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):
                break
            raise DataError(f"{path}:{i}: not a JSON object") from None
        if isinstance(row, dict):
            rows.append(row)
    return rows
