"""Mirrors, checksums and downloads of the IDX datasets (MNIST, Fashion-MNIST) with pooch.

Each dataset lists its four files as :class:`Resource` (file name, md5 of the ``.gz`` as served by
the mirrors, md5 of the decompressed content, like torchvision's ``resources``) and its mirrors,
most reliable first. A file is accepted when EITHER md5 matches, so a locally re-compressed copy
(different ``.gz`` bytes, same content) passes and a corrupted one is refused.

Downloads go through :class:`pooch.HTTPDownloader` (with its tqdm progress bar) into a hidden
temporary file inside the cache folder; the file is verified and only then renamed into place,
so no partial, HTML or corrupt file is ever left in the cache. When every mirror fails the
:class:`DataError` says, on one line, which files to fetch by hand, from where, and into which folder.

Cache root: the ``data_dir`` argument (``--data-dir``), else ``$LENETLAB_DATA``, else
``~/.cache/lenetlab``; each dataset lives in its own sub-folder (``<root>/mnist``) unless the
given folder already holds the files itself (like ``../shared/data/mnist``). A root that
torchvision downloaded into is found too: ``ROOT/MNIST/raw`` and ``ROOT/FashionMNIST/raw``
(``torchvision.datasets.MNIST(root=ROOT, download=True)`` writes the same four files there).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pooch
import requests  # pooch's HTTP library: its exceptions name why a download failed

from lenetlab.data.idx import GZIP_MAGIC, decompress, read_raw
from lenetlab.errors import DataError, first_line
from lenetlab.fileio import atomic_path

ENV_VAR = "LENETLAB_DATA"


@dataclass(frozen=True)
class Resource:
    """One dataset file: its name on the mirrors and its known checksums (hex md5, or None)."""

    filename: str
    gz_md5: str | None
    content_md5: str | None


@dataclass(frozen=True)
class IdxDataset:
    """An IDX dataset: four resources (train images/labels, test images/labels) and its mirrors.

    ``torchvision``: the folder torchvision keeps it in under its root (``MNIST``, files in ``raw/``).
    """

    name: str
    resources: tuple[Resource, Resource, Resource, Resource]
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    torchvision: str | None = None


_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# Registry of the IDX datasets. Gz md5s: those published with the files (torchvision's
# `resources`, Zalando's README). MNIST content md5s: ../shared/data/mnist/README.md (verified
# against the real files). Fashion-MNIST content md5s are not published anywhere we could find,
# so a Fashion-MNIST file is verified by its .gz md5 (the mirrors serve the original .gz bytes);
# a re-compressed Fashion-MNIST copy still gets every structural IDX check, but --verify refuses it.
IDX_DATASETS: dict[str, IdxDataset] = {
    "mnist": IdxDataset(
        "mnist",
        (
            Resource(_MNIST_FILES[0], "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
            Resource(_MNIST_FILES[1], "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
            Resource(_MNIST_FILES[2], "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
            Resource(_MNIST_FILES[3], "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
        ),
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        tuple(str(i) for i in range(10)),
        "MNIST",
    ),
    "fashion-mnist": IdxDataset(
        "fashion-mnist",
        (
            Resource(_MNIST_FILES[0], "8d4fb7e6c68d591d4c3dfef9ec88bf0d", None),
            Resource(_MNIST_FILES[1], "25c81989df183df01b3e8a0aad5dffbe", None),
            Resource(_MNIST_FILES[2], "bef4ecab320f06d8554ea6380940ec79", None),
            Resource(_MNIST_FILES[3], "bb300cfdad3c16e7a12a480ee83cd310", None),
        ),
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        "FashionMNIST",
    ),
}


def cache_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root: ``data_dir`` if given, else ``$LENETLAB_DATA``, else ``~/.cache/lenetlab``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "lenetlab"


def find_file(folder: Path, filename: str) -> Path | None:
    """``folder/filename`` or its decompressed twin (without ``.gz``), whichever exists first."""
    for cand in (folder / filename, folder / filename.removesuffix(".gz")):
        if cand.is_file():
            return cand
    return None


def candidate_folders(ds: IdxDataset, data_dir=None) -> list[Path]:
    """The folders ``ds``'s files are looked for in, in order: the root, ``root/<name>`` and
    torchvision's ``root/<MNIST|FashionMNIST>/raw``."""
    root = cache_root(data_dir)
    out = [root, root / ds.name]
    if ds.torchvision:
        out.append(root / ds.torchvision / "raw")
    return out


