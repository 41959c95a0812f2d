"""Downloads against a local HTTP server: mirror fallback, checksum refusal, a clean cache, the manual hint."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import pytest

from lenetlab.cli import main
from lenetlab.data import load
from lenetlab.data.download import (
    IdxDataset,
    Resource,
    cache_root,
    check_checksum,
    download,
)
from lenetlab.errors import DataError

NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


@pytest.fixture
def served(http_root, make_idx, tmp_path):
    """A generated dataset published under /good/, plus /corrupt/ and /recompressed/ copies of it."""
    root, base = http_root
    good = make_idx(root / "good", n_train=30, n_test=10)
    (root / "corrupt").mkdir()
    (root / "recompressed").mkdir()
    res = []
    for n in NAMES:
        raw = (good / n).read_bytes()
        content = gzip.decompress(raw)
        res.append(Resource(n, _md5(raw), _md5(content)))
        bad = bytearray(content)
        bad[-1] ^= 0xFF  # same length, valid gzip, wrong content
        (root / "corrupt" / n).write_bytes(gzip.compress(bytes(bad)))
        (root / "recompressed" / n).write_bytes(gzip.compress(content, compresslevel=1, mtime=12345))
    ds = IdxDataset("toy", tuple(res), (f"{base}/good/",), tuple(str(i) for i in range(10)))
    return ds, base


def _cache_files(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_fallback_over_bad_mirrors(served, tmp_path):
    ds, base = served
    mirrors = [
        "http://127.0.0.1:1/",
        f"{base}/forbidden/",
        f"{base}/missing/",
        f"{base}/html/",
        f"{base}/corrupt/",
        f"{base}/good/",
    ]
    folder = tmp_path / "cache" / "toy"
    paths = download(ds, folder, mirrors=mirrors, progressbar=False, timeout=5)
    assert [p.name for p in paths] == list(NAMES)
    assert _cache_files(folder) == sorted(NAMES)  # no .part, HTML or corrupt leftovers
    for p, r in zip(paths, ds.resources):
        check_checksum(p, p.read_bytes(), r)


def test_all_mirrors_fail_one_line_manual_hint(served, tmp_path):
    ds, base = served
    folder = tmp_path / "cache" / "toy"
    mirrors = [f"{base}/missing/", f"{base}/html/", f"{base}/corrupt/"]
    with pytest.raises(DataError) as e:
        download(ds, folder, mirrors=mirrors, progressbar=False, timeout=5)
    msg = str(e.value)
    assert "\n" not in msg
    assert all(n in msg for n in NAMES)
    assert f"fetch them by hand from {base}/missing/ or {base}/html/ or {base}/corrupt/" in msg
    assert f"put them in {folder}" in msg
    assert _cache_files(folder) == []


@pytest.mark.parametrize("kind, why", [("corrupt", "checksum mismatch"), ("html", "HTML page"), ("missing", "404")])
def test_each_bad_mirror_is_refused(served, tmp_path, kind, why):
    ds, base = served
    folder = tmp_path / "c"
    with pytest.raises(DataError, match=why):
        download(ds, folder, mirrors=[f"{base}/{kind}/"], progressbar=False, timeout=5)
    assert _cache_files(folder) == []


def test_recompressed_copy_is_accepted(served, tmp_path):
    ds, base = served
    paths = download(ds, tmp_path / "c", mirrors=[f"{base}/recompressed/"], progressbar=False, timeout=5)
    assert len(paths) == 4 and all(_md5(p.read_bytes()) != r.gz_md5 for p, r in zip(paths, ds.resources))


def test_stale_part_files_are_removed(served, tmp_path):
    import os

    ds, base = served
    folder = tmp_path / "c"
    folder.mkdir()
    stale, live = folder / ".train-images-idx3-ubyte.gz.abc.part", folder / ".t10k-labels-idx1-ubyte.gz.x.part"
    stale.write_bytes(b"partial")
    live.write_bytes(b"partial")
    os.utime(stale, (0, 0))  # a download killed long ago; `live` may belong to a running one
    download(ds, folder, mirrors=[f"{base}/good/"], progressbar=False)
    assert not stale.exists() and live.exists()


def test_present_files_need_no_network(served, tmp_path):
    ds, base = served
    folder = tmp_path / "c"
    download(ds, folder, mirrors=[f"{base}/good/"], progressbar=False)
    again = download(ds, folder, mirrors=["http://127.0.0.1:1/"], progressbar=False, timeout=1)
    assert [p.name for p in again] == list(NAMES)


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("LENETLAB_DATA", str(tmp_path / "env"))
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    assert cache_root() == tmp_path / "env"
    monkeypatch.delenv("LENETLAB_DATA")
    assert cache_root().parts[-2:] == (".cache", "lenetlab")


@pytest.mark.slow
def test_load_mnist_downloads_into_cache(http_root, mnist_dir, tmp_path, monkeypatch):
    """The real MNIST files (re-compressed locally: accepted by content md5) served over HTTP."""
    root, base = http_root
    for n in NAMES:
        shutil.copy(mnist_dir / n, root / n)
    monkeypatch.setenv("LENETLAB_DATA", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="--download"):
        load("mnist")
    s = load("mnist", download=True, mirrors=[f"{base}/missing/", f"{base}/"], progressbar=False)
    assert (len(s.train), len(s.dev), len(s.test)) == (55000, 5000, 10000)
    assert _cache_files(tmp_path / "cache") == sorted(["mnist", *NAMES])
    assert s.source == str((tmp_path / "cache" / "mnist").resolve())


def test_cli_download_failure_is_one_line(http_root, tmp_path, capsys):
    _, base = http_root
    argv = [
        "data",
        "--dataset",
        "mnist",
        "--data-dir",
        str(tmp_path / "d"),
        "--download",
        "--mirror",
        f"{base}/missing/",
        "--mirror",
        f"{base}/html/",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.rstrip("\n").rsplit("\n", 1)[-1]  # above it: the progress bar of the HTML page
    assert err.startswith("error: mnist: could not download") and "Traceback" not in err
    assert "HTTP 404" in err and "HTML page" in err and "fetch them by hand from" in err
    assert f"put them in {tmp_path / 'd' / 'mnist'}" in err
    assert not (tmp_path / "d" / "mnist").exists()


def test_progress_bar(served, tmp_path, capfd):
    ds, base = served
    download(ds, tmp_path / "c", mirrors=[f"{base}/good/"], progressbar=True)
    assert "B/s" in capfd.readouterr().err  # pooch's tqdm bar


#: The gz md5s published with MNIST (torchvision's ``resources`` list in ``torchvision/datasets/mnist.py``).
PUBLISHED_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def test_mnist_gz_md5s_are_the_published_ones():
    from lenetlab.data.download import IDX_DATASETS

    assert {r.filename: r.gz_md5 for r in IDX_DATASETS["mnist"].resources} == PUBLISHED_MNIST_MD5


def test_the_real_mnist_files_pass_verification(mnist_dir):
    """The shared copies were re-compressed (other .gz bytes): accepted by their content md5."""
    from lenetlab.data.download import IDX_DATASETS

    for res in IDX_DATASETS["mnist"].resources:
        path = mnist_dir / res.filename
        check_checksum(path, path.read_bytes(), res)


def test_torchvision_layout_is_found(make_idx, tmp_path, capsys):
    """`torchvision.datasets.MNIST(root=ROOT, download=True)` leaves the files in ROOT/MNIST/raw."""
    make_idx(tmp_path / "tv" / "MNIST" / "raw", n_train=30, n_test=10)
    s = load("mnist", tmp_path / "tv", val_size=5)
    assert (len(s.train), len(s.dev), len(s.test)) == (25, 5, 10)
    assert s.source.endswith("MNIST/raw")
    assert main(["data", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "tv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'tv'}/FashionMNIST/raw (torchvision's layout)" in err
