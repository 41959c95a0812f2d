"""Model profiles like torchinfo's: per-layer output shapes (forward hooks), parameters and compute
(:class:`torch.utils.flop_counter.FlopCounterMode`: matrix multiplies and convolutions only, so MACs =
FLOPs / 2), from one forward pass at batch 1 in eval mode."""

import contextlib
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from lenetlab.errors import LenetlabError, first_line
from lenetlab.models.registry import create, list_models, model_info
from lenetlab.models.trace import trace
from lenetlab.textfmt import align


@dataclass
class LayerRow:
    """One row of a profile: a leaf module, or a module owning parameters or compute directly."""

    name: str  # dotted path inside the model, e.g. "C3.convs.0"
    type: str
    output_shape: list  # of the first call, batch dimension included (batch 1)
    params: int  # parameters owned directly by this module
    trainable: str  # "yes", "no", "partly" or "-" (no parameters)
    flops: int
    macs: int
    calls: int = 1
    formula: int | None = None  # the model's reference hand count for this layer, where it has one


@dataclass
class Profile:
    """A model's profile: rows and totals; :meth:`to_dict` is its JSON form."""

    model: str
    input_size: tuple[int, int, int]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    buffers: int  # numel of buffers (e.g. batch-norm running statistics); not parameters
    flops: int
    macs: int
    params_mb: float
    formula_total: int | None = None
    formula_name: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain-data form (for ``--json``)."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["convention"] = "1 MAC = 2 FLOPs; FLOPs counted by torch.utils.flop_counter (matmul/conv only)"
        return d


def nndl_formula(module: nn.Module, out_shape) -> int | None:
    """NNDL's hand count for one layer with output ``out_shape`` ``[1, ...]`` (``None`` for other kinds)."""
    out = math.prod(out_shape[1:])
    if isinstance(module, nn.Conv2d):
        k = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
        return out * k + (out if module.bias is not None else 0)
    if isinstance(module, nn.AvgPool2d):
        return out
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    return 0 if isinstance(module, (nn.MaxPool2d, nn.ReLU, nn.Flatten)) else None


def _shape(out):
    if isinstance(out, torch.Tensor):
        return list(out.shape)
    if isinstance(out, (tuple, list)):
        return [_shape(o) for o in out]
    return []


