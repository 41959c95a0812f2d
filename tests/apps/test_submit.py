"""`lenet submit`: a typical tutorial's Kaggle workflow end to end on a small generated image folder."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from lenetlab.apps.submit import kaggle_submit, write_submission
from lenetlab.cli import main
from lenetlab.errors import ConfigError

# label strings as Kaggle gives them (spaces, hyphens, underscores), kept verbatim in the submission
CLASSES = ("red_circle", "green square", "blue-triangle")


def _draw(cls: str, rng: np.random.Generator) -> Image.Image:
    bg = tuple(int(v) for v in rng.integers(180, 256, 3))
    im = Image.new("RGB", (32, 32), bg)
    d = ImageDraw.Draw(im)
    r = int(rng.integers(7, 12))
    cx, cy = (int(v) for v in rng.integers(r + 1, 32 - r - 1, 2))
    jitter = lambda c: tuple(int(np.clip(v + rng.integers(-30, 30), 0, 255)) for v in c)  # noqa: E731
    if cls == "red_circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=jitter((220, 30, 30)))
    elif cls == "green square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=jitter((30, 180, 40)))
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=jitter((30, 40, 220)))
    return im


@pytest.fixture()
def kaggle_folder(tmp_path):
    """train.csv (45 labelled images), test.csv (12, shuffled classes) and images/ like classify-leaves."""
    rng = np.random.default_rng(0)
    root = tmp_path / "classify-shapes"
    (root / "images").mkdir(parents=True)
    train, test, truth = [], [], {}
    k = 0
    for i in range(45):
        cls = CLASSES[i % 3]
        name = f"images/{k}.png"
        _draw(cls, rng).save(root / name)
        train.append((name, cls))
        k += 1
    order = rng.permutation(12)
    for j in order:
        cls = CLASSES[j % 3]
        name = f"images/{k}.png"
        _draw(cls, rng).save(root / name)
        test.append(name)
        truth[name] = cls
        k += 1
    with open(root / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "label"])
        w.writerows(train)
    with open(root / "test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image"])
        w.writerows([[t] for t in test])
    return root, test, truth


@pytest.mark.slow
def test_submit_end_to_end(kaggle_folder, tmp_path, capsys):
    root, test_names, truth = kaggle_folder
    out = tmp_path / "out" / "submission.csv"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(
            [
                "submit",
                "--data-dir",
                str(root),
                "--epochs",
                "25",
                "--batch-size",
                "16",
                "--lr",
                "0.005",
                "--val-size",
                "9",
                "--num-threads",
                "1",
                "--out",
                str(out),
                "--out-dir",
                str(tmp_path / "runs"),
                "--name",
                "shapes",
                "--device",
                "cpu",
                "--progress",
                "none",
                "--json",
            ]
        )
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 12 and summary["submission"] == str(out)
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image", "label"]
    assert [r[0] for r in rows[1:]] == test_names  # test.csv order, names verbatim
    assert {r[1] for r in rows[1:]} <= set(CLASSES)  # original label strings, not indices
    correct = sum(truth[name] == label for name, label in rows[1:])
    assert correct >= 10, rows  # coloured shapes are easy: at least 10 of 12
    run = tmp_path / "runs" / "shapes"
    assert (run / "best.pt").is_file() and (run / "metrics.jsonl").is_file()
    # the reported validation accuracy is the submitted predictions' (with or without TTA): k of the 9 images
    assert summary["dev_accuracy"] == summary["tta_dev_accuracy"]["on" if summary["tta"] else "off"]
    assert (
        summary["dev_accuracy"] * 9 == pytest.approx(round(summary["dev_accuracy"] * 9))
        and summary["dev_accuracy"] > 0.5
    )
    assert not list(out.parent.glob(".*"))  # no temporary file left


def test_missing_pieces_are_one_line_errors(kaggle_folder, tmp_path, capsys):
    root, _, _ = kaggle_folder
    assert main(["submit", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (root / "test.csv").unlink()
    assert main(["submit", "--data-dir", str(root), "--out-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no test images to predict (a Kaggle folder has test.csv" in err and err.count("\n") == 1
    (root / "test.csv").write_text("name\nimages/0.png\n")
    assert main(["submit", "--data-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert "test.csv: not a table lenetlab can read: expected columns image,label" in err and "found name" in err
    (root / "test.csv").write_text("image\nimages/missing.png\n")
    assert main(["submit", "--data-dir", str(root), "--out-dir", str(tmp_path / "r")]) == 2
    assert "missing.png" in capsys.readouterr().err


def test_write_submission_is_atomic_and_quotes(tmp_path):
    p = write_submission(tmp_path / "s.csv", ["a,b.png", "c.png"], ["x y", 'q"z'])
    with open(p, newline="") as f:
        assert list(csv.reader(f)) == [["image", "label"], ["a,b.png", "x y"], ["c.png", 'q"z']]
    assert [q.name for q in tmp_path.iterdir()] == ["s.csv"]


def test_eval_sees_the_data_submit_trained_on(kaggle_folder, tmp_path, capsys):
    """Images smaller than the model input are resized once at load by submit; `lenet eval` must load
    them the same way (not pad them) and use the same validation split, whatever the --seed."""
    root, _, _ = kaggle_folder
    for p in (root / "images").glob("*.png"):
        Image.open(p).resize((24, 24)).save(p)  # 24 -> 32 would be padded by default
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "submit",
                "--data-dir",
                str(root),
                "--epochs",
                "2",
                "--batch-size",
                "16",
                "--val-size",
                "9",
                "--seed",
                "3",
                "--num-threads",
                "1",
                "--out",
                str(tmp_path / "s.csv"),
                "--out-dir",
                str(runs),
                "--name",
                "small",
                "--device",
                "cpu",
                "--progress",
                "none",
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    dev_row = [
        r
        for r in map(json.loads, (runs / "small" / "metrics.jsonl").read_text().splitlines())
        if r["kind"] == "dev" and r["best"]
    ][-1]
    assert main(["eval", str(runs / "small"), "--split", "dev", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 9 and out["accuracy"] == dev_row["accuracy"]
    assert abs(out["loss"] - dev_row["loss"]) < 1e-5


@pytest.mark.parametrize("which", ["--out", "--out-dir", "--out is a folder"])
def test_unwritable_destinations_are_refused_before_training(
    kaggle_folder, tmp_path, readonly_dir, capsys, which, monkeypatch
):
    """Checked up front: no run is trained only to find the submission cannot be written."""
    from lenetlab.apps import submit

    root, _, _ = kaggle_folder
    monkeypatch.setattr(submit, "run_with_plots", lambda *a, **k: pytest.fail("trained before checking"))
    out, out_dir = tmp_path / "submission.csv", tmp_path / "runs"
    if which == "--out":
        out = readonly_dir / "submission.csv"
    elif which == "--out-dir":
        out_dir = readonly_dir / "runs"
    else:
        out.mkdir()
    assert main(["submit", "--data-dir", str(root), "--out", str(out), "--out-dir", str(out_dir), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    needle = {
        "--out": f"--out folder {readonly_dir}: cannot write in this folder",
        "--out-dir": f"--out-dir {readonly_dir / 'runs'}: cannot write in this folder",
        "--out is a folder": f"--out {out}: is a folder",
    }[which]
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1, err


# ----------------------------------------------------------------------------- the automatic recipe, Kaggle tables
FAST = ["--epochs", "1", "--num-threads", "1", "--device", "cpu", "--progress", "none", "--no-plots"]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_digit_recognizer_submission_as_kaggle_wants_it(digitrec, tmp_path, capsys):
    out = tmp_path / "submission.csv"
    assert (
        main(
            [
                "submit",
                "--data-dir",
                str(digitrec),
                "--out",
                str(out),
                "--out-dir",
                str(tmp_path / "runs"),
                "--name",
                "dr",
                "--epochs",
                "3",
                *FAST[2:],
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    # the recipe block comes first, then the run; explicit flags are marked as given
    assert text.index("recipe auto for digit-recognizer: 300 labelled images") < text.index("submission:")
    assert "lenet5-modern" in text and "(given)" in text and "no flips" in text
    rows = _rows(out)
    assert rows[0] == ["ImageId", "Label"] and [r[0] for r in rows[1:]] == [str(i) for i in range(1, 101)]
    truth = {r[0]: r[1] for r in _rows(digitrec / "solution.csv")[1:]}
    assert sum(truth[i] == lab for i, lab in rows[1:]) >= 60  # three epochs on 270 digits: well above chance
    saved = json.loads((tmp_path / "runs" / "dr" / "config.json").read_text())
    assert saved["recipe"] == "auto" and saved["model"] == "lenet5-modern" and saved["epochs"] == 3
    assert saved["recipe_notes"]["choices"]["epochs"]["given"] is True
    assert saved["recipe_notes"]["facts"]["n_labelled"] == 300


def test_submit_from_trained_runs_without_retraining(digitrec, tmp_path, capsys):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        assert (
            main(
                [
                    "train",
                    "--dataset",
                    str(digitrec),
                    "--out-dir",
                    str(runs),
                    "--name",
                    f"r{seed}",
                    "--seed",
                    str(seed),
                    *FAST,
                ]
            )
            == 0
        )
    text = capsys.readouterr().out
    assert "recipe auto for digit-recognizer" in text  # lenet train on a table uses the same default
    out = tmp_path / "ens.csv"
    assert (
        main(
            ["submit", "--checkpoint", str(runs / "r0"), str(runs / "r1"), "--out", str(out), "--tta", "off", "--json"]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res["train_time"] == 0 and res["run_dirs"] == [str(runs / "r0"), str(runs / "r1")]
    assert len(res["member_dev_accuracy"]) == 2 and res["ensemble_dev_accuracy"] == res["tta_dev_accuracy"]["off"]
    assert res["dev_accuracy"] == res["ensemble_dev_accuracy"]  # --tta off: the averaged probabilities' accuracy
    # the submission is the argmax of the averaged probabilities, with the label strings
    from lenetlab.data import load
    from lenetlab.inference.committee import mean_probabilities
    from lenetlab.inference.predictor import load_predictor

    preds = [load_predictor(runs / r, device="cpu") for r in ("r0", "r1")]
    probs, _ = mean_probabilities(preds, load(str(digitrec)).test.x)
    assert [r[1] for r in _rows(out)[1:]] == [preds[0].class_names[i] for i in probs.argmax(1)]
    # training flags do not apply to trained runs; predicting flags do
    assert main(["submit", "--checkpoint", str(runs / "r0"), "--epochs", "3", "--out", str(out)]) == 2
    assert "--epochs does not apply with --checkpoint" in capsys.readouterr().err
    assert (
        main(
            [
                "submit",
                "--checkpoint",
                str(runs / "r0"),
                "--device",
                "cpu",
                "--tta",
                "on",
                "--out",
                str(out),
                "--data-dir",
                str(digitrec),
            ]
        )
        == 0
    )
    assert "with: used" in capsys.readouterr().out


def test_eval_on_a_kaggle_table_scores_the_dev_split(digitrec, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "--dataset", str(digitrec / "train.csv"), "--out-dir", str(runs), "--name", "e", *FAST]) == 0
    capsys.readouterr()
    assert main(["eval", str(runs / "e")]) == 0
    out = capsys.readouterr().out
    assert "on dev (the test split is unlabelled)" in out
    assert main(["eval", str(runs / "e"), "--split", "test"]) == 2
    assert "the test split has no labels" in capsys.readouterr().err


def test_ensemble_of_seeds_and_tta_choice_are_reported(kaggle_folder, tmp_path, capsys):
    root, names, _ = kaggle_folder
    out = tmp_path / "s.csv"
    assert (
        main(
            [
                "submit",
                "--data-dir",
                str(root),
                "--ensemble",
                "2",
                "--out",
                str(out),
                "--out-dir",
                str(tmp_path / "runs"),
                "--name",
                "ens",
                "--val-size",
                "9",
                *FAST,
                "--json",
            ]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert [p.split("/")[-1] for p in res["run_dirs"]] == ["ens-m1", "ens-m2"]
    assert len(res["member_dev_accuracy"]) == 2 and set(res["tta_dev_accuracy"]) == {"off", "on"}
    assert res["dev_accuracy"] == res["tta_dev_accuracy"]["on" if res["tta"] else "off"]
    assert [r[0] for r in _rows(out)[1:]] == names


def test_submit_needs_a_folder_or_runs(capsys):
    assert main(["submit"]) == 2
    assert "needs --data-dir FOLDER (to train) or --checkpoint RUN" in capsys.readouterr().err


def test_a_bad_tta_mode_is_refused_before_training(kaggle_folder, tmp_path):
    with pytest.raises(ConfigError, match="--tta must be one of off, on, auto"):
        kaggle_submit(kaggle_folder, tta="maybe", out=tmp_path / "submission.csv")
    assert not (tmp_path / "submission.csv").exists()
