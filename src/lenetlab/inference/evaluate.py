"""The one evaluation function: used by the runner's dev/test evaluations, plots and ``lenet eval``.

Loss is the model's own criterion (``model.loss(outputs, targets)``) when it defines one, else plain
cross-entropy (no label smoothing), averaged over examples, so the runner's test figures and
``lenet eval``'s agree whatever the training recipe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.data.splits import Split
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import DataError


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


def model_loss(model: nn.Module, label_smoothing: float = 0.0):
    """The loss of ``model``: its own ``model.loss`` when it defines one (LeNet-5 1998's RBF criterion),
    else cross-entropy with ``label_smoothing`` (training uses the run's; reports use none).

    Returns a callable ``(outputs [N, K], targets [N]) -> scalar mean loss``.
    """
    own = getattr(model, "loss", None)
    if callable(own):
        return own
    return lambda out, y: F.cross_entropy(out, y, label_smoothing=label_smoothing)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split,
    spec: InputSpec,
    device: torch.device | str = "cpu",
    batch_size: int = 1000,
    class_names: list | None = None,
    autocast: torch.dtype | None = None,
    channels_last: bool = False,
    keep_predictions: bool = False,
) -> EvalResult:
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
    loss_fn = model_loss(model)
    model.eval()
    x_all, y_all = split.x.to(device), split.y.to(device)
    num_classes = None
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    preds = []
    for start in range(0, n, batch_size):
        xb = prepare(x_all[start : start + batch_size], spec)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yb = y_all[start : start + batch_size]
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
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


def evaluate_sharded(
    model: nn.Module,
    split,
    spec: InputSpec,
    device: torch.device | str,
    rank: int,
    world_size: int,
    all_reduce_sum,
    batch_size: int = 1000,
    **kwargs,
) -> EvalResult:
    """Exact sharded evaluation over ``world_size`` processes (DistributedDataParallel).

    This process evaluates ``split[rank::world_size]`` (no padding, no example counted twice) and the
    confusion matrix, loss sum and count are summed over processes with ``all_reduce_sum`` (a callable
    summing a tensor in place over processes and returning it), so every process gets the
    :class:`EvalResult` of the whole split. One process, splits smaller than the world, unlabelled
    splits and ``keep_predictions=True`` are evaluated whole by :func:`evaluate`.
    """
    n, w = len(split), world_size
    if w == 1 or n < w or split.y is None or kwargs.get("keep_predictions"):
        return evaluate(model, split, spec, device, batch_size, **kwargs)
    part = Split(split.x[rank::w], split.y[rank::w])
    res = evaluate(model, part, spec, device, batch_size, **kwargs)
    device = torch.device(device)
    k = len(res.confusion)
    sizes = torch.zeros(w, dtype=torch.float64, device=device)
    sizes[rank] = k
    k_all = int(all_reduce_sum(sizes).max().item())  # shards may see different label ranges
    conf = torch.zeros(k_all, k_all, dtype=torch.float64)
    conf[:k, :k] = torch.tensor(res.confusion, dtype=torch.float64)
    packed = torch.cat([conf.flatten(), torch.tensor([res.loss * res.n, float(res.n)], dtype=torch.float64)])
    packed = all_reduce_sum(packed.to(device)).cpu()
    conf = packed[:-2].view(k_all, k_all).round().long()
    loss_sum, total = float(packed[-2]), int(round(float(packed[-1])))
    correct, support = conf.diag(), conf.sum(dim=1)
    return EvalResult(
        accuracy=int(correct.sum()) / total,
        loss=loss_sum / total,
        n=total,
        per_class=[(int(c) / int(s)) if int(s) else None for c, s in zip(correct, support)],
        confusion=conf.tolist(),
        class_names=res.class_names,
    )


def format_result(res: EvalResult) -> str:
    """Human-readable report: accuracy, loss, per-class accuracy and the confusion matrix."""
    names = res.class_names or [str(i) for i in range(len(res.per_class))]
    width = max(5, *(len(n) for n in names))
    lines = [
        f"accuracy {res.accuracy:.4f}  loss {res.loss:.4f}  (n={res.n}, errors={res.n - round(res.accuracy * res.n)})",
        "",
        "per-class accuracy:",
    ]
    for name, acc, row in zip(names, res.per_class, res.confusion):
        lines.append(f"  {name:>{width}}  {'n/a' if acc is None else f'{acc:.4f}'}  (n={sum(row)})")
    lines += [
        "",
        "confusion matrix (rows: true class, columns: predicted):",
        " " * (width + 2) + " ".join(f"{n:>{width}}" for n in names),
    ]
    for name, row in zip(names, res.confusion):
        lines.append(f"  {name:>{width}}" + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
