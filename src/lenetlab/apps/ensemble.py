"""``lenet ensemble``: average the softmax probabilities of several trained models.

``--select`` first chooses a committee among them on the dev split, so the test split stays out of
the choice: greedy forward selection, or all the candidates when cross-validation on the dev split
says the greedy choice does not carry over to unseen examples (:func:`choose_committee`);
``--select greedy`` or ``--select all`` forces one rule. ``--tta`` averages each model's probabilities
over the image and four one-pixel shifts of it (``on``), or does so when that scores better on the dev
split (``auto``, :func:`choose_tta`).

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
from lenetlab.errors import CheckpointError, ConfigError, DataError, LenetlabError
from lenetlab.inference.predictor import load_predictor

__all__ = ["TTA_MODES", "EnsembleResult", "check_tta_mode", "choose_committee", "choose_tta", "ensemble_evaluate",
           "ensemble_select", "mean_probabilities", "run_ensemble", "select_members"]

#: ``--tta`` modes: never, always, or when it scores better on the dev split.
TTA_MODES = ("off", "on", "auto")


@dataclass
class EnsembleResult:
    """Accuracy of each member and of the ensemble on one labelled split.

    ``members``: one dict per checkpoint (``checkpoint``, ``model``, ``accuracy``, ``nll``);
    ``accuracy``/``nll``: the ensemble's (mean negative log-likelihood of the averaged probabilities);
    ``selection``: how a committee was chosen (:func:`choose_committee`'s report), None otherwise;
    ``tta``: whether the probabilities are averaged over shifted views; ``tta_dev_accuracy``: the
    ensemble's dev accuracy without (``off``) and with (``on``) them when ``--tta auto`` measured both.
    """

    dataset: str
    split: str
    n: int
    members: list = field(default_factory=list)
    accuracy: float = 0.0
    nll: float = 0.0
    selection: dict | None = None
    tta: bool = False
    tta_dev_accuracy: dict | None = None

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


def choose_tta(predictors: list, dev, mode: str = "auto", batch_size: int = 1000) -> tuple[bool, dict, list]:
    """Whether to use test-time augmentation, decided on the labelled split ``dev`` (``.x`` ``uint8
    [N, C, H, W]``, ``.y`` ``[N]``): ``on``/``off`` as told, ``auto`` when the averaged probabilities of
    all ``predictors`` score better with it (accuracy first, then log-loss).

    Returns the decision, the ensemble's dev accuracy per mode measured (``{"off": a}``, plus ``"on"``
    unless the mode was ``off``) and each member's dev probabilities ``[N, K]`` in the chosen mode;
    without a labelled, non-empty ``dev``: ``auto`` means off, and nothing is measured.
    """
    check_tta_mode(mode)
    if dev is None or dev.y is None or len(dev) == 0:
        return mode == "on", {}, []
    y = dev.y.cpu().numpy()
    mean_off, off = mean_probabilities(predictors, dev.x, batch_size)
    score_off = _scores(mean_off, y)
    scores = {"off": score_off["accuracy"]}
    if mode == "off":
        return False, scores, off
    mean_on, on = mean_probabilities(predictors, dev.x, batch_size, tta=True)
    score_on = _scores(mean_on, y)
    scores["on"] = score_on["accuracy"]
    use = mode == "on" or (score_on["accuracy"], -score_on["nll"]) > (score_off["accuracy"], -score_off["nll"])
    return use, scores, on if use else off


def ensemble_evaluate(checkpoints: list, dataset: str | None = None, data_dir: str | None = None,
                      device: str | torch.device = "cpu", split: str = "test", batch_size: int = 1000,
                      splits=None, tta: str = "off") -> EnsembleResult:
    """Evaluate each checkpoint and the average of their probabilities on ``split`` of ``dataset``.

    ``dataset``/``data_dir`` default to the first checkpoint's training config; ``splits`` (a
    :class:`Splits`) skips loading. All checkpoints must share the same class names. ``tta``: a mode
    of :data:`TTA_MODES` (``auto`` decides on the dev split, :func:`choose_tta`).
    """
    check_tta_mode(tta)  # before loading the models and the data
    predictors = _predictors(checkpoints, device)
    splits = _splits_for(predictors, checkpoints, dataset, data_dir, splits)
    use, scores = tta == "on", None
    if tta == "auto":
        use, scores, _ = choose_tta(predictors, _labelled(splits, "dev"), tta, batch_size)
    res = _evaluate(checkpoints, predictors, splits, split, batch_size, tta=use)
    res.tta_dev_accuracy = scores
    return res


def ensemble_select(checkpoints: list, dataset: str | None = None, data_dir: str | None = None,
                    device: str | torch.device = "cpu", split: str = "test", batch_size: int = 1000,
                    splits=None, rule: str = "auto", tta: str = "off") -> tuple[EnsembleResult, EnsembleResult]:
    """Choose a committee among ``checkpoints`` on the dev split (:func:`choose_committee` with ``rule``),
    then evaluate it.

    ``tta`` (:data:`TTA_MODES`): ``auto`` first decides on the dev split, with every candidate, whether
    to average over shifted views; the committee is then chosen on the probabilities of that mode.
    Returns ``(dev, result)``: the chosen members' figures on the dev split they were chosen on (with
    the choice's report as ``selection``), and on ``split`` (the test split by default, which plays no
    part in the choice).
    """
    check_tta_mode(tta)  # before loading the models and the data
    predictors = _predictors(checkpoints, device)
    splits = _splits_for(predictors, checkpoints, dataset, data_dir, splits)
    part = _labelled(splits, "dev")
    use, scores, probs = choose_tta(predictors, part, tta, batch_size)
    chosen, report = choose_committee(probs, part.y.cpu().numpy(), rule=rule)
    picked = [checkpoints[i] for i in chosen]
    predictors = [predictors[i] for i in chosen]
    dev = _evaluate(picked, predictors, splits, "dev", batch_size, probs=[probs[i] for i in chosen], tta=use)
    dev.selection = report
    res = _evaluate(picked, predictors, splits, split, batch_size, tta=use)
    dev.tta_dev_accuracy = res.tta_dev_accuracy = scores if "on" in scores else None
    return dev, res


def choose_committee(probs: list, y: np.ndarray, rule: str = "auto", repeats: int = 20,
                     seed: int = 0) -> tuple[list[int], dict]:
    """Choose the members of a committee on a held-out split: greedy forward selection
    (:func:`select_members`) or all the candidates, whichever cross-validation on that split favours
    (``rule="auto"``; ``"greedy"`` or ``"all"`` forces one and skips the cross-validation).

    ``probs``: each candidate's probabilities ``[N, K]`` on the split, ``y`` its labels ``[N]``. Greedy
    selection overfits a split of a few thousand examples when the candidates are about equally good
    (each addition is decided by a handful of examples), so ``repeats`` times the split is cut into two
    random halves, the greedy choice is made on one half and scored on the other, and so is the plain
    average of every candidate. Greedy selection on the whole split is kept only when its error on the
    unseen halves is lower on average; otherwise (ties included) every candidate joins. Returns the
    chosen indices and a report: ``rule`` (``"greedy"`` or ``"all"``), ``repeats`` and the two
    held-out errors (fractions; None when the rule was forced).
    """
    if not len(probs):
        raise LenetlabError("an ensemble needs at least one model")
    if rule not in SELECT_RULES:
        raise LenetlabError(f"--select must be one of {', '.join(SELECT_RULES)} (got {rule!r})")
    held_out = None
    if rule == "auto":
        rng = np.random.default_rng(seed)
        held_out = {"greedy": 0.0, "all": 0.0}
        n = len(y)
        for _ in range(repeats if n >= 2 else 0):
            perm = rng.permutation(n)
            fit, test = perm[:n // 2], perm[n // 2:]
            chosen = select_members([p[fit] for p in probs], y[fit])
            held_out["greedy"] += 1 - _scores(sum(probs[i][test] for i in chosen) / len(chosen), y[test])["accuracy"]
            held_out["all"] += 1 - _scores(sum(p[test] for p in probs) / len(probs), y[test])["accuracy"]
        held_out = {k: v / max(repeats, 1) for k, v in held_out.items()}
        rule = "greedy" if held_out["greedy"] < held_out["all"] else "all"
    chosen = select_members(probs, y) if rule == "greedy" else list(range(len(probs)))
    return chosen, {"rule": rule, "repeats": repeats if held_out is not None else 0,
                    "held_out_error": held_out}


#: ``--select`` rules: cross-validated choice between the other two, greedy forward selection, every candidate.
SELECT_RULES = ("auto", "greedy", "all")


def select_members(probs: list, y: np.ndarray) -> list[int]:
    """Greedy forward selection of a committee (Caruana et al. 2004, without replacement).

    ``probs``: each candidate's probabilities ``[N, K]`` on a held-out split with labels ``y`` ``[N]``.
    Starts from the best single candidate and adds, one at a time, the candidate whose addition gives
    the averaged probabilities the highest accuracy (then the lowest negative log-likelihood), as long
    as that improves on the committee so far. Returns the chosen indices in the order they were added.
    """
    if not len(probs):
        raise LenetlabError("an ensemble needs at least one model")
    chosen: list[int] = []
    total, best = None, (-1.0, 0.0)
    while len(chosen) < len(probs):
        trials = []
        for i in range(len(probs)):
            if i not in chosen:
                mean = (probs[i] if total is None else total + probs[i]) / (len(chosen) + 1)
                sc = _scores(mean, y)
                trials.append(((sc["accuracy"], -sc["nll"]), i))
        score, i = max(trials)
        if score <= best:
            break
        best, total = score, probs[i] if total is None else total + probs[i]
        chosen.append(i)
    return chosen


def _predictors(checkpoints: list, device) -> list:
    if not checkpoints:
        raise LenetlabError("ensemble needs at least one checkpoint")
    return [load_predictor(c, device=str(device)) for c in checkpoints]


def _splits_for(predictors: list, checkpoints: list, dataset, data_dir, splits):
    """The dataset to evaluate on: ``splits`` if given, else ``dataset`` or the first checkpoint's own."""
    if splits is not None:
        return splits
    ds, dd, opts = _dataset_of(predictors[0].config)
    ds = ds or predictors[0].dataset
    if dataset and dataset != ds:
        opts = {}
    dataset = dataset or ds
    if not dataset:
        raise LenetlabError(f"{checkpoints[0]}: no dataset recorded in the checkpoint; pass --dataset")
    return load(dataset, data_dir=data_dir if data_dir is not None else dd, **opts)


