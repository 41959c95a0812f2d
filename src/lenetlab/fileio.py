"""File writes and reads shared by every package: atomic writes (checkpoints, metrics, plots, downloads,
exports) and the JSON-lines reader (metrics logs).

Imports nothing else of lenetlab, so ``data``, ``models``, ``train``, ``analysis`` and ``serve`` can
all use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lenetlab.errors import DataError


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, move it onto ``path``.

    The caller writes the whole file to the yielded path. On success the file is fsynced, given the
    permissions a plain ``open()`` would have (``mkstemp`` creates it 0600) and renamed over
    ``path``, so readers see the old file or the new one, never half of one. On any exception the
    temporary file is removed and ``path`` is left as it was. Creates the parent folder.
    """
    path = Path(path)
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
    finally:
        tmp.unlink(missing_ok=True)


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
