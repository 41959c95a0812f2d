"""Hostile dataset files reached through every path that reads them (`lenet data`, the automatic recipe's
inspection behind `lenet train --dataset` and `lenet submit --data-dir`, the API): one-line errors
naming the file, exit 2, no traceback. Every input is built here; nothing large is written."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import write_idx
from lenetlab.cli import main
from lenetlab.data import inspect, load
from lenetlab.data.images import MAX_PIXELS, ImageTooLargeError, open_image
from lenetlab.errors import DataError


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header says ``width`` x ``height``, with no pixel data (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


@pytest.fixture
def kaggle_folder(tmp_path) -> Path:
    """A tiny image-table folder (train.csv naming 20 PNGs in two classes, test.csv naming 4)."""
    root = tmp_path / "shapes"
    (root / "images").mkdir(parents=True)
    for i in range(24):
        Image.new("L", (16, 16), 40 * (i % 2)).save(root / "images" / f"{i}.png")
    (root / "train.csv").write_text("image,label\n" + "".join(f"images/{i}.png,{'ab'[i % 2]}\n" for i in range(20)))
    (root / "test.csv").write_text("image\n" + "".join(f"images/{i}.png\n" for i in range(20, 24)))
    return root


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


# ----------------------------------------------------------------------------- images
@pytest.mark.parametrize("side", [30000, 9500])  # Pillow's DecompressionBombError, then its warning
def test_a_decompression_bomb_stops_train_and_submit_at_the_inspection(kaggle_folder, tmp_path, capsys, side):
    _png_header_only(kaggle_folder / "images" / "3.png", side, side)
    needle = f"images/3.png: image of {side * side:,} pixels"
    assert main(["train", "--dataset", str(kaggle_folder), "--out-dir", str(tmp_path / "runs")]) == 2
    _one_line_error(capsys, needle, "larger than Pillow decodes safely")
    assert (
        main(
            [
                "submit",
                "--data-dir",
                str(kaggle_folder),
                "--out-dir",
                str(tmp_path / "runs"),
                "--out",
                str(tmp_path / "sub.csv"),
            ]
        )
        == 2
    )
    _one_line_error(capsys, needle)
    assert main(["data", "--dataset", str(kaggle_folder)]) == 2
    _one_line_error(capsys, needle)
    assert not (tmp_path / "sub.csv").exists()


def test_truncated_and_unidentified_images_are_one_line_errors(kaggle_folder, capsys):
    full = (kaggle_folder / "images" / "5.png").read_bytes()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(kaggle_folder / "images" / "5.png")
    data = (kaggle_folder / "images" / "5.png").read_bytes()
    (kaggle_folder / "images" / "5.png").write_bytes(data[: len(data) // 2])  # a valid header, half the pixels
    with pytest.raises(DataError, match=r"images/5.png: not a readable image") as e:
        load(str(kaggle_folder))
    assert "\n" not in str(e.value)
    (kaggle_folder / "images" / "5.png").write_bytes(b"GIF89a" + full[6:])  # claims GIF, holds PNG
    assert main(["data", "--dataset", str(kaggle_folder)]) == 2
    _one_line_error(capsys, "images/5.png: not a readable image")


def test_the_opener_has_one_limit_and_serving_passes_a_stricter_one(tmp_path):
    big = tmp_path / "big.png"
    _png_header_only(big, 10000, 9000)  # 90 MP: just over Pillow's warning threshold, which is the limit
    assert MAX_PIXELS == Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError, match="90,000,000 pixels"):
        open_image(big, decode=False)
    small = tmp_path / "small.png"
    Image.new("L", (300, 200)).save(small)
    assert open_image(small).size == (300, 200)
    with pytest.raises(ImageTooLargeError, match=r"60,000 pixels \(300x200\).*the limit here is 50,000 pixels"):
        open_image(small.read_bytes(), name="upload", max_pixels=50_000)
    with pytest.raises(DataError, match="upload: not a readable image"):
        open_image(small.read_bytes(), name="upload", formats=("JPEG",))


def test_only_the_opener_opens_images():
    src = Path(__file__).resolve().parents[2] / "src" / "lenetlab"
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py") if "Image.open(" in p.read_text())
    assert users == ["data/images.py"]


# ----------------------------------------------------------------------------- IDX folders
def test_a_gz_that_is_not_gzip_stops_train_at_the_inspection(idx_dir, tmp_path, capsys):
    (idx_dir / "train-images-idx3-ubyte.gz").write_bytes(b"this is not gzip data, nor IDX" * 10)
    assert main(["train", "--dataset", str(idx_dir), "--out-dir", str(tmp_path / "runs")]) == 2
    _one_line_error(capsys, "train-images-idx3-ubyte.gz: not an IDX file")
    (idx_dir / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + b"\x08\x00" + bytes(40))  # gzip magic, bad body
    assert main(["train", "--dataset", str(idx_dir), "--out-dir", str(tmp_path / "runs")]) == 2
    _one_line_error(capsys, "train-images-idx3-ubyte.gz: corrupt or truncated gzip data")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: corrupt or truncated gzip data"):
        inspect(str(idx_dir))


def test_an_idx_label_out_of_range_is_refused_whatever_the_path(idx_dir, tmp_path, capsys):
    labels = np.arange(20) % 10
    labels[7] = 200  # would have made a 201-class model
    write_idx(idx_dir / "t10k-labels-idx1-ubyte.gz", labels)
    needle = "t10k-labels-idx1-ubyte.gz: label 200 out of range for 10 classes"
    for argv in (
        ["train", "--dataset", str(idx_dir), "--out-dir", str(tmp_path / "runs")],
        ["data", "--dataset", str(idx_dir)],
    ):
        assert main(argv) == 2, argv
        _one_line_error(capsys, needle)
    for read in (inspect, load):
        with pytest.raises(DataError, match=needle):
            read(str(idx_dir))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_nndl_label_out_of_range_is_refused(tmp_path, capsys):
    import gzip
    import json

    p = tmp_path / "mnist.json.gz"
    p.write_bytes(gzip.compress(json.dumps([[[[0.5] * 784], [200]], [[], []], [[], []]]).encode()))
    assert main(["data", "--dataset", str(p)]) == 2
    _one_line_error(capsys, f"{p}: label 200 out of range for 10 classes")


def test_idx_folders_have_the_ten_digit_classes(idx_dir):
    write_idx(idx_dir / "t10k-labels-idx1-ubyte.gz", np.zeros(20, np.uint8))  # no 9 anywhere in test
    write_idx(idx_dir / "train-labels-idx1-ubyte.gz", np.arange(60) % 4)  # only 0..3 in train
    assert inspect(str(idx_dir)).n_classes == 10 and load(str(idx_dir)).class_names == [str(i) for i in range(10)]


# ----------------------------------------------------------------------------- pixel tables
def _pixel_table(path: Path, rows: int = 30) -> list[str]:
    header = "label," + ",".join(f"pixel{i}" for i in range(16))
    lines = [header] + [f"{i % 3}," + ",".join(str((i * 7 + j) % 256) for j in range(16)) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return lines


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda row: row + ",9", "line 6 has 18 values but the header names 17 columns"),
        (lambda row: row.rsplit(",", 1)[0], "line 6 has 16 values but the header names 17 columns"),
        (lambda row: row + ",0" * 2_000_000, "line 6 is longer than"),
    ],
)
def test_pixel_table_rows_must_match_the_header(tmp_path, capsys, change, needle):
    table = tmp_path / "digits.csv"
    lines = _pixel_table(table)
    lines[5] = change(lines[5])
    table.write_text("\n".join(lines) + "\n")
    for read in (load, inspect):
        with pytest.raises(DataError, match=needle) as e:
            read(str(table))
        assert str(e.value).startswith(f"{table}: ") and "\n" not in str(e.value)
    assert main(["data", "--dataset", str(table)]) == 2
    _one_line_error(capsys, f"{table}: {needle}")
    assert main(["train", "--dataset", str(table), "--out-dir", str(tmp_path / "runs")]) == 2
    _one_line_error(capsys, needle)


def test_a_well_formed_pixel_table_still_loads(tmp_path):
    table = tmp_path / "digits.csv"
    _pixel_table(table)
    s = load(str(table))
    assert (len(s.train), len(s.dev), s.train.x.shape[1:]) == (27, 3, (1, 4, 4))
    assert inspect(str(table)).n_labelled == 30
