"""Mirrors, checksums (a file passes when its ``.gz`` or its content md5 matches), the cache and verified
downloads (pooch) of the IDX datasets MNIST and Fashion-MNIST."""

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pooch
import requests  # pooch's HTTP library: its exceptions name why a download failed

from lenetlab.data.idx import GZIP_MAGIC, IDX_CLASSES, decompress, read_raw
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
    """An IDX dataset: four resources (train images/labels, test images/labels), its mirrors (most reliable
    first), class names, and the folder torchvision keeps it in under its root (files in ``raw/``)."""

    name: str
    resources: tuple[Resource, Resource, Resource, Resource]
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    torchvision: str | None = None


_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# Gz md5s: those published with the files (torchvision's `resources`, Zalando's README). MNIST content
# md5s: ../shared/data/mnist/README.md (verified against the real files). Fashion-MNIST's are published
# nowhere we could find, so --verify accepts only its original .gz bytes.
IDX_DATASETS: dict[str, IdxDataset] = {
    "mnist": IdxDataset(
        "mnist",
        (
            Resource(_FILES[0], "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
            Resource(_FILES[1], "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
            Resource(_FILES[2], "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
            Resource(_FILES[3], "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
        ),
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        tuple(IDX_CLASSES),
        "MNIST",
    ),
    "fashion-mnist": IdxDataset(
        "fashion-mnist",
        (
            Resource(_FILES[0], "8d4fb7e6c68d591d4c3dfef9ec88bf0d", None),
            Resource(_FILES[1], "25c81989df183df01b3e8a0aad5dffbe", None),
            Resource(_FILES[2], "bef4ecab320f06d8554ea6380940ec79", None),
            Resource(_FILES[3], "bb300cfdad3c16e7a12a480ee83cd310", None),
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
    return Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "lenetlab").expanduser()


def find_file(folder: Path, filename: str) -> Path | None:
    """``folder/filename`` or its decompressed twin (without ``.gz``), whichever exists first."""
    return next((p for p in (folder / filename, folder / filename.removesuffix(".gz")) if p.is_file()), None)


def candidate_folders(ds: IdxDataset, data_dir=None) -> list[Path]:
    """Where ``ds``'s files are looked for, in order: the root, ``root/<name>``, torchvision's ``root/<tv>/raw``."""
    root = cache_root(data_dir)
    return [root, root / ds.name] + ([root / ds.torchvision / "raw"] if ds.torchvision else [])


def check_checksum(path: Path | str, raw: bytes, res: Resource) -> None:
    """Accept ``raw`` (the bytes of ``path``) if its md5 or its decompressed md5 is known-good, else a DataError."""
    if res.gz_md5 and raw.startswith(GZIP_MAGIC) and hashlib.md5(raw).hexdigest() == res.gz_md5:
        return
    if raw[:1] == b"<" or raw[:15].lower().startswith(b"<!doctype"):
        raise DataError(f"{path}: is an HTML page, not a dataset file")
    got = hashlib.md5(decompress(raw, path)).hexdigest()
    if res.content_md5 is None:
        raise DataError(
            f"{path}: .gz md5 {hashlib.md5(raw).hexdigest()} differs from the published {res.gz_md5} and no "
            f"content md5 is known for it (fetch the original file from the mirror)"
        )
    if got != res.content_md5:
        raise DataError(f"{path}: checksum mismatch (content md5 {got}, expected {res.content_md5})")


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
    return first_line(e).split(": ", 1)[-1] if isinstance(e, DataError) else first_line(e)


def _remove_stale_parts(folder: Path, age_s: float = 3600.0) -> None:
    """Delete temp files a killed download left behind (old enough not to be another live download)."""
    for p in folder.glob(".*.part"):
        with contextlib.suppress(OSError):
            if time.time() - p.stat().st_mtime > age_s:
                p.unlink()


def download(
    ds: IdxDataset, folder: Path, *, mirrors=None, progressbar: bool = True, timeout: float = 30.0
) -> list[Path]:
    """The four local paths of ``ds`` in ``folder``, missing files fetched from each mirror in turn (``mirrors``
    overrides ``ds.mirrors``); a file failing on every mirror is a DataError saying how to fetch it by hand."""
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
        for url in (base.rstrip("/") + "/" + res.filename for base in mirrors):
            try:
                with atomic_path(dest, suffix=".part") as tmp:  # a .part file, verified, then renamed
                    pooch.HTTPDownloader(progressbar=progressbar, timeout=timeout)(url, str(tmp), None)
                    check_checksum(url, tmp.read_bytes(), res)
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


def locate(
    ds: IdxDataset, data_dir=None, *, download_missing=False, verify=False, mirrors=None, progressbar=True
) -> list[Path]:
    """The four local files of ``ds`` found in :func:`candidate_folders` (downloaded if ``download_missing``,
    checked if ``verify``); a missing file is a DataError saying where it looked and how to get it."""

    folders = candidate_folders(ds, data_dir)  # the first holding any of ds's files, else root/name
    folder = next((f for f in folders if any(find_file(f, r.filename) for r in ds.resources)), folders[1])
    found = [find_file(folder, r.filename) for r in ds.resources]
    if not all(found) and download_missing:
        found = download(ds, folder, mirrors=mirrors, progressbar=progressbar)
    if not all(found):
        missing = next(r.filename for r, f in zip(ds.resources, found) if f is None)
        looked = ", ".join(
            f"{p}" + (" (torchvision's layout)" if i == 2 else "") for i, p in enumerate(folders) if p != folder
        )
        raise DataError(
            f"{folder / missing}: file not found (also looked in {looked}); run with --download, "
            f"or fetch it from {(tuple(mirrors) if mirrors else ds.mirrors)[0]} into {folder}"
        )
    if verify:
        for path, res in zip(found, ds.resources):
            check_checksum(path, read_raw(path), res)

    return found
