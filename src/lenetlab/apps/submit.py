"""``lenet submit``: a Kaggle submission for a folder or table, trained here or by runs you have.

d2l's Kaggle workflow for any dataset :func:`lenetlab.data.load` reads whose test split names its
images (``train.csv`` + ``test.csv`` + images, Kaggle's Digit Recognizer tables, class sub-folders).
Training: the automatic recipe (:mod:`lenetlab.train.recipe`) chooses from the data, explicit fields
override it, ``ensemble`` runs train with consecutive seeds. Predicting (``checkpoints``): the runs'
probabilities are averaged. Either way test-time augmentation is used when it scores better on the
validation split (``tta="auto"``), and the submission keeps the dataset's header and label strings,
in test order, written atomically.
"""

import csv
import io
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lenetlab.errors import CheckpointError, ConfigError, DataError, LenetlabError
from lenetlab.fileio import atomic_path, ensure_writable
from lenetlab.inference.committee import check_tta_mode, choose_tta, mean_probabilities
from lenetlab.inference.predictor import load_predictor
from lenetlab.inference.run import load_data
from lenetlab.plots.runplots import run_with_plots
from lenetlab.textfmt import Output, pct, quiet
from lenetlab.train import RunConfig, Runner
from lenetlab.train.recipe import apply_recipe, describe_notes
from lenetlab.train.setup import load_splits

__all__ = ["PREDICT_FIELDS", "SubmitResult", "kaggle_submit", "run_submit", "write_submission"]

#: Fields that still apply when predicting with trained runs (``checkpoints``): how to read the
#: test file and where to run; every other training field is refused there.
PREDICT_FIELDS = ("device", "num_threads", "eval_batch_size", "progress", "image_column", "label_column", "id_column")


@dataclass
class SubmitResult:
    """What ``lenet submit`` produced: the CSV, the runs it used, the validation accuracy of what was
    submitted (each run's, the ensemble's, with and without test-time augmentation), the training time
    and the recipe (``recipe_notes`` of the first run)."""

    submission: str
    rows: int
    header: list
    run_dir: str
    checkpoint: str
    dev_accuracy: float | None
    train_time: float
    run_dirs: list = field(default_factory=list)
    member_dev_accuracy: list = field(default_factory=list)
    ensemble_dev_accuracy: float | None = None
    tta: bool = False
    tta_dev_accuracy: dict = field(default_factory=dict)
    test_accuracy: float | None = None
    label_counts: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return asdict(self)


def write_submission(
    path: str | os.PathLike, images: list[str], labels: list[str], header: tuple[str, str] = ("image", "label")
) -> Path:
    """Write ``header`` then ``id,label`` rows to ``path`` atomically (a crash never leaves half a file)."""
    if len(images) != len(labels):
        raise ValueError("images and labels differ in length")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(header))
    w.writerows(zip(images, labels))
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8", newline="")
    return path


def _accuracy(probs: np.ndarray, y) -> float:
    return float((probs.argmax(1) == y.cpu().numpy()).mean())


def _folder(data_dir) -> Path:
    folder = Path(data_dir).expanduser()
    if not folder.exists():
        raise DataError(f"{folder}: no such folder")
    return folder


def _train_runs(cfg: RunConfig, splits, members: int, say) -> list:
    """Train ``members`` runs of ``cfg`` (seeds ``seed``, ``seed+1``, ...) on ``splits``."""
    results = []
    for i in range(members):
        run_cfg = (
            cfg
            if members == 1
            else cfg.replace(seed=cfg.seed + i, name=None if cfg.name is None else f"{cfg.name}-m{i + 1}")
        )
        if members > 1:
            say(f"ensemble member {i + 1}/{members} (seed {run_cfg.seed})")
        results.append(run_with_plots(Runner(run_cfg, splits=splits, say=say), say))
    return results


