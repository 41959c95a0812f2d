"""lenetlab.fileio: all-or-nothing writes with plain file permissions; the JSON-lines reader."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from lenetlab.errors import DataError, DiskFullError, LenetlabError
from lenetlab.fileio import append_text, atomic_path, ensure_writable, read_jsonl


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


def test_full_disk_for_real_is_one_line_naming_file_and_size(tmpfs):
    """A 64 KB tmpfs: a 100 KB file does not fit. One line, the previous file intact, no temporary left."""
    disk = tmpfs("64k")
    target = disk / "metrics.jsonl"
    target.write_text("old")
    payload = b"x" * 100_000
    with pytest.raises(DiskFullError) as e:
        with atomic_path(target, size=len(payload)) as tmp:
            tmp.write_bytes(payload)
    msg = str(e.value)
    assert msg.startswith(f"{target}: no space left on device (needs 97.7 KB, ") and "free)" in msg
    assert "previous metrics.jsonl is unchanged" in msg and "\n" not in msg
    assert target.read_text() == "old" and [p.name for p in disk.iterdir()] == ["metrics.jsonl"]
    with pytest.raises(DiskFullError, match="metrics.jsonl: no space left on device"):
        append_text(target, "y" * 100_000)


@pytest.mark.parametrize("where", ["block", "fsync", "rename"])
def test_injected_enospc_anywhere_in_the_write_is_a_disk_full_error(tmp_path, monkeypatch, where):
    target = tmp_path / "best.pt"
    target.write_text("good")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "fsync":
        monkeypatch.setattr(os, "fsync", full)
    if where == "rename":
        monkeypatch.setattr(os, "replace", full)
    with pytest.raises(DiskFullError, match=r"best.pt: no space left on device \(needs 1.0 KB"):
        with atomic_path(target, size=1024) as tmp:
            tmp.write_text("new")
            if where == "block":
                full()
    assert target.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_other_errors_keep_their_type(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with atomic_path(tmp_path / "a.txt"):
            _ = 1 / 0
    with pytest.raises(IsADirectoryError):  # not a full disk nor a permission problem: a bug, kept
        (tmp_path / "d").mkdir()
        with atomic_path(tmp_path / "d") as tmp:
            tmp.write_text("x")


def test_unwritable_folder_is_one_line(readonly_dir):
    with pytest.raises(LenetlabError) as e:
        with atomic_path(readonly_dir / "sub" / "out.csv") as tmp:
            tmp.write_text("x")
    assert str(e.value).startswith(f"{readonly_dir / 'sub' / 'out.csv'}: cannot write (")
    with pytest.raises(LenetlabError, match=r"--out .*: cannot write in this folder"):
        ensure_writable(readonly_dir, "--out")
    with pytest.raises(LenetlabError, match="cannot write"):
        append_text(readonly_dir / "metrics.jsonl", "{}\n")


def test_ensure_writable_creates_the_folder_and_refuses_a_file(tmp_path):
    assert ensure_writable(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the probe file is gone
    (tmp_path / "f").write_text("x")
    with pytest.raises(LenetlabError, match="f: is a file, not a folder"):
        ensure_writable(tmp_path / "f", "--out-dir")
