"""``lenet bench ops``: loop reference vs from-scratch im2col vs PyTorch, on LeNet-5's shapes.

Times forward (under ``no_grad``) and forward+backward (gradients of input, weight and bias with a
fixed random output gradient) of each LeNet-5 layer (C1, S2, C3, S4, C5) and of the whole network,
at batch 1 and 256, and prints every time as a ratio to PyTorch measured in the same run.

Timing: ``torch.utils.benchmark.Timer.blocked_autorange`` (warm-up, then the fastest of its timed
blocks, since on a shared machine other processes only add time) for the im2col and PyTorch versions. The loop reference is far too slow for that (its backward through
thousands of window slices takes about a minute for one batch of 256), so it is timed with
``time.perf_counter`` over a single call; its forward+backward at large batches runs on a
*sub-batch* whose time is scaled linearly to the full batch (an estimate: each window's slice
backward allocates a zero tensor as large as the whole input, so the cost grows about linearly
with the batch); such rows are marked ``~`` and the sub-batch is printed.

Like :mod:`lenetlab.apps.compare`, this is application code: it imports :mod:`lenetlab.models`
lazily for the whole-network rows.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer

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
    """One benchmark line: times in milliseconds (``None`` where not measured)."""

    what: str
    batch: int
    mode: str  # "fwd" or "fwd+bwd"
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


def _timer(fn, min_run_time: float) -> float:
    """Seconds per call of ``fn``: the fastest block of torch.utils.benchmark's ``blocked_autorange``."""
    m = Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time)
    # best block, not the median: on a shared machine other processes only ever add time
    return min(m.times)


def _once(fn) -> float:
    """Seconds of one call of ``fn`` (for the slow loop reference)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _fwd(f, *args):
    def run():
        with torch.no_grad():
            f(*args)
    return run


def _fwd_bwd(f, args, wrt, grad_out):
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


def _loop_time(make_run, batch: int, sub: int) -> tuple[float, str]:
    """Time the loop reference on ``min(batch, sub)`` samples, scaled linearly to ``batch``."""
    n = min(batch, sub)
    seconds = _once(make_run(n)) * batch / n
    return seconds, ("" if n == batch else f"~ sub-batch {n} x{batch / n:g}")


def bench_layers(batches=(1, 256), min_run_time: float = 0.2, loop: bool = True, loop_sub_fwd: int = 256,
                 loop_sub_bwd: int = 32, seed: int = 0) -> list[Row]:
    """Per-layer rows (C1, S2, C3, S4, C5) for every batch size in ``batches``."""
    rows = []
    gen = torch.Generator().manual_seed(seed)
    for batch in batches:
        for name, kind, shape, out_ch in LAYERS:
            tf, sf, loop_mod, args, conv = _layer_fns(kind, shape, out_ch, batch, gen)
            args = [a.requires_grad_() for a in args]
            grad_out = torch.randn_like(tf(*args).detach())
            for mode in ("fwd", "fwd+bwd"):
                if mode == "fwd":
                    t_torch, t_scr = _timer(_fwd(tf, *args), min_run_time), _timer(_fwd(sf, *args), min_run_time)
                else:
                    t_torch = _timer(_fwd_bwd(tf, args, args, grad_out), min_run_time)
                    t_scr = _timer(_fwd_bwd(sf, args, args, grad_out), min_run_time)
                loop_s, note = None, ""
                if loop:
                    def make_run(n, mode=mode):
                        x = args[0].detach()[:n].clone().requires_grad_()
                        wrt = [x] + ([conv.weight, conv.bias] if conv is not None else [])
                        if mode == "fwd":
                            return _fwd(loop_mod, x)
                        return _fwd_bwd(loop_mod, [x], wrt, grad_out[:n])
                    loop_s, note = _loop_time(make_run, batch, loop_sub_fwd if mode == "fwd" else loop_sub_bwd)
                rows.append(Row(name, batch, mode, t_torch * 1e3, t_scr * 1e3,
                                None if loop_s is None else loop_s * 1e3, note))
    return rows


def bench_network(batches=(1, 256), min_run_time: float = 0.2, loop: bool = True, loop_sub_fwd: int = 256,
                  loop_sub_bwd: int = 32, seed: int = 0) -> list[Row]:
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
            times = []
            for model in (ref, scratch):
                params = list(model.parameters())
                run = _fwd(model, x) if mode == "fwd" else _fwd_bwd(model, [x], params, grad_out)
                times.append(_timer(run, min_run_time))
            loop_s, note = None, ""
            if loop:
                def make_run(n, mode=mode):
                    if mode == "fwd":
                        return _fwd(loop_net, x[:n])
                    return _fwd_bwd(loop_net, [x[:n]], list(loop_net.parameters()), grad_out[:n])
                loop_s, note = _loop_time(make_run, batch, loop_sub_fwd if mode == "fwd" else loop_sub_bwd)
            rows.append(Row("LeNet-5", batch, mode, times[0] * 1e3, times[1] * 1e3,
                            None if loop_s is None else loop_s * 1e3, note))
    return rows


def _fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:,.0f}"


def _fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x" if r < 100 else f"{r:,.0f}x"


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table with ratios to PyTorch."""
    head = f"{'layer':<8}{'batch':>6}  {'mode':<8}{'torch ms':>10}{'im2col ms':>11}{'im2col/torch':>13}" \
           f"{'loop ms':>11}{'loop/torch':>12}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.what:<8}{r.batch:>6}  {r.mode:<8}{_fmt_ms(r.torch_ms):>10}{_fmt_ms(r.scratch_ms):>11}"
                     f"{_fmt_ratio(r.scratch_ratio):>13}{_fmt_ms(r.loop_ms):>11}{_fmt_ratio(r.loop_ratio):>12}"
                     f"  {r.loop_note}")
    return "\n".join(lines)


