"""IDX reader: round trips (gz and raw), every malformed-input error, and fuzzing with hypothesis."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import write_idx
from lenetlab.cli import main
from lenetlab.data import load
from lenetlab.data.idx import (
    decompress,
    parse_idx,
    read_idx,
    read_images_labels,
)
from lenetlab.errors import DataError


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_raw_and_gz(tmp_path, suffix):
    a = np.random.default_rng(0).integers(0, 256, (7, 28, 28)).astype(np.uint8)
    p = write_idx(tmp_path / f"x-idx3-ubyte{suffix}", a)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == bool(suffix)
    np.testing.assert_array_equal(read_idx(p), a)


def test_labels_and_images_pair(tmp_path):
    x = write_idx(tmp_path / "x.gz", np.zeros((5, 28, 28)))
    y = write_idx(tmp_path / "y", np.arange(5))
    xs, ys = read_images_labels(x, y)
    assert xs.shape == (5, 28, 28) and ys.tolist() == [0, 1, 2, 3, 4]


def test_wrong_magic(tmp_path):
    p = tmp_path / "bad-idx3-ubyte"
    p.write_bytes(b"\x01\x02\x08\x03" + bytes(100))
    with pytest.raises(DataError, match=r"bad-idx3-ubyte: not an IDX file \(wrong magic number 0x01020803\)"):
        read_idx(p)


def test_truncated_data_and_header(tmp_path):
    good = tmp_path / "g"
    write_idx(good, np.zeros((4, 28, 28)))
    raw = good.read_bytes()
    (tmp_path / "t").write_bytes(raw[:-10])
    with pytest.raises(DataError, match=r"t: truncated IDX data"):
        read_idx(tmp_path / "t")
    (tmp_path / "h").write_bytes(raw[:9])
    with pytest.raises(DataError, match=r"h: truncated IDX header"):
        read_idx(tmp_path / "h")


def test_truncated_gzip(tmp_path):
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(1000))[:-20])
    with pytest.raises(DataError, match=r"x.gz: corrupt or truncated gzip data"):
        read_idx(p)


def test_trailing_bytes(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x02" + bytes(5))
    with pytest.raises(DataError, match="unexpected trailing bytes"):
        read_idx(p)


def test_count_mismatch(tmp_path):
    x = write_idx(tmp_path / "x.gz", np.zeros((5, 28, 28)))
    y = write_idx(tmp_path / "y.gz", np.arange(4))
    with pytest.raises(DataError, match=r"y.gz: 4 labels but x.gz holds 5 images"):
        read_images_labels(x, y)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope: file not found"):
        read_idx(tmp_path / "nope")


def test_raw_folder_loads(make_idx, tmp_path):
    d = make_idx(tmp_path / "raw", gz=False)
    s = load("mnist", d)
    assert (len(s.train), len(s.dev), len(s.test)) == (54, 6, 20)
    assert s.source == str(d.resolve())


# ------------------------------------------------------------------- CLI-level errors
def _cli_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_cli_wrong_magic(idx_dir, capsys):
    (idx_dir / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x12\x34\x08\x03" + bytes(64)))
    err = _cli_error(capsys, ["data", "--dataset", "mnist", "--data-dir", str(idx_dir)])
    assert "t10k-images-idx3-ubyte.gz: not an IDX file (wrong magic number" in err


def test_cli_truncated(idx_dir, capsys):
    p = idx_dir / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes())[:-100]))
    err = _cli_error(capsys, ["data", "--dataset", "mnist", "--data-dir", str(idx_dir)])
    assert "train-images-idx3-ubyte.gz: truncated IDX data" in err


def test_cli_count_mismatch(idx_dir, capsys):
    write_idx(idx_dir / "train-labels-idx1-ubyte.gz", np.arange(59) % 10)
    err = _cli_error(capsys, ["data", "--dataset", "mnist", "--data-dir", str(idx_dir)])
    assert "train-labels-idx1-ubyte.gz: 59 labels but train-images-idx3-ubyte.gz holds 60 images" in err


def test_cli_missing_file(idx_dir, capsys):
    (idx_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    err = _cli_error(capsys, ["data", "--dataset", "mnist", "--data-dir", str(idx_dir)])
    assert "t10k-labels-idx1-ubyte.gz: file not found" in err and "--download" in err


def test_cli_label_out_of_range(idx_dir, capsys):
    write_idx(idx_dir / "t10k-labels-idx1-ubyte.gz", np.full(20, 12))
    err = _cli_error(capsys, ["data", "--dataset", "mnist", "--data-dir", str(idx_dir)])
    assert "label 12 out of range for 10 classes" in err


# ------------------------------------------------------------------- property-based
def _header(dims) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data):
    for blob in (data, gzip.compress(data), b"\x1f\x8b" + data):
        try:
            raw = decompress(blob)
            a = parse_idx(raw)
        except DataError as e:
            assert "\n" not in str(e) and str(e).startswith("<bytes>: ")
            continue
        # a blob that parses is a whole IDX file: header dimensions, then exactly their product of items
        dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=raw[3], offset=4))
        assert a.shape == dims and len(raw) == 4 + 4 * len(dims) + a.nbytes


@settings(max_examples=150, deadline=None)
@given(
    dims=st.lists(st.integers(0, 6), min_size=1, max_size=4),
    cut=st.integers(0, 400),
    extra=st.binary(max_size=8),
    gz=st.booleans(),
)
def test_fuzz_truncations(tmp_path_factory, dims, cut, extra, gz):
    body = bytes(int(np.prod(dims)))
    data = (_header(dims) + body + extra)[:cut] if cut < 400 else _header(dims) + body + extra
    path = tmp_path_factory.mktemp("fz") / ("f.gz" if gz else "f")
    path.write_bytes(
        gzip.compress(data)[: max(cut, 1)] if gz and cut % 3 == 0 else (gzip.compress(data) if gz else data)
    )
    try:
        a = read_idx(path)
    except DataError:
        return
    assert a.shape == tuple(dims) and a.dtype == np.uint8


def _bomb(path, declared_shape, inflated_bytes: int) -> int:
    """A gzip file of an IDX header for ``declared_shape`` followed by ``inflated_bytes`` zeros, written as a
    stream (a 200 MB bomb is 0.2 MB on disk). Returns its size on disk."""
    import struct

    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(b"\x00\x00\x08" + bytes([len(declared_shape)]) + b"".join(struct.pack(">I", d) for d in declared_shape))
        chunk = bytes(1 << 20)
        for _ in range(inflated_bytes >> 20):
            f.write(chunk)
    return path.stat().st_size


def test_gzip_bomb_stops_at_the_size_the_idx_header_declares(tmp_path):
    import tracemalloc

    p = tmp_path / "train-images-idx3-ubyte.gz"
    disk = _bomb(p, (10, 28, 28), 200 << 20)
    assert disk < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as e:
            read_idx(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(e.value).startswith(
        f"{p}: gzip data inflates beyond the 7,856 bytes its IDX header declares for shape (10, 28, 28)"
    )
    assert peak < 16 << 20  # stopped after about a megabyte, not after 200 MB


def test_idx_header_declaring_more_than_the_cap_is_refused(tmp_path):
    p = tmp_path / "x.gz"
    _bomb(p, (2**31, 28, 28), 0)
    with pytest.raises(
        DataError, match=r"x.gz: IDX header declares shape \(2147483648, 28, 28\) .* more than the 1.0 GB"
    ):
        read_idx(p)


def test_generic_gzip_is_capped(tmp_path):
    raw = gzip.compress(bytes(5000))
    assert decompress(raw, "n.json.gz", limit=5000) == bytes(5000)
    with pytest.raises(DataError, match=r"n.json.gz: gzip data inflates to more than 4.9 KB"):
        decompress(raw, "n.json.gz", limit=4999)


def test_cli_refuses_a_bomb_given_as_mnist(idx_dir, capsys):
    _bomb(idx_dir / "train-images-idx3-ubyte.gz", (60, 28, 28), 64 << 20)
    assert main(["data", "--dataset", str(idx_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train-images-idx3-ubyte.gz: gzip data inflates beyond the 47,056 bytes" in err
