"""NNDL mnist.json.gz reader: a generated file, its errors, and fuzzing with hypothesis."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lenetlab.cli import main
from lenetlab.data import load
from lenetlab.data.nndl import parse_nndl
from lenetlab.errors import DataError


def _nndl(sizes=(6, 3, 2), seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for n in sizes:
        x = (rng.integers(0, 256, (n, 784)) / 255.0).tolist()
        parts.append([x, (np.arange(n) % 10).tolist()])
    return parts


def _write(path, obj, gz=True):
    data = json.dumps(obj).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [True, False])
def test_load_generated(tmp_path, gz):
    obj = _nndl()
    p = _write(tmp_path / ("mnist.json.gz" if gz else "mnist.json"), obj, gz)
    s = load(str(p))
    assert (len(s.train), len(s.dev), len(s.test)) == (6, 3, 2)
    assert s.train.x.shape == (6, 1, 28, 28) and s.train.x.dtype.is_floating_point is False
    expect = np.rint(np.asarray(obj[1][0][1]) * 255).reshape(28, 28)
    np.testing.assert_array_equal(s.dev.x[1, 0].numpy(), expect)
    assert s.dev.y.tolist() == [0, 1, 2] and s.input_spec.size == 32


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda o: o[:2], r"expected a JSON list \[train, dev, test\]"),
        (lambda o: [o[0], [o[1][0]], o[2]], "the dev entry must be a pair"),
        (lambda o: [o[0], o[1], [o[2][0], o[2][1][:1]]], "test has 2 images but 1 labels"),
        (lambda o: [[[r[:700] for r in o[0][0]], o[0][1]], o[1], o[2]], "train images have 700 values, expected 784"),
        (lambda o: [[[[2.0] * 784] * 6, o[0][1]], o[1], o[2]], r"pixel values must lie in \[0, 1\]"),
        (lambda o: [o[0], [o[1][0], [0.5, 1, 2]], o[2]], "dev labels must be integers in 0..999"),
        (lambda o: [o[0], [o[1][0], ["a", 1, 2]], o[2]], "dev images must be equal-length lists"),
    ],
)
def test_malformed(tmp_path, mutate, message):
    p = _write(tmp_path / "bad.json.gz", mutate(_nndl()))
    with pytest.raises(DataError, match=message):
        load(str(p))


@pytest.mark.parametrize("scale", [255, 256])
def test_pixel_scale_round_trips(tmp_path, scale):
    """pixel/256 (deeplearning.net's mnist.pkl, e.g. 0.99609375 = 255/256) and pixel/255 both give bytes back."""
    pix = np.array([[0, 3, 18, 126, 175, 254, 255] + [0] * 777])
    obj = [[(pix / scale).tolist(), [5]], [[], []], [[], []]]
    s = load(str(_write(tmp_path / "m.json.gz", obj)))
    assert s.train.x.flatten()[:7].tolist() == [0, 3, 18, 126, 175, 254, 255]


def test_cli_bad_json(tmp_path, capsys):
    p = tmp_path / "mnist.json.gz"
    p.write_bytes(gzip.compress(b"[[1, 2], oops"))
    assert main(["data", "--dataset", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{p}: not valid JSON" in err


def test_cli_truncated_gzip(tmp_path, capsys):
    p = tmp_path / "mnist.json.gz"
    p.write_bytes(gzip.compress(json.dumps(_nndl()).encode())[:-30])
    assert main(["data", "--dataset", str(p)]) == 2
    assert "corrupt or truncated gzip data" in capsys.readouterr().err


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(-1, 2) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=30,
)


def _assert_parts(parts) -> None:
    """What a successful parse must return: train, dev, test as (uint8 [N, 28, 28], int64 [N]) pairs."""
    assert len(parts) == 3
    for x, y in parts:
        assert x.dtype == np.uint8 and x.shape == (len(y), 28, 28)
        assert y.dtype == np.int64 and y.ndim == 1 and ((y >= 0) & (y <= 999)).all()


def _assert_one_line_error(e: DataError) -> None:
    assert str(e).startswith("<bytes>: ") and "\n" not in str(e)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data):
    for blob in (data, gzip.compress(data)):
        try:
            parts = parse_nndl(blob)
        except DataError as e:
            _assert_one_line_error(e)
            continue
        _assert_parts(parts)  # random bytes that happen to be a valid file must parse into one


@settings(max_examples=150, deadline=None)
@given(_json_values)
def test_fuzz_random_json(obj):
    try:
        parts = parse_nndl(json.dumps(obj).encode())
    except DataError as e:
        _assert_one_line_error(e)
        return
    _assert_parts(parts)
    assert [len(y) for _, y in parts] == [len(pair[1]) for pair in obj]  # every label kept, none invented


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000))
def test_fuzz_truncations(cut):
    raw = gzip.compress(json.dumps(_nndl((2, 1, 1))).encode())
    text = gzip.decompress(raw)
    for blob in (raw[:cut], text[:cut]):
        try:
            parts = parse_nndl(blob)
        except DataError as e:
            _assert_one_line_error(e)
            continue
        _assert_parts(parts)
        assert [len(y) for _, y in parts] == [2, 1, 1]


_cell = st.none() | st.booleans() | st.integers(-2, 3) | st.floats(allow_nan=True) | st.text(max_size=1)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(0, 3),
    width=st.sampled_from([783, 784, 785]),
    cell=_cell,
    pos=st.integers(0, 783),
    labels=st.lists(st.integers(-1, 1001) | st.floats(-1, 12) | st.lists(st.integers(0, 9), max_size=2), max_size=4),
)
def test_fuzz_structured(n, width, cell, pos, labels):
    """Near-valid files: wrong widths, one odd pixel, odd labels; load or DataError, never anything else."""
    images = [[0.5] * width for _ in range(n)]
    if n and pos < width:
        images[0][pos] = cell
    obj = [[images, labels], [[], []], [[[0.0] * 784], [1]]]
    try:
        parts = parse_nndl(json.dumps(obj).encode())
    except DataError as e:
        _assert_one_line_error(e)
        return
    _assert_parts(parts)
    assert len(parts[0][0]) == len(parts[0][1]) == n and (n == 0 or width == 784)