def target_summary(rows: list[Row], batch: int = 256) -> dict:
    """Where im2col conv forward+backward stands against the 2x-of-PyTorch target at ``batch``."""
    convs = [r for r in rows if r.what in ("C1", "C3", "C5") and r.batch == batch and r.mode == "fwd+bwd"]
    if not convs:
        return {}
    total = sum(r.scratch_ms for r in convs) / sum(r.torch_ms for r in convs)
    return {"batch": batch, "per_layer": {r.what: round(r.scratch_ratio, 3) for r in convs},
            "all_conv_layers": round(total, 3), "within_2x": {r.what: r.scratch_ratio <= 2 for r in convs}}


def run_ops_bench(quick: bool = False, batches=(1, 256), loop: bool = True, threads: int | None = None,
                  as_json: bool = False, seed: int = 0) -> dict:
    """Run the layer and network benchmarks, print the table (or JSON) and return the results.

    ``quick`` shortens every measurement (noisier) and the loop reference's sub-batches.
    ``threads`` sets ``torch.set_num_threads`` for the run (default: leave torch's setting).
    """
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be positive, got {threads}")
    if not batches or min(batches) < 1:
        raise ConfigError(f"--batches must be positive integers, got {list(batches)}")
    if threads is not None:
        torch.set_num_threads(threads)
    opts = dict(batches=tuple(batches), min_run_time=0.05 if quick else 0.2, loop=loop,
                loop_sub_fwd=32 if quick else 256, loop_sub_bwd=8 if quick else 32, seed=seed)
    start = time.perf_counter()
    rows = bench_layers(**opts) + bench_network(**opts)
    summary = target_summary(rows)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "quick": quick,
              "seconds": round(time.perf_counter() - start, 1),
              "rows": [dict(asdict(r), scratch_ratio=r.scratch_ratio, loop_ratio=r.loop_ratio) for r in rows],
              "conv_fwd_bwd_target": summary}
    if as_json:
        print(json.dumps(result, indent=2))
        return result
    print(f"lenet bench ops: torch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU; "
          f"times: best of timed blocks (loop: one call), ratios to PyTorch in the same run")
    print(format_table(rows))
    if summary:
        per = ", ".join(f"{k} {v:.2f}x" for k, v in summary["per_layer"].items())
        print(f"target (im2col conv fwd+bwd within 2x of PyTorch at batch {summary['batch']}): {per}; "
              f"all three conv layers together {summary['all_conv_layers']:.2f}x")
    if loop and any(r.loop_note for r in rows):
        print("~ loop reference timed once on a sub-batch and scaled linearly to the full batch (an estimate)")
    print(f"({result['seconds']} s)")
    return result
