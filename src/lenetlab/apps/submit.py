"""``lenet submit``: d2l's Kaggle workflow (classify-leaves): train, predict ``test.csv``, write ``submission.csv``.

The folder holds ``train.csv`` (``image,label``), ``test.csv`` (``image``) and the images they
name. :func:`kaggle_submit` loads it (images resized once to the model's input size, a seeded
validation split carved from ``train.csv``), trains with the :class:`~lenetlab.train.Runner`
(best model kept on validation accuracy, the run directory as for ``lenet train``), predicts every
test image with the best checkpoint and writes ``image,label`` rows with the original label strings
in ``test.csv`` order, atomically (temporary file, then rename).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lenetlab.apps.train import run_with_plots
from lenetlab.data import load
from lenetlab.errors import DataError, LenetlabError, first_line
from lenetlab.fileio import atomic_path, ensure_writable
from lenetlab.inference.predictor import load_predictor
from lenetlab.models import model_info
from lenetlab.train import RunConfig, Runner

__all__ = ["SubmitResult", "kaggle_submit", "run_submit", "write_submission"]


@dataclass
class SubmitResult:
    """What ``lenet submit`` produced: the CSV, its row count, the run and its validation accuracy."""

    submission: str
    rows: int
    run_dir: str
    checkpoint: str
    dev_accuracy: float | None
    train_time: float
    label_counts: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return asdict(self)


def _test_names(folder: Path) -> list[str]:
    """The ``image`` column of ``folder/test.csv``, exactly as written (order kept)."""
    path = folder / "test.csv"
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "image" not in [c.strip() for c in reader.fieldnames]:
                raise DataError(f"{path}: needs a header with an 'image' column")
            key = next(c for c in reader.fieldnames if c.strip() == "image")
            return [(row.get(key) or "").strip() for row in reader]
    except FileNotFoundError:
        raise DataError(f"{path}: test.csv not found (a Kaggle folder has train.csv and test.csv)") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: not a readable CSV ({first_line(e, 120)})") from None


def write_submission(path: str | os.PathLike, images: list[str], labels: list[str]) -> Path:
    """Write ``image,label`` rows to ``path`` atomically (a crash never leaves half a file)."""
    if len(images) != len(labels):
        raise ValueError("images and labels differ in length")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image", "label"])
    w.writerows(zip(images, labels))
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8", newline="")
    return path


def kaggle_submit(data_dir: str | os.PathLike, *, out: str | os.PathLike = "submission.csv", model: str = "lenet5",
                  epochs: int = 10, progress: str = "auto", **config) -> SubmitResult:
    """Train ``model`` on a Kaggle CSV + image folder and write the test predictions to ``out``.

    ``config`` sets further :class:`~lenetlab.train.RunConfig` fields (``lr``, ``batch_size``,
    ``val_size``, ``seed``, ``device``, ``out_dir``, ``name``, ``augment``...). Images are loaded as
    ``uint8 [N, C, S, S]`` with ``S`` the model's input size. Returns a :class:`SubmitResult`.
    """
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    if not (folder / "train.csv").is_file():
        raise DataError(f"{folder}: no train.csv (the Kaggle layout: train.csv image,label; test.csv image)")
    names = _test_names(folder)
    if not names:
        raise DataError(f"{folder / 'test.csv'}: no rows to predict")
    size = int(model_info(model).input_size[-1])
    # image_size and the split live in the config, so `lenet eval` and `--resume` load the same data
    cfg = RunConfig.from_dict({"image_size": size, **config, "dataset": str(folder), "model": model, "epochs": epochs,
                               "progress": progress}, source="submit")
    # before minutes of training: both places must take files
    if Path(out).is_dir():
        raise LenetlabError(f"--out {out}: is a folder; give the submission's file name (submission.csv)")
    ensure_writable(Path(out).parent, "--out folder")
    ensure_writable(cfg.out_dir, "--out-dir")
    load_kwargs = {"image_size": cfg.image_size}
    if cfg.val_size is not None:
        load_kwargs["val_size"] = cfg.val_size
    splits = load(str(folder), **load_kwargs)
    if splits.test.y is not None or len(splits.test) != len(names):
        raise DataError(f"{folder / 'test.csv'}: expected {len(names)} unlabelled test images, "
                        f"the loader found {len(splits.test)}")
    if len(splits.dev) == 0:
        raise DataError(f"{folder}: the validation split is empty (train.csv too small or --val-size 0)")
    result = run_with_plots(Runner(cfg, splits=splits))
    predictor = load_predictor(result.best_path, device=cfg.device)
    probs = predictor.predict_proba(splits.test.x, cfg.eval_batch_size)
    labels = [predictor.class_names[i] for i in probs.argmax(1).tolist()]
    path = write_submission(out, names, labels)
    return SubmitResult(submission=str(path), rows=len(labels), run_dir=str(result.run_dir),
                        checkpoint=str(result.best_path), dev_accuracy=result.dev_accuracy,
                        train_time=round(float(result.train_time), 3), label_counts=dict(Counter(labels)))


def run_submit(data_dir, *, as_json: bool = False, stream=None, **kwargs) -> int:
    """``lenet submit``: run :func:`kaggle_submit` and print where the submission went; returns 0."""
    stream = stream or sys.stdout
    res = kaggle_submit(data_dir, **kwargs)
    if as_json:
        print(json.dumps(res.to_dict(), indent=2), file=stream)
        return 0
    acc = "n/a" if res.dev_accuracy is None else f"{100 * res.dev_accuracy:.2f}%"
    print(f"validation accuracy (best model): {acc}", file=stream)
    print(f"run directory:   {res.run_dir}", file=stream)
    print(f"submission:      {res.submission} ({res.rows} rows, {len(res.label_counts)} distinct labels)", file=stream)
    return 0
