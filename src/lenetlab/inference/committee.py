"""An ensemble's members on a labelled split: averaged probabilities (:func:`mean_probabilities`),
test-time augmentation chosen on the dev split (:func:`choose_tta`), a committee chosen by greedy
forward selection or cross-validation (:func:`choose_committee`)."""

import numpy as np
import torch

from lenetlab.choices import SELECT_RULES, TTA_MODES
from lenetlab.errors import CheckpointError, ConfigError, LenetlabError


def _need_members(members: list) -> None:
    if not len(members):
        raise LenetlabError("an ensemble needs at least one model")


def mean_probabilities(
    predictors: list, x: torch.Tensor, batch_size: int = 1000, tta: bool = False
) -> tuple[np.ndarray, list]:
    """The averaged probabilities ``float64 [N, K]`` of ``predictors`` (which must share their class names)
    on ``uint8 [N, C, H, W]`` images, and each member's ``[N, K]`` (``tta``: over shifted views too)."""
    _need_members(predictors)
    for p in predictors[1:]:
        if p.class_names != predictors[0].class_names:
            raise CheckpointError(
                f"{p.source}: its class names differ from {predictors[0].source}'s; cannot ensemble them"
            )
    members = [p.predict_proba(x, batch_size, tta=tta) for p in predictors]
    return sum(members) / len(members), members


def choose_tta(predictors: list, dev, mode: str = "auto", batch_size: int = 1000) -> tuple[bool, dict, list]:
    """Whether to use test-time augmentation (``auto``: when the ensemble scores better with it on the labelled
    split ``dev``, by accuracy then log-loss), the dev accuracy per mode measured, and each member's dev
    probabilities ``[N, K]`` in the chosen mode (none measured without a labelled ``dev``)."""
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
    """The indices of a committee chosen on a held-out split (``probs``: each candidate's ``[N, K]``, ``y`` the
    labels ``[N]``), by greedy forward selection (:func:`select_members`) or every candidate, and
    ``{rule, repeats, held_out_error}``. ``auto`` keeps greedy selection only when its mean error on random
    held-out halves of the split is lower (it overfits a small split of about equally good candidates)."""

    _need_members(probs)
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
            for name, members in (("greedy", chosen), ("all", range(len(probs)))):
                mean = sum(probs[i][test] for i in members) / len(members)
                held_out[name] += 1 - accuracy_nll(mean, y[test])["accuracy"]
        held_out = {k: v / max(repeats, 1) for k, v in held_out.items()}
        rule = "greedy" if held_out["greedy"] < held_out["all"] else "all"
    chosen = select_members(probs, y) if rule == "greedy" else list(range(len(probs)))
    return chosen, {"rule": rule, "repeats": repeats if held_out is not None else 0, "held_out_error": held_out}


def select_members(probs: list, y: np.ndarray) -> list[int]:
    """Greedy forward selection of a committee (Caruana et al. 2004, without replacement), in the order
    added: from the best single candidate, add the one that gives the averaged probabilities the highest
    accuracy (then the lowest log-loss) on labels ``y`` while that improves on the committee so far."""
    _need_members(probs)
    chosen: list[int] = []
    total, best = None, (-1.0, 0.0)
    while len(chosen) < len(probs):
        trials = []
        for i in set(range(len(probs))) - set(chosen):
            sc = accuracy_nll((probs[i] if total is None else total + probs[i]) / (len(chosen) + 1), y)
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