def _from_checkpoints(checkpoints: list, data_dir, config: dict, progress: str, ensemble: int | None):
    """The runs of ``checkpoints`` ready to predict: ``(cfg, splits, predictors, recipe)``, the splits
    rebuilt from the first run's data description (its dev split: the one the runs were chosen on)."""
    extra = sorted(k for k in config if k not in PREDICT_FIELDS)
    if extra or ensemble is not None:
        what = "--" + (extra[0].replace("_", "-") if extra else "ensemble")
        raise ConfigError(
            f"{what} does not apply with --checkpoint: the runs are trained already "
            f"(train again without --checkpoint to change it)"
        )
    predictors = [load_predictor(c, device=config.get("device", "auto")) for c in checkpoints]
    run_cfg = dict(predictors[0].config)
    # the test file's columns as told
    described = {
        **predictors[0].data,
        **{k: config[k] for k in PREDICT_FIELDS if k.endswith("_column") and config.get(k) is not None},
    }
    dataset = str(_folder(data_dir)) if data_dir is not None else described.get("dataset")
    if not dataset:
        raise CheckpointError(f"{checkpoints[0]}: the checkpoint does not name its dataset; pass --data-dir")
    cfg = RunConfig.from_dict({**config, "dataset": dataset, "progress": progress}, source="submit")
    splits = load_data(described, dataset)
    _check_test(splits)
    names = predictors[0].class_names
    if len(splits.train) and [str(c) for c in splits.class_names] != names:
        raise CheckpointError(
            f"{checkpoints[0]}: its classes ({', '.join(names[:4])}, ...) differ from "
            f"{splits.name}'s ({', '.join(map(str, splits.class_names[:4]))}, ...)"
        )
    return cfg, splits, predictors, dict(run_cfg.get("recipe_notes") or {})


def _train_for_submission(data_dir, config: dict, progress: str, ensemble: int | None, say):
    """Train with the automatic recipe on ``data_dir``: ``(cfg, splits, results, recipe)``."""
    if data_dir is None:
        raise ConfigError("lenet submit needs --data-dir FOLDER (to train) or --checkpoint RUN (to predict)")
    cfg, plan = apply_recipe(
        {**config, "dataset": str(_folder(data_dir)), "progress": progress}, source="submit", ensemble=ensemble is None
    )
    recipe = plan.notes()
    say(describe_notes(recipe))
    ensure_writable(cfg.out_dir, "--out-dir")
    splits = plan.splits if plan.splits is not None else load_splits(cfg)  # loaded once for --budget
    _check_test(splits)
    if len(splits.dev) == 0:
        raise DataError(f"{splits.source}: the validation split is empty (too few images, or --val-size 0)")
    results = _train_runs(cfg, splits, ensemble or plan.members, say)
    return cfg, splits, results, recipe


def kaggle_submit(
    data_dir: str | os.PathLike | None = None,
    *,
    checkpoints: list | None = None,
    out: str | os.PathLike = "submission.csv",
    tta: str = "auto",
    ensemble: int | None = None,
    progress: str = "auto",
    say=quiet,
    **config,
) -> SubmitResult:
    """Write a submission for the test split of ``data_dir`` to ``out`` (see the module doc).

    Without ``checkpoints`` it trains: ``config`` holds explicit :class:`~lenetlab.train.RunConfig`
    fields over the recipe; ``ensemble`` runs with consecutive seeds (default: the recipe's). With
    ``checkpoints`` it predicts with them, averaged (``data_dir`` defaults to the first run's dataset;
    only :data:`PREDICT_FIELDS` may be set). ``tta``: ``auto``, ``on`` or ``off``. ``say(text, err=False)``
    receives the recipe block and progress lines.
    """
    check_tta_mode(tta)  # before minutes of training
    # before minutes of training: the submission's place must take a file
    if Path(out).is_dir():
        raise LenetlabError(f"--out {out}: is a folder; give the submission's file name (submission.csv)")
    ensure_writable(Path(out).parent, "--out folder")
    if checkpoints:
        cfg, splits, predictors, recipe = _from_checkpoints(checkpoints, data_dir, config, progress, ensemble)
        results = []
    else:
        cfg, splits, results, recipe = _train_for_submission(data_dir, config, progress, ensemble, say)
        predictors = [load_predictor(r.best_path, device=cfg.device) for r in results]
    res = _submit(predictors, splits, tta, cfg.eval_batch_size, out)
    res.run_dirs = [str(r.run_dir) for r in results] or [str(c) for c in checkpoints]
    res.run_dir = res.run_dirs[0]
    res.checkpoint = ([str(r.best_path) for r in results] or [p.source for p in predictors])[0]
    if res.dev_accuracy is None and results:
        res.dev_accuracy = results[0].dev_accuracy
    res.train_time = round(sum(float(r.train_time) for r in results), 3)
    res.recipe = recipe
    return res