def check_tta_mode(mode: str) -> None:
    """Raise a one-line :class:`ConfigError` unless ``mode`` is one of :data:`TTA_MODES`."""
    if mode not in TTA_MODES:
        raise ConfigError(f"--tta must be one of {', '.join(TTA_MODES)} (got {mode!r})")


def _labelled(splits, split: str):
    if split not in ("test", "dev"):
        raise LenetlabError(f"--split must be test or dev (got {split!r})")
    part = getattr(splits, split)
    if part.y is None:
        raise DataError(f"{splits.name}: the {split} split has no labels; cannot measure accuracy")
    if len(part) == 0:
        raise DataError(f"{splits.name}: the {split} split is empty")
    return part


def _evaluate(checkpoints: list, predictors: list, splits, split: str, batch_size: int,
              probs: list | None = None, tta: bool = False) -> EnsembleResult:
    """Each model's and the ensemble's figures on ``split``; ``probs``: the models' probabilities there, if
    known; ``tta``: averaged over shifted views."""
    names = predictors[0].class_names
    part = _labelled(splits, split)
    if names and [str(c) for c in splits.class_names] != names:
        raise CheckpointError(f"{checkpoints[0]}: its class names {names[:5]}... do not match dataset "
                              f"{splits.name}'s {list(splits.class_names)[:5]}...")
    y = part.y.cpu().numpy()
    if probs is None:
        mean, probs = mean_probabilities(predictors, part.x, batch_size, tta=tta)
    else:
        mean = sum(probs) / len(probs)
    members = []
    for path, pred, pr in zip(checkpoints, predictors, probs):
        if pr.shape[1] <= int(y.max()):
            raise CheckpointError(f"{path}: model has {pr.shape[1]} outputs but the labels go up to {int(y.max())}")
        members.append({"checkpoint": str(path), "model": pred.name, **_scores(pr, y)})
    return EnsembleResult(dataset=splits.name, split=split, n=len(part), members=members, tta=tta, **_scores(mean, y))


