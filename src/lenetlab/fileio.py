"""Atomic file writes shared by every package: checkpoints, metrics, plots, downloads, exports.

Imports nothing else of lenetlab, so ``data``, ``models``, ``train``, ``analysis`` and ``serve`` can
all use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
