"""``lenet bench ops``: loop reference vs from-scratch im2col vs PyTorch, on LeNet-5's shapes.

Times forward (under ``no_grad``) and forward+backward (gradients of input, weight and bias for a
fixed random output gradient) of each LeNet-5 layer and of the whole network, as ratios to PyTorch
measured in the same run: the fastest block of ``torch.utils.benchmark`` (:mod:`lenetlab.timing`).
The loop reference is far too slow for that, so it is timed over one call; at large batches its
forward+backward runs on a *sub-batch* whose time is scaled linearly to the batch (rows marked ``~``).
"""

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from lenetlab import timing
from lenetlab.benchfmt import BenchResult
from lenetlab.errors import ConfigError
from lenetlab.models import create
from lenetlab.models.lenet_scratch import to_loop_reference, torch_to_scratch
from lenetlab.ops import functional as OF
from lenetlab.ops import reference as R

# name, kind, (C_in, H, W), out_channels (conv only)
LAYERS = [
    ("C1", "conv", (1, 32, 32), 6),
    ("S2", "maxpool", (6, 28, 28), None),
    ("C3", "conv", (6, 14, 14), 16),
    ("S4", "avgpool", (16, 10, 10), None),
    ("C5", "conv", (16, 5, 5), 120),
]


@dataclass
class Row:
    """One benchmark line: times in milliseconds (``None`` where not measured); ``mode``: fwd or fwd+bwd."""

    what: str
    batch: int
    mode: str
    torch_ms: float
    scratch_ms: float
    loop_ms: float | None
    loop_note: str = ""

    @property
    def scratch_ratio(self) -> float:
        return self.scratch_ms / self.torch_ms

    @property
    def loop_ratio(self) -> float | None:
        return None if self.loop_ms is None else self.loop_ms / self.torch_ms

    def to_dict(self) -> dict:
        """The row's fields and both ratios, JSON-safe."""
        return dict(asdict(self), scratch_ratio=self.scratch_ratio, loop_ratio=self.loop_ratio)


def _run(f, args, wrt, grad_out, mode: str):
    """A call of ``f(*args)``: under ``no_grad`` (``mode`` "fwd"), or with the gradients of ``wrt`` for ``grad_out``."""
    if mode == "fwd":

        def run():
            with torch.no_grad():
                f(*args)
    else:

        def run():
            torch.autograd.grad(f(*args), wrt, grad_out)

    return run


def _layer_fns(kind: str, shape, out_ch, batch: int, gen: torch.Generator):
    """(torch fn, scratch fn, loop module, args, loop conv or None) for one layer at ``batch``."""
    c, h, w = shape
    x = torch.randn(batch, c, h, w, generator=gen)
    if kind == "conv":
        conv = R.LoopConv2d(c, out_ch, 5, init="torch")
        wt, b = conv.weight.detach().clone(), conv.bias.detach().view(-1).clone()
        return F.conv2d, OF.conv2d, conv, [x, wt, b], conv
    pool = R.LoopPool2d((2, 2), "max" if kind == "maxpool" else "avg", stride=2)
    tf = (lambda x_: F.max_pool2d(x_, 2)) if kind == "maxpool" else (lambda x_: F.avg_pool2d(x_, 2))
    sf = (lambda x_: OF.max_pool2d(x_, 2)) if kind == "maxpool" else (lambda x_: OF.avg_pool2d(x_, 2))
    return tf, sf, pool, [x], None


def _row(what: str, batch: int, mode: str, times: list, make_loop_run, loop: bool, subs: tuple[int, int]) -> Row:
    """The row of one measurement: ``times`` (torch, scratch) in seconds; the loop reference, when ``loop``, timed
    once on ``min(batch, sub)`` samples (``make_loop_run(n)``) and scaled linearly to ``batch``."""
    loop_ms, note = None, ""
    if loop:
        n = min(batch, subs[mode != "fwd"])
        loop_ms = timing.seconds(make_loop_run(n)) * batch / n * 1e3
        note = "" if n == batch else f"~ sub-batch {n} x{batch / n:g}"
    return Row(what, batch, mode, times[0] * 1e3, times[1] * 1e3, loop_ms, note)


