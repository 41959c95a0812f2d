"""The one CSV reader: BOMs, recognition by header, configurable columns, short errors, pixel tables
(Kaggle's Digit Recognizer) given as a folder or as files, and a .csv never read as JSON."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lenetlab.cli import main
from lenetlab.data import load
from lenetlab.data.csvtable import Columns, label_order, recognise
from lenetlab.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import write_digit_recognizer

PIXELS = ",".join(f"pixel{i}" for i in range(784))


def _leaves(root: Path, header=("image", "label"), test_header=("image",), bom=False, n=20) -> Path:
    """A classify-leaves folder: ``n`` 12x12 images of two colours, labels 'oak'/'elm'."""
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(n + 4):
        Image.new("RGB", (12, 12), (200, 30, 30) if i % 2 else (30, 30, 200)).save(root / "images" / f"{i}.png")
    for i in range(n):
        rows.append([f"images/{i}.png", "oak" if i % 2 else "elm", f"id{i}"])
    start = "\ufeff" if bom else ""
    full = list(header) + (["ref"] if len(header) == 2 else [])
    (root / "train.csv").write_text(
        start + ",".join(full) + "\n" + "".join(",".join(r[: len(full)]) + "\n" for r in rows), encoding="utf-8"
    )
    test = [[f"images/{i}.png", f"t{i}"] for i in range(n, n + 4)]
    (root / "test.csv").write_text(
        start + ",".join(test_header) + "\n" + "".join(",".join(r[: len(test_header)]) + "\n" for r in test),
        encoding="utf-8",
    )
    return root


def test_bom_is_accepted_in_image_tables(tmp_path):
    s = load(str(_leaves(tmp_path / "bom", bom=True)))
    assert (tmp_path / "bom" / "train.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    assert s.class_names == ["elm", "oak"] and len(s.train) + len(s.dev) == 20
    assert s.test.ids == [f"images/{i}.png" for i in range(20, 24)]
    assert recognise(tmp_path / "bom" / "train.csv").header[0] == "image"  # not '\ufeffimage'


def test_bom_is_accepted_in_pixel_tables(subset, tmp_path):
    folder = write_digit_recognizer(tmp_path / "dr", subset, 30, 10, bom=True)
    s = load(str(folder))
    assert (len(s.train) + len(s.dev), len(s.test)) == (30, 10)
    np.testing.assert_array_equal(s.test.x.numpy(), subset.test.x[:10].numpy())


def test_digit_recognizer_folder(digitrec, subset):
    s = load(str(digitrec))
    assert s.class_names == [str(i) for i in range(10)] and s.submission == ("ImageId", "Label")
    assert (len(s.train), len(s.dev), len(s.test)) == (270, 30, 100)
    assert s.test.y is None and s.test.ids == [str(i) for i in range(1, 101)]
    assert s.train.x.dtype == torch.uint8 and s.train.x.shape[1:] == (1, 28, 28)
    assert s.input_spec.size == 32 and s.input_spec.resize == "pad"  # digits: LeNet-5's 28 -> 32 padding
    # the rows are the subset's images, labels included
    pairs = {(bytes(x.numpy()), int(y)) for x, y in zip(subset.train.x[:300], subset.train.y[:300])}
    assert all((bytes(x.numpy()), int(y)) in pairs for x, y in zip(s.train.x, s.train.y))


def test_digit_recognizer_files_given_directly(digitrec):
    s = load(str(digitrec / "train.csv"))  # never parsed as NNDL JSON
    assert (len(s.train) + len(s.dev), len(s.test)) == (300, 100)
    t = load(str(digitrec / "test.csv"))  # an unlabelled table alone: a test set
    assert (len(t.train), len(t.test)) == (0, 100) and t.test.ids[:2] == ["1", "2"]


def test_data_command_on_a_folder_named_like_a_dataset(digitrec, monkeypatch, capsys):
    """`lenet data --dataset digitrec` in the folder above it: the name without a slash is a path."""
    link = digitrec.parent / "digitrec"
    link.symlink_to(digitrec)
    monkeypatch.chdir(digitrec.parent)
    assert main(["data", "--dataset", "digitrec"]) == 0
    out = capsys.readouterr().out
    assert "train 270 / dev 30 / test 100 (test unlabelled)" in out and "1x28x28" in out


def test_unrecognised_csv_is_one_short_line(tmp_path, capsys):
    folder = tmp_path / "odd"
    folder.mkdir()
    header = ",".join(["ImageId"] + [f"px{i}" for i in range(784)])  # 785 columns, none recognised
    (folder / "train.csv").write_text(header + "\n1," + ",".join(["0"] * 784) + "\n")
    assert main(["data", "--dataset", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 400, err
    assert "expected columns image,label (image files) or label,pixel0..pixel783" in err
    assert "found ImageId,px0,px1,px2,... (785 columns)" in err


def test_a_csv_is_never_parsed_as_json(tmp_path):
    bad = tmp_path / "data.csv"
    bad.write_text('[[1, 2], "not a table"]\n')
    with pytest.raises(DataError, match="data.csv: not a table lenetlab can read") as e:
        load(str(bad))
    assert "JSON" not in str(e.value)


def test_pixel_tables_of_other_numbering_and_bad_values(tmp_path):
    t = tmp_path / "fashion.csv"  # Kaggle's Fashion-MNIST numbers pixel1..pixel784
    t.write_text(
        "label,"
        + ",".join(f"pixel{i}" for i in range(1, 785))
        + "\n"
        + "".join(f"{k % 3}," + ",".join([str(k)] * 784) + "\n" for k in range(20))
    )
    s = load(str(t), val_size=2)
    assert s.class_names == ["0", "1", "2"] and s.train.x.shape[1:] == (1, 28, 28)
    t.write_text("label," + PIXELS + "\n3," + ",".join(["300"] * 784) + "\n")
    with pytest.raises(DataError, match=r"fashion.csv: line 2: pixel values must be integers in 0..255"):
        load(str(t))
    t.write_text("label," + PIXELS + "\n3," + ",".join(["x"] * 784) + "\n")
    with pytest.raises(DataError, match=r"fashion.csv: pixel values must be integers"):
        load(str(t))
    t.write_text("label," + ",".join(f"pixel{i}" for i in range(700)) + "\n")  # not a square image
    with pytest.raises(DataError, match="not a table lenetlab can read"):
        load(str(t))


def test_word_labels_in_a_pixel_table(tmp_path):
    t = tmp_path / "train.csv"
    t.write_text(
        "label,"
        + PIXELS
        + "\n"
        + "".join(f"{'seven' if k % 2 else 'one'}," + ",".join([str(k)] * 784) + "\n" for k in range(10))
    )
    s = load(str(t), val_size=0)
    assert s.class_names == ["one", "seven"] and s.train.y.tolist() == [k % 2 for k in range(10)]


def test_configurable_columns(tmp_path, capsys):
    root = _leaves(tmp_path / "cols", header=("file", "species"), test_header=("file", "ref"))
    with pytest.raises(DataError, match="expected columns image,label"):
        load(str(root))
    s = load(str(root), image_column="file", label_column="species", id_column="ref")
    assert s.class_names == ["elm", "oak"] and s.test.ids == ["t20", "t21", "t22", "t23"]
    assert s.submission == ("ref", "species")
    assert main(["data", "--dataset", str(root), "--image-column", "File", "--label-column", "species"]) == 0
    assert "elm, oak" in capsys.readouterr().out  # column names match ignoring case
    with pytest.raises(DataError, match="test.csv: no id column 'code'"):
        load(str(root), image_column="file", label_column="species", id_column="code")


def test_label_order_and_recognition(tmp_path):
    assert label_order(["10", "2", "1"]) == ["1", "2", "10"]
    assert label_order(["b", "10", "a"]) == ["10", "a", "b"]
    t = tmp_path / "t.csv"
    t.write_text("Label," + PIXELS + "\n")
    lay = recognise(t, Columns())
    assert lay.kind == "pixels" and lay.label == 0 and lay.side == 28 and lay.pixels[:2] == [1, 2]
    with pytest.raises(DataError, match="no label column 'digit'"):
        recognise(t, Columns(label="digit"), need_label=True)
