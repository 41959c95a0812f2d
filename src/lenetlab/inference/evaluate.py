"""The one evaluation function (the runner's dev and test evaluations, plots, ``lenet eval``) and the one
loss: the model's own criterion when it defines one, else cross-entropy, averaged over examples."""

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.data.splits import Split
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import DataError


@dataclass
class EvalResult:
    """Evaluation figures of one model on one labelled split: ``per_class`` accuracy (None for a class
    absent from the split), ``confusion[t][p]`` (examples of true class ``t`` predicted as ``p``) and,
    when asked for, ``predictions`` (int64 ``[n]`` on the CPU)."""

    accuracy: float
    loss: float
    n: int
    per_class: list
    confusion: list
    class_names: list | None = None
    predictions: torch.Tensor | None = None

    @classmethod
    def of(cls, confusion: torch.Tensor, loss_sum: float, **fields) -> "EvalResult":
        """The figures of a ``[K, K]`` confusion matrix and the summed loss over its examples."""
        correct, support = confusion.diag().tolist(), confusion.sum(dim=1).tolist()
        n = sum(support)
        per_class = [c / s if s else None for c, s in zip(correct, support)]
        return cls(sum(correct) / n, loss_sum / n, n, per_class, confusion.tolist(), **fields)

    def to_dict(self) -> dict:
        """JSON-safe dict (without predictions)."""
        d = asdict(self)
        d.pop("predictions")
        return d


def model_loss(model: nn.Module, label_smoothing: float = 0.0):
    """``(outputs [N, K], targets [N]) -> mean loss``: ``model.loss`` when it defines one (LeNet-5 1998's
    RBF criterion), else cross-entropy with ``label_smoothing`` (training uses the run's; reports none)."""
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
    """Accuracy, mean loss, per-class accuracy and confusion matrix of ``model`` (on ``device``, left in
    eval mode) on ``split`` (``x`` ``uint8 [N, C, H, W]`` prepared with ``spec``, ``y`` int64 ``[N]``),
    accumulated on the device and synchronised once."""
    if split.y is None:
        raise DataError("cannot evaluate on an unlabelled split (no labels)")
    if len(split) == 0:
        raise DataError("cannot evaluate on an empty split")
    device = torch.device(device)
    loss_fn = model_loss(model)
    model.eval()
    x_all, y_all = split.x.to(device), split.y.to(device)
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    preds = []
    for start in range(0, len(split), batch_size):
        xb, yb = prepare(x_all[start : start + batch_size], spec), y_all[start : start + batch_size]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            out = model(xb).float()
        total_loss += loss_fn(out, yb).double() * yb.shape[0]
        preds.append(out.argmax(dim=1))
    pred = torch.cat(preds)
    k = max(out.shape[1], int(y_all.max().item()) + 1)
    confusion = torch.bincount(y_all * k + pred, minlength=k * k).view(k, k).cpu()
    names = list(class_names) if class_names is not None else None
    return EvalResult.of(
        confusion, total_loss.item(), class_names=names, predictions=pred.cpu() if keep_predictions else None
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
    """Exact evaluation over ``world_size`` processes: this one evaluates ``split[rank::world_size]`` and the
    confusion matrices and loss sums are summed with ``all_reduce_sum`` (sums a tensor in place over the
    processes and returns it), so every process gets the :class:`EvalResult` of the whole split. One
    process, a split smaller than the world, an unlabelled split or ``keep_predictions`` evaluate whole."""
    w = world_size
    if w == 1 or len(split) < w or split.y is None or kwargs.get("keep_predictions"):
        return evaluate(model, split, spec, device, batch_size, **kwargs)
    res = evaluate(model, Split(split.x[rank::w], split.y[rank::w]), spec, device, batch_size, **kwargs)
    device = torch.device(device)
    k = len(res.confusion)
    sizes = torch.zeros(w, dtype=torch.float64, device=device)
    sizes[rank] = k
    k_all = int(all_reduce_sum(sizes).max().item())  # shards may see different label ranges
    conf = torch.zeros(k_all, k_all, dtype=torch.float64)
    conf[:k, :k] = torch.tensor(res.confusion, dtype=torch.float64)
    packed = torch.cat([conf.flatten(), torch.tensor([res.loss * res.n], dtype=torch.float64)])
    packed = all_reduce_sum(packed.to(device)).cpu()
    return EvalResult.of(packed[:-1].view(k_all, k_all).round().long(), float(packed[-1]), class_names=res.class_names)


def format_result(res: EvalResult) -> str:
    """Human-readable report: accuracy, loss, per-class accuracy and the confusion matrix."""
    names = res.class_names or [str(i) for i in range(len(res.per_class))]
    width = max(5, *(len(n) for n in names))
    errors = res.n - round(res.accuracy * res.n)
    lines = [
        f"accuracy {res.accuracy:.4f}  loss {res.loss:.4f}  (n={res.n}, errors={errors})",
        "",
        "per-class accuracy:",
    ]
    for name, acc, row in zip(names, res.per_class, res.confusion):
        lines.append(f"  {name:>{width}}  {'n/a' if acc is None else f'{acc:.4f}'}  (n={sum(row)})")
    lines += ["", "confusion matrix (rows: true class, columns: predicted):"]
    lines.append(" " * (width + 2) + " ".join(f"{n:>{width}}" for n in names))
    for name, row in zip(names, res.confusion):
        lines.append(f"  {name:>{width}}" + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
