"""``lenet ensemble``: average the softmax probabilities of several trained models.

``--select`` first chooses a committee on the dev split (:func:`choose_committee`: greedy forward
selection, or all the candidates when cross-validation on dev favours them), so the test split stays
out of the choice. ``--tta`` averages each model's probabilities over the image and four one-pixel
shifts (``on``), or does when that scores better on dev (``auto``). Each checkpoint keeps its own
:class:`InputSpec`, so models trained with different recipes can be combined.
"""

import os
from dataclasses import asdict, dataclass, field

import torch

from lenetlab.device import select_device
from lenetlab.errors import CheckpointError, DataError, LenetlabError
from lenetlab.inference.committee import (
    accuracy_nll,
    check_tta_mode,
    choose_committee,
    choose_tta,
    mean_probabilities,
)
from lenetlab.inference.predictor import load_predictor
from lenetlab.inference.run import load_data
from lenetlab.textfmt import Output

__all__ = ["EnsembleResult", "ensemble_evaluate", "ensemble_select", "run_ensemble"]


@dataclass
class EnsembleResult:
    """Accuracy and NLL of each member (``checkpoint``, ``model``, ``accuracy``, ``nll``) and of the ensemble
    on one labelled split; ``selection``: :func:`choose_committee`'s report; ``tta``: averaged over shifted
    views; ``tta_dev_accuracy``: the dev accuracy without (``off``) and with (``on``) them, if measured."""

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


def ensemble_evaluate(
    checkpoints: list,
    dataset: str | None = None,
    data_dir: str | None = None,
    device: str | torch.device = "cpu",
    split: str = "test",
    batch_size: int = 1000,
    splits=None,
    tta: str = "off",
) -> EnsembleResult:
    """Evaluate each checkpoint and the average of their probabilities on ``split`` of ``dataset`` (default:
    the first checkpoint's data; ``splits`` skips loading); ``tta``: a mode of :data:`TTA_MODES`."""
    predictors, splits = _load(checkpoints, device, dataset, data_dir, splits, tta)
    use, scores = tta == "on", None
    if tta == "auto":
        use, scores, _ = choose_tta(predictors, _labelled(splits, "dev"), tta, batch_size)
    res = _evaluate(checkpoints, predictors, splits, split, batch_size, tta=use)
    res.tta_dev_accuracy = scores
    return res


def ensemble_select(
    checkpoints: list,
    dataset: str | None = None,
    data_dir: str | None = None,
    device: str | torch.device = "cpu",
    split: str = "test",
    batch_size: int = 1000,
    splits=None,
    rule: str = "auto",
    tta: str = "off",
) -> tuple[EnsembleResult, EnsembleResult]:
    """Choose a committee among ``checkpoints`` on the dev split (:func:`choose_committee` with ``rule``, on
    the probabilities of the ``tta`` mode that ``auto`` picks with every candidate), then evaluate it.
    Returns ``(dev, result)``: its figures on the dev split (``selection``: the choice's report) and on
    ``split``, which plays no part in the choice."""
    predictors, splits = _load(checkpoints, device, dataset, data_dir, splits, tta)
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


def _load(checkpoints: list, device, dataset, data_dir, splits, tta: str) -> tuple[list, object]:
    """The checkpoints' predictors and the data to evaluate on: ``splits`` if given, else ``dataset`` or the
    first checkpoint's own."""
    check_tta_mode(tta)  # before loading the models and the data
    if not checkpoints:
        raise LenetlabError("ensemble needs at least one checkpoint")
    predictors = [load_predictor(c, device=str(device)) for c in checkpoints]
    if splits is not None:
        return predictors, splits
    if not (dataset or predictors[0].data.get("dataset")):
        raise LenetlabError(f"{checkpoints[0]}: no dataset recorded in the checkpoint; pass --dataset")
    return predictors, load_data(predictors[0].data, dataset, data_dir)


def _labelled(splits, split: str):
    if split not in ("test", "dev"):
        raise LenetlabError(f"--split must be test or dev (got {split!r})")
    part = getattr(splits, split)
    if part.y is None:
        raise DataError(f"{splits.name}: the {split} split has no labels; cannot measure accuracy")
    if len(part) == 0:
        raise DataError(f"{splits.name}: the {split} split is empty")
    return part