def _trace(model: nn.Module, input_size, name: str, count_flops: bool = True):
    """``(shapes, calls, counter)`` of one run of ``model`` on a seeded random ``[1, *input_size]`` (eval
    mode, no grad): each called module's first output shape, its call count (in the order of first calls),
    and the flop counter."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False) if count_flops else None
    named = [(n, m) for n, m in model.named_modules() if n]
    x = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(0))
    try:
        with trace(named) as records, torch.no_grad(), counter or contextlib.nullcontext():
            model(x)
    except (RuntimeError, ValueError) as e:  # torch's layers raise RuntimeError, lenetlab.ops' ValueError
        size = "x".join(map(str, input_size))
        raise LenetlabError(f"{name or type(model).__name__}: cannot run on a {size} input ({first_line(e)})") from None
    finally:
        model.train(was_training)
    shapes, calls = {}, {}
    for call in records:
        calls[call.name] = calls.get(call.name, 0) + 1
        shapes.setdefault(call.name, _shape(call.output))
    return shapes, calls, counter


def trace_shapes(model: nn.Module, input_size, name: str = "") -> list[tuple[str, str, list]]:
    """``(dotted name, type, first output shape)`` of every module ``model`` calls on ``[1, *input_size]``,
    in the order of first calls (containers before the modules inside them)."""
    shapes = _trace(model, input_size, name, count_flops=False)[0]
    modules = dict(model.named_modules())
    return [(n, type(modules[n]).__name__, shape) for n, shape in shapes.items()]


def _rows(model: nn.Module, shapes: dict, calls: dict, counter: FlopCounterMode) -> list[LayerRow]:
    """One row per called module that is a leaf or owns parameters or compute directly; a row's compute
    excludes that of the called modules nested in it, so the rows add up to the total."""
    counts, prefix = counter.get_flop_counts(), type(model).__name__
    modules = dict(model.named_modules())
    formula_name = getattr(model, "formula_name", None)
    layer_formula = getattr(model, "layer_formula", nndl_formula)

    def own(n: str) -> int:
        return int(sum(counts.get(f"{prefix}.{n}" if n else prefix, {}).values()))

    order = list(calls)
    parent, nested = {}, {}
    for n in order:
        parts = n.split(".")
        ancestors = (".".join(parts[:k]) for k in range(len(parts) - 1, 0, -1))
        parent[n] = next((a for a in ancestors if a in calls), "")
        nested[parent[n]] = nested.get(parent[n], 0) + own(n)
    rows = []
    for n in [*order, ""]:
        m = modules[n]
        is_leaf = n and not any(parent[c] == n for c in order)
        direct = own(n) - nested.get(n, 0)
        params = list(m.parameters(recurse=False))
        if not is_leaf and not params and direct == 0:
            continue
        flags = {p.requires_grad for p in params}
        trainable = "-" if not params else ("yes" if flags == {True} else "no" if flags == {False} else "partly")
        shape = shapes.get(n, [])
        formula = layer_formula(m, shape) if formula_name and is_leaf else None
        name, numel, count = n or f"({prefix}.forward)", sum(p.numel() for p in params), calls.get(n, 1)
        rows.append(LayerRow(name, type(m).__name__, shape, numel, trainable, direct, direct // 2, count, formula))
    return rows


def profile_module(model: nn.Module, input_size, name: str = "") -> Profile:
    """Profile ``model`` on one seeded random input ``[1, C, H, W]`` (its mode restored afterwards)."""

    shapes, calls, counter = _trace(model, input_size, name)
    rows = _rows(model, shapes, calls, counter)
    formula_name = getattr(model, "formula_name", None)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    flops = int(counter.get_total_flops())
    return Profile(
        model=name or type(model).__name__,
        input_size=tuple(input_size),
        rows=rows,
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        buffers=sum(b.numel() for b in model.buffers() if b.is_floating_point()),
        flops=flops,
        macs=flops // 2,
        params_mb=round(sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20, 3),
        formula_total=sum(r.formula or 0 for r in rows) if formula_name else None,
        formula_name=formula_name,
        notes=list(getattr(model, "profile_notes", ())),
    )


#: Largest ``--input-size`` profiled: one real forward pass runs, its activations must fit in memory.
MAX_SIDE, MAX_CHANNELS = 2048, 64


def _parse_size(input_size) -> tuple[int, int, int]:
    try:
        size = tuple(int(v) for v in input_size)
    except (TypeError, ValueError):
        size = ()
    if len(size) != 3 or min(size) <= 0:
        raise LenetlabError(f"--input-size: expected three positive integers C H W, got {input_size!r}")
    if max(size[1:]) > MAX_SIDE or size[0] > MAX_CHANNELS:
        # the profile runs a real forward pass: VGG-11 at 4096x4096 would need ~9 GB of activations
        raise LenetlabError(
            f"--input-size: {'x'.join(map(str, size))} is too large to profile (at most "
            f"{MAX_CHANNELS} channels and {MAX_SIDE} pixels a side)"
        )
    return size


def profile_model(name: str, input_size=None, num_classes: int = 10, **kwargs) -> Profile:
    """Build registered model ``name`` for ``input_size`` ``(C, H, W)`` (``None``: the registry's) and profile it."""
    info = model_info(name)
    if num_classes < 1:
        raise LenetlabError(f"--num-classes: must be a positive integer, got {num_classes}")
    size = info.input_size if input_size is None else _parse_size(input_size)
    model = create(name, num_classes=num_classes, in_channels=size[0], **kwargs)
    return profile_module(model, size, name=name)


def format_profile(p: Profile) -> str:
    """A torchinfo-like text table of ``p`` with totals and the model's notes."""
    formula = p.formula_total is not None
    head = ["layer", "type", "output shape", "params", "trainable", "MACs", "FLOPs"]
    table = [head + ["formula"] if formula else head]
    for r in p.rows:
        flat = r.output_shape and isinstance(r.output_shape[0], int)
        shape = "x".join(map(str, r.output_shape[1:])) if flat else str(r.output_shape)
        name = r.name + (f" (x{r.calls})" if r.calls > 1 else "")
        line = [name, r.type, shape, f"{r.params:,}", r.trainable, f"{r.macs:,}", f"{r.flops:,}"]
        table.append(line + (["" if r.formula is None else f"{r.formula:,}"] if formula else []))
    lines = align(table, right={3, 5, 6, 7})
    rule = "-" * max(map(len, lines))
    out = [
        f"{p.model}  (input {'x'.join(map(str, p.input_size))}, batch 1)",
        rule,
        lines[0],
        rule,
        *lines[1:],
        rule,
        f"total params:         {p.total_params:,}",
        f"trainable params:     {p.trainable_params:,}",
        f"non-trainable params: {p.non_trainable_params:,}",
        f"buffers (not params): {p.buffers:,}",
        f"params size (MB):     {p.params_mb}",
        f"MACs:                 {p.macs:,}",
        f"FLOPs:                {p.flops:,}   (1 MAC = 2 FLOPs; counted by torch.utils.flop_counter:"
        " matmul/conv only, no bias, pooling, activation or batch norm)",
    ]
    if formula:
        out.append(f"formula ({p.formula_name}): {p.formula_total:,}")
    return "\n".join(out + [f"note: {n}" for n in p.notes])


def _count_params(name: str, input_size) -> int:
    # Build on the meta device: no memory or init time even for VGG-11's 129M parameters.
    try:
        with torch.device("meta"):
            model = create(name, in_channels=input_size[0])
    except Exception:  # a model whose constructor needs real tensors
        model = create(name, in_channels=input_size[0])
    return sum(p.numel() for p in model.parameters())


def describe_models() -> list[dict]:
    """Every registered model as ``{"name", "input_size", "params", "description"}`` (10 classes)."""
    rows = [(i.name, list(i.input_size), _count_params(i.name, i.input_size), i.description) for i in list_models()]
    return [dict(zip(("name", "input_size", "params", "description"), row)) for row in rows]
