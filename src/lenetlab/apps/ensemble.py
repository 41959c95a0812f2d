"""``lenet ensemble``: average the softmax probabilities of several trained models.

Each checkpoint keeps its own :class:`InputSpec` (input size, padding or resizing, normalisation,
channels), so models trained with different recipes can be combined. The ensemble's prediction is
the argmax of the mean probability vector.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from lenetlab.apps.evaluate import RUN_DATA_FIELDS
from lenetlab.data import load
from lenetlab.device import select_device
from lenetlab.errors import CheckpointError, DataError, LenetlabError
from lenetlab.inference.predictor import load_predictor

__all__ = ["EnsembleResult", "ensemble_evaluate", "mean_probabilities", "run_ensemble"]


@dataclass
class EnsembleResult:
    """Accuracy of each member and of the ensemble on one labelled split.

    ``members``: one dict per checkpoint (``checkpoint``, ``model``, ``accuracy``, ``nll``);
    ``accuracy``/``nll``: the ensemble's (mean negative log-likelihood of the averaged probabilities).
    """

    dataset: str
    split: str
    n: int
    members: list = field(default_factory=list)
    accuracy: float = 0.0
    nll: float = 0.0

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return asdict(self)


def _dataset_of(config: dict) -> tuple[str | None, str | None, dict]:
    """Dataset name, data dir and the loader options a run used (so ``dev`` is the run's dev split)."""
    opts = {k: config[k] for k in RUN_DATA_FIELDS if config.get(k) is not None}
    return config.get("dataset"), config.get("data_dir"), opts


def mean_probabilities(predictors: list, x: torch.Tensor, batch_size: int = 1000,
                       tta: bool = False) -> tuple[np.ndarray, list]:
    """The ensemble's averaged probabilities ``float64 [N, K]`` on ``uint8 [N, C, H, W]`` images, and each
    member's own ``[N, K]`` (``tta``: each averaged over shifted views, see ``Predictor.predict_proba``).
    Members must share their class names (a one-line CheckpointError if not)."""
    if not predictors:
        raise LenetlabError("an ensemble needs at least one model")
    for p in predictors[1:]:
        if p.class_names != predictors[0].class_names:
            raise CheckpointError(f"{p.source}: its class names differ from {predictors[0].source}'s; "
                                  "cannot ensemble them")
    members = [p.predict_proba(x, batch_size, tta=tta) for p in predictors]
    return sum(members) / len(members), members


def ensemble_evaluate(checkpoints: list, dataset: str | None = None, data_dir: str | None = None,
                      device: str | torch.device = "cpu", split: str = "test", batch_size: int = 1000,
                      splits=None) -> EnsembleResult:
    """Evaluate each checkpoint and the average of their probabilities on ``split`` of ``dataset``.

    ``dataset``/``data_dir`` default to the first checkpoint's training config; ``splits`` (a
    :class:`Splits`) skips loading. All checkpoints must share the same class names.
    """
    if not checkpoints:
        raise LenetlabError("ensemble needs at least one checkpoint")
    predictors = [load_predictor(c, device=str(device)) for c in checkpoints]
    names = predictors[0].class_names
    if splits is None:
        ds, dd, opts = _dataset_of(predictors[0].config)
        ds = ds or predictors[0].dataset
        if dataset and dataset != ds:
            opts = {}
        dataset = dataset or ds
        if not dataset:
            raise LenetlabError(f"{checkpoints[0]}: no dataset recorded in the checkpoint; pass --dataset")
        splits = load(dataset, data_dir=data_dir if data_dir is not None else dd, **opts)
    if split not in ("test", "dev"):
        raise LenetlabError(f"--split must be test or dev (got {split!r})")
    part = getattr(splits, split)
    if part.y is None:
        raise DataError(f"{splits.name}: the {split} split has no labels; cannot measure accuracy")
    if len(part) == 0:
        raise DataError(f"{splits.name}: the {split} split is empty")
    if names and [str(c) for c in splits.class_names] != names:
        raise CheckpointError(f"{checkpoints[0]}: its class names {names[:5]}... do not match dataset "
                              f"{splits.name}'s {list(splits.class_names)[:5]}...")
    y = part.y.cpu().numpy()
    mean, probs = mean_probabilities(predictors, part.x, batch_size)
    members = []
    for path, pred, pr in zip(checkpoints, predictors, probs):
        if pr.shape[1] <= int(y.max()):
            raise CheckpointError(f"{path}: model has {pr.shape[1]} outputs but the labels go up to {int(y.max())}")
        members.append({"checkpoint": str(path), "model": pred.name, **_scores(pr, y)})
    return EnsembleResult(dataset=splits.name, split=split, n=len(part), members=members, **_scores(mean, y))


def _scores(probs: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and mean negative log-likelihood of probabilities ``[N, K]`` against labels ``[N]``."""
    p_true = probs[np.arange(len(y)), y]
    return {"accuracy": float((probs.argmax(1) == y).mean()), "nll": float(-np.log(np.clip(p_true, 1e-12, None)).mean())}


def run_ensemble(checkpoints: list, *, dataset=None, data_dir=None, device: str = "auto", split: str = "test",
                 as_json: bool = False, out=None) -> int:
    """``lenet ensemble``: print each member's and the ensemble's accuracy and error; returns 0."""
    out = out or sys.stdout
    res = ensemble_evaluate([os.fspath(c) for c in checkpoints], dataset=dataset, data_dir=data_dir,
                            device=select_device(device), split=split)
    if as_json:
        print(json.dumps(res.to_dict(), indent=2), file=out)
        return 0
    print(f"{res.dataset} {res.split} split, {res.n} examples", file=out)
    rows = [(m["checkpoint"], m["model"], m["accuracy"], m["nll"]) for m in res.members]
    rows.append(("ensemble (mean probability)", f"{len(res.members)} models", res.accuracy, res.nll))
    width = max(len(r[0]) for r in rows)
    mw = max(len(r[1]) for r in rows)
    for name, model, acc, nll in rows:
        print(f"  {name:<{width}}  {model:<{mw}}  accuracy {100 * acc:6.2f}%  error {100 * (1 - acc):5.2f}%  "
              f"nll {nll:.4f}", file=out)
    return 0
