"""The one evaluation function: used by the runner's dev/test evaluations and by ``lenet eval``.

Loss is the model's own criterion (``model.loss(outputs, targets)``) when it defines one, else plain
cross-entropy (no label smoothing), averaged over examples, so the runner's test figures and
``lenet eval``'s agree whatever the training recipe.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import DataError, LenetlabError


@dataclass
class EvalResult:
    """Evaluation figures of one model on one labelled split.

    ``per_class`` is each class's accuracy (NaN-free: classes absent from the split get ``None``);
    ``confusion[t][p]`` counts examples of true class ``t`` predicted as ``p``;
    ``predictions`` (int64 ``[n]``, on CPU) is kept only when asked for.
    """

    accuracy: float
    loss: float
    n: int
    per_class: list
    confusion: list
    class_names: list | None = None
    predictions: torch.Tensor | None = None

    def to_dict(self) -> dict:
        """JSON-safe dict (without predictions)."""
        d = asdict(self)
        d.pop("predictions")
        return d


def default_loss(model: nn.Module):
    """The criterion used for reporting: ``model.loss`` if the model defines one, else cross-entropy.

    Returns a callable ``(outputs [N, K], targets [N]) -> scalar mean loss``.
    """
    own = getattr(model, "loss", None)
    return own if callable(own) else F.cross_entropy


@torch.no_grad()
def evaluate(model: nn.Module, split, spec: InputSpec, device: torch.device | str = "cpu",
             batch_size: int = 1000, loss_fn=None, class_names: list | None = None,
             autocast: torch.dtype | None = None, channels_last: bool = False,
             keep_predictions: bool = False) -> EvalResult:
    """Accuracy, mean loss, per-class accuracy and confusion matrix of ``model`` on ``split``.

    ``split.x`` is ``uint8 [N, C, H, W]`` (prepared batch by batch with ``spec``), ``split.y`` int64
    ``[N]``. ``model`` must already be on ``device``; it is put in eval mode and left there.
    Everything is accumulated on the device and synchronised once at the end.
    """
    if split.y is None:
        raise DataError("cannot evaluate on an unlabelled split (no labels)")
    device = torch.device(device)
    n = len(split)
    if n == 0:
        raise DataError("cannot evaluate on an empty split")
    loss_fn = loss_fn or default_loss(model)
    model.eval()
    x_all, y_all = split.x.to(device), split.y.to(device)
    num_classes = None
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    preds = []
    for start in range(0, n, batch_size):
        xb = prepare(x_all[start:start + batch_size], spec)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yb = y_all[start:start + batch_size]
        ctx = torch.autocast(device.type, dtype=autocast) if autocast is not None else contextlib.nullcontext()
        with ctx:
            out = model(xb)
        out = out.float()
        num_classes = out.shape[1]
        total_loss += loss_fn(out, yb).double() * yb.shape[0]
        preds.append(out.argmax(dim=1))
    pred = torch.cat(preds)
    k = max(num_classes, int(y_all.max().item()) + 1)
    confusion = torch.bincount(y_all * k + pred, minlength=k * k).view(k, k).cpu()
    correct = confusion.diag()
    support = confusion.sum(dim=1)
    per_class = [(int(c) / int(s)) if int(s) else None for c, s in zip(correct, support)]
    return EvalResult(
        accuracy=int(correct.sum()) / n,
        loss=float(total_loss.item()) / n,
        n=n,
        per_class=per_class,
        confusion=confusion.tolist(),
        class_names=list(class_names) if class_names is not None else None,
        predictions=pred.cpu() if keep_predictions else None,
    )


def evaluate_checkpoint(checkpoint, dataset: str | None = None, data_dir: str | None = None, split: str = "test",
                        device: str = "auto", batch_size: int = 1000) -> EvalResult:
    """Rebuild a checkpoint's model and :func:`evaluate` it on ``split`` (``test`` or ``dev``) of
    ``dataset`` (default: the dataset, data folder and dev size it was trained with)."""
    from lenetlab import data
    from lenetlab.models.checkpoint import build_model, load_checkpoint
    from lenetlab.train.device import autocast_dtype, select_device

    dev = select_device(device)
    ckpt = load_checkpoint(checkpoint, map_location=dev)
    cfg = ckpt.get("config") or {}
    name = dataset or cfg.get("dataset") or ckpt.get("dataset")  # the config keeps the path the run was given
    if not name:
        raise DataError(f"{checkpoint}: the checkpoint does not name its dataset; pass --dataset")
    kwargs = {"data_dir": data_dir if data_dir is not None else (cfg.get("data_dir") if dataset is None else None)}
    for key in ("val_size", "image_size"):  # the split and image size the run was trained on
        if cfg.get(key) is not None:
            kwargs[key] = cfg[key]
    splits = data.load(name, **kwargs)
    part = getattr(splits, split)
    if part.y is None:  # a Kaggle test.csv has no labels
        raise DataError(f"{name}: the {split} split has no labels (an unlabelled test.csv?); evaluate with --split dev")
    if len(ckpt["class_names"]) != len(splits.class_names):
        raise DataError(f"{checkpoint}: model has {len(ckpt['class_names'])} classes but {name} has "
                        f"{len(splits.class_names)}")
    if [str(c) for c in ckpt["class_names"]] != [str(c) for c in splits.class_names]:
        # same count, other classes (a digit model on Fashion-MNIST, say): the accuracy would be meaningless
        raise DataError(f"{checkpoint}: model classes ({_brief(ckpt['class_names'])}) differ from {name}'s "
                        f"({_brief(splits.class_names)})")
    model = build_model(ckpt, map_location=dev)
    spec = InputSpec.from_dict(ckpt["input_spec"])
    channels_last = bool(cfg.get("channels_last", False))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    try:  # the precision it was trained with, where this device supports it
        autocast = autocast_dtype(dev, cfg.get("amp", "off"))
    except LenetlabError:
        autocast = None
    return evaluate(model, part, spec, dev, batch_size, class_names=ckpt["class_names"],
                    autocast=autocast, channels_last=channels_last)


def _brief(names, k: int = 4) -> str:
    """The first ``k`` class names, comma-separated, for one-line messages."""
    names = [str(n) for n in names]
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


def format_result(res: EvalResult) -> str:
    """Human-readable report: accuracy, loss, per-class accuracy and the confusion matrix."""
    names = res.class_names or [str(i) for i in range(len(res.per_class))]
    width = max(5, *(len(n) for n in names))
    lines = [f"accuracy {res.accuracy:.4f}  loss {res.loss:.4f}  (n={res.n}, errors={res.n - round(res.accuracy * res.n)})",
             "", "per-class accuracy:"]
    for name, acc, row in zip(names, res.per_class, res.confusion):
        lines.append(f"  {name:>{width}}  {'n/a' if acc is None else f'{acc:.4f}'}  (n={sum(row)})")
    lines += ["", "confusion matrix (rows: true class, columns: predicted):",
              " " * (width + 2) + " ".join(f"{n:>{width}}" for n in names)]
    for name, row in zip(names, res.confusion):
        lines.append(f"  {name:>{width}}" + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def eval_command(checkpoint, dataset=None, data_dir=None, split="test", device="auto", batch_size=1000,
                 as_json=False) -> EvalResult:
    """``lenet eval``: evaluate ``checkpoint`` and print the report (or JSON)."""
    import json

    res = evaluate_checkpoint(checkpoint, dataset, data_dir, split, device, batch_size)
    if as_json:
        print(json.dumps({"checkpoint": str(checkpoint), "split": split, **res.to_dict()}, indent=2))
    else:
        print(f"{checkpoint} on {split}:")
        print(format_result(res))
    return res