def _scores(probs: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and mean negative log-likelihood of probabilities ``[N, K]`` against labels ``[N]``."""
    p_true = probs[np.arange(len(y)), y]
    return {"accuracy": float((probs.argmax(1) == y).mean()), "nll": float(-np.log(np.clip(p_true, 1e-12, None)).mean())}


def run_ensemble(checkpoints: list, *, dataset=None, data_dir=None, device: str = "auto", split: str = "test",
                 select: str | None = None, tta: str = "off", as_json: bool = False, out=None) -> int:
    """``lenet ensemble``: print each member's and the ensemble's accuracy and error; returns 0.

    ``select`` (a rule of :data:`SELECT_RULES`): first choose the members on the dev split
    (:func:`ensemble_select`), print the committee's dev figures, then evaluate it on ``split``.
    ``tta``: a mode of :data:`TTA_MODES`."""
    out = out or sys.stdout
    paths = [os.fspath(c) for c in checkpoints]
    if select:
        if split == "dev":
            raise LenetlabError("--select chooses the members on the dev split: evaluate them with --split test")
        dev, res = ensemble_select(paths, dataset=dataset, data_dir=data_dir, device=select_device(device), split=split,
                                   rule=select, tta=tta)
        if as_json:
            print(json.dumps({"candidates": paths, "chosen_on_dev": dev.to_dict(), **res.to_dict()}, indent=2), file=out)
            return 0
        sel = dev.selection
        how = "greedy forward selection" if sel["rule"] == "greedy" else "all of them"
        if sel["held_out_error"] is not None:
            err = sel["held_out_error"]
            how += (f" (error on held-out halves of dev, {sel['repeats']} cuts: greedy {100 * err['greedy']:.2f}%, "
                    f"all {100 * err['all']:.2f}%)")
        print(f"chose {len(res.members)} of {len(paths)} models on the dev split ({dev.n} examples) by {how}; "
              f"{100 * dev.accuracy:.2f}% dev accuracy", file=out)
    else:
        res = ensemble_evaluate(paths, dataset=dataset, data_dir=data_dir, device=select_device(device), split=split,
                                tta=tta)
        if as_json:
            print(json.dumps(res.to_dict(), indent=2), file=out)
            return 0
    if res.tta_dev_accuracy:
        acc = res.tta_dev_accuracy
        print(f"test-time augmentation (one-pixel shifts): dev accuracy {100 * acc['off']:.2f}% without, "
              f"{100 * acc['on']:.2f}% with: {'used' if res.tta else 'not used'}", file=out)
    shifts = ", each model's probabilities averaged over one-pixel shifts" if res.tta else ""
    print(f"{res.dataset} {res.split} split, {res.n} examples{shifts}", file=out)
    rows = [(m["checkpoint"], m["model"], m["accuracy"], m["nll"]) for m in res.members]
    rows.append(("ensemble (mean probability)", f"{len(res.members)} models", res.accuracy, res.nll))
    width = max(len(r[0]) for r in rows)
    mw = max(len(r[1]) for r in rows)
    for name, model, acc, nll in rows:
        print(f"  {name:<{width}}  {model:<{mw}}  accuracy {100 * acc:6.2f}%  error {100 * (1 - acc):5.2f}%  "
              f"nll {nll:.4f}", file=out)
    return 0
