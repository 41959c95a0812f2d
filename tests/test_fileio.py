"""lenetlab.fileio: all-or-nothing writes with plain file permissions; the JSON-lines reader."""

from __future__ import annotations

import os
import stat

import pytest

from lenetlab.errors import DataError
from lenetlab.fileio import atomic_path, read_jsonl


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


def test_read_jsonl_skips_a_torn_last_line_and_names_other_bad_lines(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"kind": "train", "step": 1, "loss": 1.0}\n\n{"kind": "dev", "step": 1, "loss": 0.9, "accu')
    assert [r["kind"] for r in read_jsonl(p)] == ["train"]  # a truncated last line (killed run) is ignored
    p.write_text('{"kind": "train"}\nnot json\n{"kind": "dev"}\n')
    with pytest.raises(DataError, match=r"metrics.jsonl:2: not a JSON object"):
        read_jsonl(p)
    with pytest.raises(DataError, match="nope: file not found"):
        read_jsonl(tmp_path / "nope")
