"""The benchmark scripts' dataset builders and scorers (benchmarks/folder_tasks.py,
benchmarks/make_digit_recognizer.py): what they write is a dataset lenetlab reads, and the scores
they print are right."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from helpers import benchmark_script
from lenetlab.data import load

folder_tasks = benchmark_script("folder_tasks")
make_digit_recognizer = benchmark_script("make_digit_recognizer")


def _write(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.mark.parametrize("task", ["mnist-words", "shapes", "glyphs"])
def test_each_task_is_a_dataset_lenet_reads_with_its_truth(task, tmp_path):
    build = {
        "mnist-words": lambda r: folder_tasks.make_mnist_words(r, 60, 20, mnist_dir=None),
        "shapes": lambda r: folder_tasks.make_shapes(r, 80),
        "glyphs": lambda r: folder_tasks.make_glyphs(r, 60, 20),
    }[task]
    if task == "glyphs" and not folder_tasks.installed_fonts():
        pytest.skip("no TrueType fonts installed to draw glyphs with")
    truth = build(tmp_path / task)
    splits = load(str(tmp_path / task), val_size=10) if task != "shapes" else load(str(tmp_path / task))
    assert len(splits.train) > 0 and len(splits.test) > 0
    assert set(truth.values()) <= {str(c) for c in splits.class_names}
    assert len(truth) == len(splits.test) or task == "shapes"  # shapes: the loader carves its own test tenth


def test_folder_task_score_counts_right_answers_by_id(tmp_path):
    sub = _write(tmp_path / "s.csv", [["image", "label"], ["a.png", "cat"], ["b.png", "dog"], ["c.png", "cat"]])
    acc, n = folder_tasks.score(sub, {"a.png": "cat", "b.png": "cat", "c.png": "cat"})
    assert (acc, n) == (pytest.approx(2 / 3), 3)


def test_digit_recognizer_folder_round_trip_and_score(mnist_dir, tmp_path):
    info = make_digit_recognizer.build(str(mnist_dir), tmp_path / "dr", 50, 30)
    assert (info["train"], info["test"]) == (50, 30)
    splits = load(str(tmp_path / "dr"), val_size=5)
    assert len(splits.train) + len(splits.dev) == 50 and len(splits.test) == 30 and splits.test.y is None
    solution = list(csv.reader((tmp_path / "dr" / "solution.csv").read_text().splitlines()))
    assert solution[0] == ["ImageId", "Label"] and [r[0] for r in solution[1:]] == [str(i) for i in range(1, 31)]
    perfect = _write(tmp_path / "perfect.csv", solution)
    assert make_digit_recognizer.score(tmp_path / "dr", perfect) == (1.0, 30)
    wrong = _write(tmp_path / "wrong.csv", [solution[0]] + [[i, str((int(lab) + 1) % 10)] for i, lab in solution[1:]])
    assert make_digit_recognizer.score(tmp_path / "dr", wrong) == (0.0, 30)
