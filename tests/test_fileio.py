"""lenetlab.fileio.atomic_path: all-or-nothing writes with plain file permissions."""

from __future__ import annotations

import os
import stat

import pytest

from lenetlab.fileio import atomic_path


def test_success_replaces_the_file_with_plain_permissions(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    umask = os.umask(0o022)
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("new")
    finally:
        os.umask(umask)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["out.csv"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