def dataset_folder(ds: IdxDataset, data_dir=None) -> Path:
    """Where ``ds``'s files are (or will be downloaded): the first of :func:`candidate_folders` holding
    any of them, else ``root/name``."""
    for folder in candidate_folders(ds, data_dir):
        if any(find_file(folder, r.filename) for r in ds.resources):
            return folder
    return cache_root(data_dir) / ds.name


def md5_of(data: bytes) -> str:
    """Hex md5 of ``data``."""
    return hashlib.md5(data).hexdigest()


def check_checksum(path: Path | str, raw: bytes, res: Resource) -> None:
    """Accept ``raw`` (the bytes of ``path``) if its own md5 or its decompressed md5 is known-good.

    Raises DataError naming the file otherwise (also for bad gzip data or an HTML page).
    """
    if res.gz_md5 and raw.startswith(GZIP_MAGIC) and md5_of(raw) == res.gz_md5:
        return
    if raw[:1] == b"<" or raw[:15].lower().startswith(b"<!doctype"):
        raise DataError(f"{path}: is an HTML page, not a dataset file")
    content = decompress(raw, path)
    got = md5_of(content)
    if res.content_md5 is None:
        raise DataError(
            f"{path}: .gz md5 {md5_of(raw)} differs from the published {res.gz_md5} and no "
            f"content md5 is known for it (fetch the original file from the mirror)"
        )
    if got != res.content_md5:
        raise DataError(f"{path}: checksum mismatch (content md5 {got}, expected {res.content_md5})")


def verify_file(path: Path, res: Resource) -> None:
    """Read ``path`` and check it against ``res``'s checksums; DataError naming the file if bad."""
    check_checksum(path, read_raw(path), res)


def _download_one(url: str, dest: Path, res: Resource, progressbar: bool, timeout: float) -> None:
    """Download ``url`` to a temp file beside ``dest``, verify it, then rename it into place."""
    with atomic_path(dest, suffix=".part") as tmp:  # the suffix _remove_stale_parts looks for
        pooch.HTTPDownloader(progressbar=progressbar, timeout=timeout)(url, str(tmp), None)
        check_checksum(url, tmp.read_bytes(), res)


def _reason(e: Exception) -> str:
    """A short reason for a failed download (the full requests message runs to several clauses)."""
    if isinstance(e, requests.HTTPError) and e.response is not None:
        return f"HTTP {e.response.status_code}"
    if isinstance(e, requests.exceptions.SSLError):
        return "SSL error"
    if isinstance(e, requests.Timeout):
        return "timed out"
    if isinstance(e, requests.ConnectionError):
        return "cannot connect"
    text = first_line(e)
    return text.split(": ", 1)[-1] if isinstance(e, DataError) else text


def _remove_stale_parts(folder: Path, age_s: float = 3600.0) -> None:
    """Delete temp files a killed download left behind (old enough not to be another live download)."""
    for p in folder.glob(".*.part"):
        try:
            if time.time() - p.stat().st_mtime > age_s:
                p.unlink()
        except OSError:
            pass


def download(
    ds: IdxDataset, folder: Path, *, mirrors=None, progressbar: bool = True, timeout: float = 30.0
) -> list[Path]:
    """Fetch ``ds``'s missing files into ``folder``, trying each mirror in order for each file.

    ``mirrors`` overrides ``ds.mirrors`` (base URLs; tests point it at a local server). Returns
    the four local paths. When a file fails on every mirror (HTTP error, SSL error, outage, bad
    checksum, HTML page) the remaining files are not tried and a one-line DataError says which
    files to fetch by hand, from where, and into which folder.
    """
    mirrors = tuple(mirrors) if mirrors else ds.mirrors
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{folder}: cannot create the data folder ({e.strerror or e})") from None
    _remove_stale_parts(folder)
    paths: list[Path] = []
    for k, res in enumerate(ds.resources):
        have = find_file(folder, res.filename)
        if have is not None:
            paths.append(have)
            continue
        dest, errors = folder / res.filename, []
        for base in mirrors:
            url = base.rstrip("/") + "/" + res.filename
            try:
                _download_one(url, dest, res, progressbar, timeout)
                break
            except Exception as e:  # any network/SSL/HTTP/checksum failure: try the next mirror
                errors.append(f"{url}: {_reason(e)}")
        if not dest.is_file():
            missing = [r.filename for r in ds.resources[k:] if find_file(folder, r.filename) is None]
            if created and not any(folder.iterdir()):
                folder.rmdir()
            raise DataError(
                f"{ds.name}: could not download {', '.join(missing)} ({'; '.join(errors) or 'no mirrors'}); "
                f"fetch them by hand from {' or '.join(mirrors)} and put them in {folder}"
            )
        paths.append(dest)
    return paths