def bench_layers(
    batches=(1, 256),
    min_run_time: float = 0.2,
    loop: bool = True,
    loop_sub_fwd: int = 256,
    loop_sub_bwd: int = 32,
    seed: int = 0,
) -> list[Row]:
    """Per-layer rows (C1, S2, C3, S4, C5) for every batch size in ``batches``."""
    rows = []
    gen = torch.Generator().manual_seed(seed)
    for batch in batches:
        for name, kind, shape, out_ch in LAYERS:
            tf, sf, loop_mod, args, conv = _layer_fns(kind, shape, out_ch, batch, gen)
            args = [a.requires_grad_() for a in args]
            grad_out = torch.randn_like(tf(*args).detach())
            for mode in ("fwd", "fwd+bwd"):
                # the loop variables bound as defaults: _row calls loop_run at once, and this makes it explicit
                def loop_run(n, mode=mode, args=args, conv=conv, loop_mod=loop_mod, grad_out=grad_out):
                    x = args[0].detach()[:n].clone().requires_grad_()
                    wrt = [x] + ([conv.weight, conv.bias] if conv is not None else [])
                    return _run(loop_mod, [x], wrt, grad_out[:n], mode)

                times = [timing.best_block(_run(f, args, args, grad_out, mode), min_run_time) for f in (tf, sf)]
                rows.append(_row(name, batch, mode, times, loop_run, loop, (loop_sub_fwd, loop_sub_bwd)))
    return rows


def bench_network(
    batches=(1, 256),
    min_run_time: float = 0.2,
    loop: bool = True,
    loop_sub_fwd: int = 256,
    loop_sub_bwd: int = 32,
    seed: int = 0,
) -> list[Row]:
    """Whole LeNet-5 rows: ``lenet5`` vs ``lenet5-scratch`` vs :class:`LoopLeNet`, same weights."""
    torch.manual_seed(seed)
    ref = create("lenet5")
    scratch = create("lenet5-scratch")
    scratch.load_state_dict(torch_to_scratch(ref.state_dict()))
    loop_net = R.LoopLeNet()
    loop_net.load_state_dict(to_loop_reference(ref.state_dict()))
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for batch in batches:
        x = torch.randn(batch, 1, 32, 32, generator=gen)
        grad_out = torch.randn(batch, 10, generator=gen)
        for mode in ("fwd", "fwd+bwd"):

            def loop_run(n, mode=mode, x=x, grad_out=grad_out):
                return _run(loop_net, [x[:n]], list(loop_net.parameters()), grad_out[:n], mode)

            times = [
                timing.best_block(_run(m, [x], list(m.parameters()), grad_out, mode), min_run_time)
                for m in (ref, scratch)
            ]
            rows.append(_row("LeNet-5", batch, mode, times, loop_run, loop, (loop_sub_fwd, loop_sub_bwd)))
    return rows


def run_ops_bench(
    quick: bool = False, batches=(1, 256), loop: bool = True, threads: int | None = None, seed: int = 0
) -> BenchResult:
    """The layer and network benchmarks on ``threads`` torch threads (None: torch's setting); ``quick``
    shortens every measurement (noisier) and the loop reference's sub-batches."""
    if not batches or min(batches) < 1:
        raise ConfigError(f"--batches must be positive integers, got {list(batches)}")
    opts = dict(
        batches=tuple(batches),
        min_run_time=0.05 if quick else 0.2,
        loop=loop,
        loop_sub_fwd=32 if quick else 256,
        loop_sub_bwd=8 if quick else 32,
        seed=seed,
    )
    with timing.threads(threads) as n:
        start = time.perf_counter()
        rows = bench_layers(**opts) + bench_network(**opts)
        seconds = round(time.perf_counter() - start, 1)
    data = {"torch": torch.__version__, "threads": n, "quick": quick, "seconds": seconds}
    return BenchResult("bench-ops", {**data, "rows": [r.to_dict() for r in rows]})