def _evaluate(
    checkpoints: list,
    predictors: list,
    splits,
    split: str,
    batch_size: int,
    probs: list | None = None,
    tta: bool = False,
) -> EnsembleResult:
    """Each model's and the ensemble's figures on ``split`` (``probs``: the models' probabilities, if known)."""
    names = predictors[0].class_names
    part = _labelled(splits, split)
    if names and [str(c) for c in splits.class_names] != names:
        raise CheckpointError(
            f"{checkpoints[0]}: its class names {names[:5]}... do not match dataset "
            f"{splits.name}'s {list(splits.class_names)[:5]}..."
        )
    y = part.y.cpu().numpy()
    if probs is None:
        mean, probs = mean_probabilities(predictors, part.x, batch_size, tta=tta)
    else:
        mean = sum(probs) / len(probs)
    members = []
    for path, pred, pr in zip(checkpoints, predictors, probs):
        if pr.shape[1] <= int(y.max()):
            raise CheckpointError(f"{path}: model has {pr.shape[1]} outputs but the labels go up to {int(y.max())}")
        members.append({"checkpoint": str(path), "model": pred.name, **accuracy_nll(pr, y)})
    return EnsembleResult(
        dataset=splits.name, split=split, n=len(part), members=members, tta=tta, **accuracy_nll(mean, y)
    )


def run_ensemble(
    checkpoints: list,
    *,
    dataset=None,
    data_dir=None,
    device: str = "auto",
    split: str = "test",
    select: str | None = None,
    tta: str = "off",
) -> Output:
    """``lenet ensemble``: each member's and the ensemble's accuracy and error.

    ``select`` (a rule of :data:`SELECT_RULES`): first choose the members on the dev split
    (:func:`ensemble_select`), report the committee's dev figures, then evaluate it on ``split``.
    ``tta``: a mode of :data:`TTA_MODES`."""
    paths = [os.fspath(c) for c in checkpoints]
    lines = []
    if select:
        if split == "dev":
            raise LenetlabError("--select chooses the members on the dev split: evaluate them with --split test")
        dev, res = ensemble_select(
            paths, dataset=dataset, data_dir=data_dir, device=select_device(device), split=split, rule=select, tta=tta
        )
        data = {"candidates": paths, "chosen_on_dev": dev.to_dict(), **res.to_dict()}
        sel = dev.selection
        how = "greedy forward selection" if sel["rule"] == "greedy" else "all of them"
        if sel["held_out_error"] is not None:
            err = sel["held_out_error"]
            how += (
                f" (error on held-out halves of dev, {sel['repeats']} cuts: greedy {100 * err['greedy']:.2f}%, "
                f"all {100 * err['all']:.2f}%)"
            )
        lines.append(
            f"chose {len(res.members)} of {len(paths)} models on the dev split ({dev.n} examples) by {how}; "
            f"{100 * dev.accuracy:.2f}% dev accuracy"
        )
    else:
        res = ensemble_evaluate(
            paths, dataset=dataset, data_dir=data_dir, device=select_device(device), split=split, tta=tta
        )
        data = res.to_dict()
    if res.tta_dev_accuracy:
        acc = res.tta_dev_accuracy
        lines.append(
            f"test-time augmentation (one-pixel shifts): dev accuracy {100 * acc['off']:.2f}% without, "
            f"{100 * acc['on']:.2f}% with: {'used' if res.tta else 'not used'}"
        )
    shifts = ", each model's probabilities averaged over one-pixel shifts" if res.tta else ""
    lines.append(f"{res.dataset} {res.split} split, {res.n} examples{shifts}")
    rows = [(m["checkpoint"], m["model"], m["accuracy"], m["nll"]) for m in res.members]
    rows.append(("ensemble (mean probability)", f"{len(res.members)} models", res.accuracy, res.nll))
    width = max(len(r[0]) for r in rows)
    mw = max(len(r[1]) for r in rows)
    lines += [
        f"  {name:<{width}}  {model:<{mw}}  accuracy {100 * acc:6.2f}%  error {100 * (1 - acc):5.2f}%  nll {nll:.4f}"
        for name, model, acc, nll in rows
    ]
    return Output(data, "\n".join(lines))
