"""`lenet eval` refuses data it cannot score meaningfully: other class names, an unlabelled split."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from lenetlab.cli import main


def _digits(root, subset, n: int = 3):
    """Write ``n`` subset test images of each class as ``root/<class>/<i>.png``; returns the classes written."""
    for c in range(10):
        (root / str(c)).mkdir(parents=True, exist_ok=True)
        idx = (subset.test.y == c).nonzero().flatten()[:n].tolist()
        for i in idx:
            Image.fromarray(subset.test.x[i, 0].numpy()).save(root / str(c) / f"{i}.png")


def test_other_class_names_are_refused(tmp_path, subset, digit_ckpt, capsys):
    rng = np.random.default_rng(0)
    for name in "abcdefghij":  # ten classes, like the digit model, but other ones
        (tmp_path / "letters" / "train" / name).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(
            tmp_path / "letters" / "train" / name / "0.png"
        )
    capsys.readouterr()
    assert main(["eval", str(digit_ckpt), "--dataset", str(tmp_path / "letters"), "--split", "dev"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "differ" in err and "a, b, c, d" in err


def test_same_classes_from_a_folder_are_scored(tmp_path, subset, digit_ckpt, capsys):
    _digits(tmp_path / "digits" / "train", subset, n=2)
    _digits(tmp_path / "digits" / "test", subset, n=3)
    capsys.readouterr()
    assert main(["eval", str(digit_ckpt), "--dataset", str(tmp_path / "digits"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 30 and out["accuracy"] > 0.5


def test_unlabelled_test_split_says_use_dev(tmp_path, subset, digit_ckpt, capsys):
    root = tmp_path / "kaggle"
    _digits(root / "images", subset, n=2)
    files = sorted((root / "images").rglob("*.png"))
    rows = [f"{p.relative_to(root).as_posix()},{p.parent.name}" for p in files]
    (root / "train.csv").write_text("image,label\n" + "\n".join(rows) + "\n")
    (root / "test.csv").write_text("image\n" + "\n".join(r.split(",")[0] for r in rows[:5]) + "\n")
    capsys.readouterr()
    assert main(["eval", str(digit_ckpt), "--dataset", str(root), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no labels" in err and "--split dev" in err
    assert main(["eval", str(digit_ckpt), "--dataset", str(root), "--split", "dev"]) == 0
    assert main(["eval", str(digit_ckpt), "--dataset", str(root)]) == 0  # without --split: dev, and it says so
    assert "on dev (the test split is unlabelled)" in capsys.readouterr().out