def _submit(predictors: list, splits, tta: str, batch_size: int, out) -> SubmitResult:
    """Predict the test split with ``predictors`` (averaged; test-time augmentation as ``tta`` decides on the
    dev split) and write the submission to ``out``; the result without the runs' part."""
    use_tta, tta_scores, member_probs = choose_tta(predictors, splits.dev, tta, batch_size)
    probs, _ = mean_probabilities(predictors, splits.test.x, batch_size, tta=use_tta)
    names = predictors[0].class_names
    labels = [names[i] for i in probs.argmax(1).tolist()]
    ids = splits.test.ids or [str(i) for i in range(1, len(labels) + 1)]
    path = write_submission(out, ids, labels, splits.submission)
    return SubmitResult(
        submission=str(path),
        rows=len(labels),
        header=list(splits.submission),
        run_dir="",
        checkpoint="",
        dev_accuracy=tta_scores.get("on" if use_tta else "off"),
        train_time=0.0,
        member_dev_accuracy=[_accuracy(p, splits.dev.y) for p in member_probs],
        ensemble_dev_accuracy=tta_scores.get("on" if use_tta else "off") if len(predictors) > 1 else None,
        tta=use_tta,
        tta_dev_accuracy=tta_scores,
        test_accuracy=None if splits.test.y is None else _accuracy(probs, splits.test.y),
        label_counts=dict(Counter(labels)),
    )


def _pct(fraction) -> str:
    """A fraction as a percentage with two decimals (``99.30%``); ``n/a`` for None."""
    return pct(None if fraction is None else 100 * fraction)


def _check_test(splits) -> None:
    if len(splits.test) == 0:
        raise DataError(
            f"{splits.source}: no test images to predict (a Kaggle folder has test.csv; a folder of "
            f"class sub-folders needs test/)"
        )


def run_submit(data_dir=None, **kwargs) -> Output:
    """``lenet submit``: :func:`kaggle_submit`, then where the submission went and how it scored on
    the validation split."""
    res = kaggle_submit(data_dir, **kwargs)
    lines = []
    if len(res.run_dirs) > 1:
        lines.append(
            f"validation accuracy of each model: {', '.join(_pct(a) for a in res.member_dev_accuracy)}; "
            f"their average: {_pct(res.ensemble_dev_accuracy)}"
        )
    if res.tta_dev_accuracy.get("on") is not None:
        lines.append(
            f"test-time augmentation (one-pixel shifts): validation {_pct(res.tta_dev_accuracy['off'])} "
            f"without, {_pct(res.tta_dev_accuracy['on'])} with: {'used' if res.tta else 'not used'}"
        )
    lines.append(f"validation accuracy (submitted): {_pct(res.dev_accuracy)}")
    if res.test_accuracy is not None:
        lines.append(f"test accuracy:   {_pct(res.test_accuracy)} (the test split is labelled)")
    lines.append(f"run directory:   {', '.join(res.run_dirs)}")
    if res.train_time:
        budget = res.recipe.get("budget_s")
        lines.append(f"training time:   {res.train_time:.1f} s" + (f" (budget {budget:g} s)" if budget else ""))
    lines.append(
        f"submission:      {res.submission} ({res.rows} rows, {','.join(res.header)}, "
        f"{len(res.label_counts)} distinct labels)"
    )
    return Output(res.to_dict(), "\n".join(lines))
