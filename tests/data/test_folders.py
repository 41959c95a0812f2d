"""Image folders: the Kaggle classify-leaves layout and class-per-sub-folder layouts, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lenetlab.cli import main
from lenetlab.data import load
from lenetlab.errors import DataError

LEAVES = ["quercus_alba", "acer_rubrum", "abies_concolor"]  # deliberately not in sorted order


def _img(path, color, size=(20, 20), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


@pytest.fixture
def leaves(tmp_path):
    """A tiny classify-leaves folder: 30 labelled RGB images, 4 test images."""
    root = tmp_path / "classify-leaves"
    rows = ["image,label"]
    for i in range(30):
        label = LEAVES[i % 3]
        _img(root / "images" / f"{i}.jpg", (10 * (i % 3), 100, 200))
        rows.append(f"images/{i}.jpg,{label}")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    for i in range(30, 34):
        _img(root / "images" / f"{i}.jpg", (0, 0, 0))
    (root / "test.csv").write_text("image\n" + "".join(f"images/{i}.jpg\n" for i in range(30, 34)))
    return root


def test_leaves_layout(leaves):
    s = load(str(leaves), seed=0)
    assert s.class_names == sorted(LEAVES)
    assert (len(s.train), len(s.dev), len(s.test)) == (27, 3, 4)
    assert s.train.x.shape[1:] == (3, 20, 20) and s.train.x.dtype == torch.uint8
    assert s.test.y is None and s.test.ids == [f"images/{i}.jpg" for i in range(30, 34)]
    assert s.dev.ids and all(i.startswith("images/") for i in s.dev.ids)
    # label map: image i carries LEAVES[i % 3]
    for img_id, y in zip(s.train.ids, s.train.y.tolist()):
        assert s.class_names[y] == LEAVES[int(img_id.split("/")[1].split(".")[0]) % 3]
    spec = s.input_spec
    assert spec.channels == 3 and spec.size == 20 and len(spec.mean) == 3
    assert abs(spec.mean[1] - 100 / 255) < 0.02  # dataset statistics by default for folders
    assert load(str(leaves), seed=0).dev.ids == s.dev.ids != load(str(leaves), seed=1).dev.ids


def test_leaves_resize_and_gray(leaves):
    s = load(str(leaves), image_size=8, channels=1, val_size=5)
    assert s.train.x.shape[1:] == (1, 8, 8) and (len(s.train), len(s.dev)) == (25, 5)
    assert s.input_spec.channels == 1 and s.input_spec.size == 8


def test_cli_leaves_summary(leaves, capsys):
    assert main(["data", "--dataset", str(leaves)]) == 0
    out = capsys.readouterr().out
    assert "train 27 / dev 3 / test 4 (test unlabelled)" in out and "abies_concolor" in out


def test_csv_names_missing_image(leaves, capsys):
    (leaves / "images" / "7.jpg").unlink()
    assert main(["data", "--dataset", str(leaves)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.csv: line 9 names image 'images/7.jpg', which does not exist" in err


def test_unreadable_image(leaves, capsys):
    (leaves / "images" / "3.jpg").write_bytes(b"this is not a jpeg")
    assert main(["data", "--dataset", str(leaves)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "images/3.jpg: not a readable image" in err


def test_csv_missing_column(leaves):
    (leaves / "train.csv").write_text("file,label\nimages/0.jpg,x\n")
    with pytest.raises(
        DataError,
        match=r"train.csv: not a table lenetlab can read: expected columns image,label "
        r".* found file,label",
    ):
        load(str(leaves))


def test_class_folders_train_test(tmp_path):
    root = tmp_path / "digits"
    for split, n in (("train", 10), ("test", 3)):
        for c in ("cat", "dog"):
            for i in range(n):
                _img(root / split / c / f"{i}.png", 255 if c == "dog" else 0, (12, 12), "L")
    s = load(str(root), val_size=4)
    assert s.class_names == ["cat", "dog"] and (len(s.train), len(s.dev), len(s.test)) == (16, 4, 6)
    assert s.train.x.shape[1:] == (1, 12, 12)  # grayscale kept
    assert (s.test.x.flatten(1).float().mean(1) > 127).long().tolist() == s.test.y.tolist()


def test_class_folders_single_root_and_val_dir(tmp_path):
    root = tmp_path / "flat"
    for c in ("a", "b", "c"):
        for i in range(10):
            _img(root / c / f"{i}.png", (i, i, i), (9, 9))
    s = load(str(root))
    assert (len(s.train), len(s.dev), len(s.test)) == (24, 3, 3) and s.class_names == ["a", "b", "c"]
    ids = s.train.ids + s.dev.ids + s.test.ids
    assert len(set(ids)) == 30
    root2 = tmp_path / "tv"
    for split in ("train", "val"):
        for c in ("a", "b"):
            _img(root2 / split / c / "0.png", (1, 2, 3), (9, 9))
    s2 = load(str(root2))
    assert (len(s2.train), len(s2.dev), len(s2.test)) == (2, 2, 0)


def test_class_folder_unknown_test_class(tmp_path):
    root = tmp_path / "d"
    _img(root / "train" / "a" / "0.png", 1)
    _img(root / "test" / "zebra" / "0.png", 1)
    with pytest.raises(DataError, match="class folder 'zebra' is not among the training classes"):
        load(str(root), val_size=0)


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["data", "--dataset", str(tmp_path / "empty")]) == 2
    assert "no dataset found" in capsys.readouterr().err


def test_images_are_decoded_exactly(tmp_path):
    root = tmp_path / "exact"
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    (root / "train" / "x").mkdir(parents=True)
    Image.fromarray(arr).save(root / "train" / "x" / "0.png")
    s = load(str(root), val_size=0)
    np.testing.assert_array_equal(s.train.x[0].permute(1, 2, 0).numpy(), arr)


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header says ``width`` x ``height`` (grayscale), with no pixel data: what a hostile
    30000x30000 image looks like to the header reader, without writing 900 MB."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_decompression_bomb_image_is_one_line_naming_file_and_size(leaves, capsys):
    _png_header_only(leaves / "images" / "5.jpg", 30000, 30000)
    assert main(["data", "--dataset", str(leaves)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "images/5.jpg: image of 900,000,000 pixels is larger than Pillow decodes" in err


@pytest.mark.parametrize("name", ["../../elsewhere.png", "images/../../x.png", "/etc/hostname"])
def test_csv_image_paths_outside_the_folder_are_refused(leaves, tmp_path, capsys, name):
    _img(tmp_path / "elsewhere.png", (1, 2, 3))
    rows = (leaves / "train.csv").read_text().splitlines()
    rows[4] = f"{name},acer_rubrum"
    (leaves / "train.csv").write_text("\n".join(rows) + "\n")
    assert main(["data", "--dataset", str(leaves)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"train.csv: line 5 names image {name!r}, outside the dataset folder" in err


def test_csv_paths_that_stay_inside_are_fine(leaves):
    rows = (leaves / "train.csv").read_text().splitlines()
    rows[1] = "images/../images/0.jpg," + rows[1].split(",")[1]
    (leaves / "train.csv").write_text("\n".join(rows) + "\n")
    assert len(load(str(leaves)).train) == 27
