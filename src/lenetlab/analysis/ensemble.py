"""Ensembles: average the softmax probabilities of several checkpoints (``lenet ensemble``).

Each checkpoint keeps its own :class:`InputSpec` (input size, padding or resizing, normalisation,
channels), so models trained with different recipes can be combined. The ensemble's prediction is
the argmax of the mean probability vector.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field

import torch

from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import CheckpointError, DataError, LenetlabError

__all__ = ["EnsembleResult", "ensemble_evaluate", "run_ensemble"]


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


def _dataset_of(ckpt: dict) -> tuple[str | None, str | None, dict]:
    """Dataset name, data dir and the loader options the run used (so ``dev`` is the run's dev split)."""
    cfg = ckpt.get("config") or {}
    opts = {k: cfg[k] for k in ("val_size", "image_size") if cfg.get(k) is not None}
    return cfg.get("dataset"), cfg.get("data_dir"), opts


def _channels(x: torch.Tensor, c: int) -> torch.Tensor:
    """``uint8 [N, C, H, W]`` converted to ``c`` channels (gray repeated, or RGB to luma)."""
    from lenetlab.data.common import to_channels

    return x if x.shape[1] == c else to_channels(x, c)


@torch.no_grad()
def member_probabilities(model: torch.nn.Module, x: torch.Tensor, spec: InputSpec, device: torch.device,
                         batch_size: int = 1000) -> torch.Tensor:
    """Softmax probabilities ``float64 [N, K]`` (CPU) of ``model`` on ``uint8 [N, C, H, W]`` images."""
    x = _channels(x, spec.channels)
    out = []
    for start in range(0, x.shape[0], batch_size):
        xb = prepare(x[start:start + batch_size].to(device), spec)
        out.append(torch.softmax(model(xb).float(), dim=1).double().cpu())
    return torch.cat(out)


def ensemble_evaluate(checkpoints: list, dataset: str | None = None, data_dir: str | None = None,
                      device: str | torch.device = "cpu", split: str = "test", batch_size: int = 1000,
                      splits=None) -> EnsembleResult:
    """Evaluate each checkpoint and the average of their probabilities on ``split`` of ``dataset``.

    ``dataset``/``data_dir`` default to the first checkpoint's training config; ``splits`` (a
    :class:`Splits`) skips loading. All checkpoints must share the same class names.
    """
    from lenetlab.data import load
    from lenetlab.models.checkpoint import build_model, load_checkpoint

    if not checkpoints:
        raise LenetlabError("ensemble needs at least one checkpoint")
    device = torch.device(device)
    ckpts = [load_checkpoint(c, map_location=device) for c in checkpoints]
    names = [list(map(str, c.get("class_names") or [])) for c in ckpts]
    for path, cn in zip(checkpoints[1:], names[1:]):
        if cn != names[0]:
            raise CheckpointError(f"{path}: its class names differ from {checkpoints[0]}'s; cannot ensemble them")
    if splits is None:
        ds, dd, opts = _dataset_of(ckpts[0])
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
    if names[0] and [str(c) for c in splits.class_names] != names[0]:
        raise CheckpointError(f"{checkpoints[0]}: its class names {names[0][:5]}... do not match dataset "
                              f"{splits.name}'s {list(splits.class_names)[:5]}...")
    y = part.y.cpu()
    members, total = [], None
    for path, ckpt in zip(checkpoints, ckpts):
        model = build_model(ckpt, map_location=device)
        spec = InputSpec.from_dict(ckpt["input_spec"])
        probs = member_probabilities(model, part.x, spec, device, batch_size)
        if probs.shape[1] <= int(y.max()):
            raise CheckpointError(f"{path}: model has {probs.shape[1]} outputs but the labels go up to {int(y.max())}")
        total = probs if total is None else total + probs
        members.append({
            "checkpoint": str(path),
            "model": ckpt["model"]["name"],
            "accuracy": float((probs.argmax(1) == y).double().mean()),
            "nll": float(-probs.gather(1, y.view(-1, 1)).clamp_min(1e-12).log().mean()),
        })
        del model
    mean = total / len(ckpts)
    return EnsembleResult(
        dataset=splits.name, split=split, n=len(part), members=members,
        accuracy=float((mean.argmax(1) == y).double().mean()),
        nll=float(-mean.gather(1, y.view(-1, 1)).clamp_min(1e-12).log().mean()),
    )


def run_ensemble(checkpoints: list, *, dataset=None, data_dir=None, device: str = "auto", split: str = "test",
                 as_json: bool = False, out=None) -> int:
    """``lenet ensemble``: print each member's and the ensemble's accuracy and error; returns 0."""
    from lenetlab.device import select_device

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
