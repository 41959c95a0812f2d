"""Choosing and combining an ensemble's members on a labelled split: averaged probabilities
(:func:`mean_probabilities`), test-time augmentation chosen on the dev split (:func:`choose_tta`), a
committee chosen by greedy forward selection or cross-validation (:func:`choose_committee`). Used by
``lenet ensemble``, ``lenet submit`` and ``benchmarks/committee.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lenetlab.choices import SELECT_RULES, TTA_MODES
from lenetlab.errors import CheckpointError, ConfigError, LenetlabError

if TYPE_CHECKING:
    import torch


def mean_probabilities(
    predictors: list, x: torch.Tensor, batch_size: int = 1000, tta: bool = False
) -> tuple[np.ndarray, list]:
    """The ensemble's averaged probabilities ``float64 [N, K]`` on ``uint8 [N, C, H, W]`` images, and each
    member's own ``[N, K]`` (``tta``: each averaged over shifted views, see ``Predictor.predict_proba``).
    Members must share their class names (a one-line CheckpointError if not)."""
    if not predictors:
        raise LenetlabError("an ensemble needs at least one model")
    for p in predictors[1:]:
        if p.class_names != predictors[0].class_names:
            raise CheckpointError(
                f"{p.source}: its class names differ from {predictors[0].source}'s; cannot ensemble them"
            )
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
    score_off = accuracy_nll(mean_off, y)
    scores = {"off": score_off["accuracy"]}
    if mode == "off":
        return False, scores, off
    mean_on, on = mean_probabilities(predictors, dev.x, batch_size, tta=True)
    score_on = accuracy_nll(mean_on, y)
    scores["on"] = score_on["accuracy"]
    use = mode == "on" or (score_on["accuracy"], -score_on["nll"]) > (score_off["accuracy"], -score_off["nll"])
    return use, scores, on if use else off


def choose_committee(
    probs: list, y: np.ndarray, rule: str = "auto", repeats: int = 20, seed: int = 0
) -> tuple[list[int], dict]:
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
            fit, test = perm[: n // 2], perm[n // 2 :]
            chosen = select_members([p[fit] for p in probs], y[fit])
            held_out["greedy"] += (
                1 - accuracy_nll(sum(probs[i][test] for i in chosen) / len(chosen), y[test])["accuracy"]
            )
            held_out["all"] += 1 - accuracy_nll(sum(p[test] for p in probs) / len(probs), y[test])["accuracy"]
        held_out = {k: v / max(repeats, 1) for k, v in held_out.items()}
        rule = "greedy" if held_out["greedy"] < held_out["all"] else "all"
    chosen = select_members(probs, y) if rule == "greedy" else list(range(len(probs)))
    return chosen, {"rule": rule, "repeats": repeats if held_out is not None else 0, "held_out_error": held_out}


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
                sc = accuracy_nll(mean, y)
                trials.append(((sc["accuracy"], -sc["nll"]), i))
        score, i = max(trials)
        if score <= best:
            break
        best, total = score, probs[i] if total is None else total + probs[i]
        chosen.append(i)
    return chosen


def check_tta_mode(mode: str) -> None:
    """Raise a one-line :class:`ConfigError` unless ``mode`` is one of :data:`TTA_MODES`."""
    if mode not in TTA_MODES:
        raise ConfigError(f"--tta must be one of {', '.join(TTA_MODES)} (got {mode!r})")


def accuracy_nll(probs: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and mean negative log-likelihood of probabilities ``[N, K]`` against labels ``[N]``."""
    p_true = probs[np.arange(len(y)), y]
    return {
        "accuracy": float((probs.argmax(1) == y).mean()),
        "nll": float(-np.log(np.clip(p_true, 1e-12, None)).mean()),
    }
