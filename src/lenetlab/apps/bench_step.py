"""``lenet bench train --profile``: where a batch-64 training step goes, phase by phase.

Each path trains NNDL ``lenet5`` with SGD (lr 0.1, no momentum) at the same batch size through the
one training step (:func:`~lenetlab.train.step.train_step`), timed with :func:`time.perf_counter` (on
the CPU every operator has finished when its call returns): **data** (the next batch, ready for the
model), **forward** (the model and the loss, stamped by the loss function), **backward** (``zero_grad``
and the backward pass, up to the optimiser step, stamped by a step pre-hook), **optimizer** (the step).

Paths: the tutorials' per-sample PIL pipeline (:mod:`lenetlab.train.baseline`), lenetlab's
:class:`~lenetlab.data.loader.TensorLoader` as the Runner builds it (``train_loader``), and that loader with
channels-last, then channels-last + bf16 autocast. Each path is also timed on one fixed batch (the
model step alone, which bounds the speed-up any input pipeline can give). Paths run in interleaved
rounds and each figure is a median, so bursts of load on a shared machine hit every path alike.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from lenetlab import data, timing
from lenetlab.benchfmt import BenchResult
from lenetlab.device import autocast_dtype
from lenetlab.errors import LenetlabError
from lenetlab.train.baseline import baseline_model, pil_loader
from lenetlab.train.config import RunConfig
from lenetlab.train.setup import build_spec, train_loader
from lenetlab.train.step import make_scaler, train_step

__all__ = ["PHASES", "op_profile", "run_step_profile", "step_profile"]

#: The phases of one training step, in order.
PHASES = ("data", "forward", "backward", "optimizer")

#: The lenetlab paths: name and the RunConfig levers it sets.
LENETLAB_PATHS = (
    ("lenetlab", {}),
    ("lenetlab + channels-last", {"channels_last": True}),
    ("lenetlab + channels-last + bf16", {"channels_last": True, "amp": "bf16"}),
)


@dataclass
class _Path:
    """One measured path: its model, optimiser, endless batches, step options and the step's timestamps."""

    name: str
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    batches: Iterator
    channels_last: bool = False
    amp: torch.dtype | None = None
    stamps: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scaler = make_scaler(torch.device("cpu"), self.amp)
        self.opt.register_step_pre_hook(lambda *_: self.stamps.__setitem__("step", time.perf_counter()))

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, stamping the end of the forward pass."""
        loss = F.cross_entropy(outputs, targets)
        self.stamps["loss"] = time.perf_counter()
        return loss


def _endless(new_pass) -> Iterator:
    """Batches of ``new_pass(0)``, ``new_pass(1)``, ... without end (each pass reshuffles, as an epoch does)."""
    epoch = 0
    while True:
        yield from new_pass(epoch)
        epoch += 1


def _lenetlab_path(name: str, splits, batch_size: int, seed: int, **levers) -> _Path:
    fields = {"device": "cpu", "seed": seed, "drop_last": True, **levers}  # every timed step is a full batch
    cfg = RunConfig(model="lenet5", optimizer="sgd", lr=0.1, momentum=0.0, batch_size=batch_size, **fields)
    loader = train_loader(cfg, splits, build_spec(cfg, splits), "cpu")

    def new_pass(epoch: int):
        loader.set_epoch(epoch)
        return iter(loader)

    model, opt = baseline_model(seed)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return _Path(name, model, opt, _endless(new_pass), cfg.channels_last, autocast_dtype(torch.device("cpu"), cfg.amp))


def _build_paths(splits, batch_size: int, seed: int, levers: bool) -> list[_Path]:
    dl = pil_loader(splits.train, batch_size, seed, drop_last=True)  # every timed step is a full batch
    paths = [_Path("baseline", *baseline_model(seed), _endless(lambda epoch: iter(dl)))]
    return paths + [_lenetlab_path(n, splits, batch_size, seed, **kw) for n, kw in LENETLAB_PATHS[: 3 if levers else 1]]


def _next_batch(p: _Path):
    x, y = next(p.batches)
    return (x.contiguous(memory_format=torch.channels_last) if p.channels_last else x), y


def _step(p: _Path, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """Forward (with the loss), backward and optimiser seconds of one :func:`train_step`."""
    t0 = time.perf_counter()
    train_step(p.model, p.opt, x, y, p.loss, p.scaler, amp=p.amp)
    t3 = time.perf_counter()
    return p.stamps["loss"] - t0, p.stamps["step"] - p.stamps["loss"], t3 - p.stamps["step"]


def _timed_steps(p: _Path, n: int) -> list[tuple[float, ...]]:
    """``n`` full steps of ``p``: (data, forward, backward, optimizer) seconds each."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        x, y = _next_batch(p)
        out.append((time.perf_counter() - t0, *_step(p, x, y)))
    return out


def _ms(values) -> float:
    return float(np.median(values)) * 1000.0


def _row(name: str, full: list, alone: list, batch_size: int) -> dict:
    t = np.asarray(full)
    phases = {ph: _ms(t[:, i]) for i, ph in enumerate(PHASES)}
    total = _ms(t.sum(axis=1))
    return {
        "name": name,
        "phases_ms": phases,
        "total_ms": total,
        "phase_sum_ms": sum(phases.values()),
        "examples_per_sec": batch_size / total * 1000.0,
        "model_step_ms": _ms(np.asarray(alone).sum(axis=1)),
    }


def step_profile(
    splits,
    steps: int = 300,
    batch_size: int = 64,
    threads: int = 1,
    warmup: int = 10,
    rounds: int = 3,
    seed: int = 0,
    levers: bool = True,
) -> dict:
    """Median milliseconds of each phase of a training step, for the baseline and the lenetlab paths.

    The train split of ``splits`` (uint8 ``[N, 1, 28, 28]``, at least ``batch_size`` examples) feeds
    every path. Each path runs ``steps`` timed steps with data and ``steps`` on one fixed batch, over
    ``rounds`` interleaved rounds after ``warmup`` untimed steps each, on ``threads`` torch threads.
    ``levers``: also the channels-last and bf16 paths. ``paths``: one row per path, baseline first,
    with ``phases_ms``, ``total_ms`` (median of the step totals), ``model_step_ms`` (the fixed batch),
    ``vs_baseline`` and ``cap_free_data`` (baseline total / this path's model step).
    """
    if steps < 1 or rounds < 1 or warmup < 0:
        raise LenetlabError(
            f"step profile: steps and rounds must be positive, warmup not negative "
            f"(got steps={steps}, rounds={rounds}, warmup={warmup})"
        )
    if len(splits.train) < batch_size:
        raise LenetlabError(f"step profile: {len(splits.train)} training examples hold no full batch of {batch_size}")
    with timing.threads(threads):
        paths = _build_paths(splits, batch_size, seed, levers)
        fixed = {p.name: _next_batch(p) for p in paths}
        full, alone = {p.name: [] for p in paths}, {p.name: [] for p in paths}
        for n in [steps // rounds + (r < steps % rounds) for r in range(rounds)]:
            for p in paths:
                _timed_steps(p, warmup)
                full[p.name] += _timed_steps(p, n)
                alone[p.name] += [_step(p, *fixed[p.name]) for _ in range(n)]
    rows = [_row(p.name, full[p.name], alone[p.name], batch_size) for p in paths]
    for r in rows:
        r["vs_baseline"] = rows[0]["total_ms"] / r["total_ms"]
        r["cap_free_data"] = rows[0]["total_ms"] / r["model_step_ms"]
    run = {"batch_size": batch_size, "threads": threads, "steps": steps, "rounds": rounds, "warmup": warmup}
    return {**run, "phases": list(PHASES), "paths": rows}


def op_profile(
    splits, steps: int = 30, batch_size: int = 64, threads: int = 1, top: int = 6, seed: int = 0, warmup: int = 5
) -> dict:
    """The ``top`` aten operators by self CPU time in ``steps`` full steps of the plain lenetlab path
    (:mod:`torch.profiler`, after ``warmup`` steps; its overhead inflates every figure a little):
    ``{"path", "steps", "profiled_ms_per_step", "ops": [{"op", "self_ms_per_step", "share", "calls_per_step"}]}``."""
    from torch.profiler import ProfilerActivity, profile  # a slow import that only this function needs

    with timing.threads(threads):
        p = _lenetlab_path("lenetlab", splits, batch_size, seed)
        _timed_steps(p, warmup)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            _timed_steps(p, steps)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)  # microseconds
    aten = sorted((e for e in events if e.key.startswith("aten::")), key=lambda e: -e.self_cpu_time_total)[:top]
    ops = [
        {
            "op": e.key,
            "self_ms_per_step": e.self_cpu_time_total / steps / 1000.0,
            "share": e.self_cpu_time_total / total if total else 0.0,
            "calls_per_step": e.count / steps,
        }
        for e in aten
    ]
    return {"path": p.name, "steps": steps, "profiled_ms_per_step": total / steps / 1000.0, "ops": ops}


def run_step_profile(
    dataset: str = "mnist",
    data_dir=None,
    quick: bool = False,
    steps: int | None = None,
    threads=None,
    levers: bool = True,
    ops: bool = True,
) -> BenchResult:
    """Load ``dataset`` and return :func:`step_profile` (and :func:`op_profile` when ``ops``) at one thread
    count (default 1), ``steps`` steps per path (default 300, 100 with ``quick``)."""
    threads = timing.check_threads(1 if threads is None else threads)
    if len(threads) != 1:
        raise LenetlabError(f"--profile measures at one thread count; give one --threads (got {threads})")
    steps = steps or (100 if quick else 300)
    if steps < 3:
        raise LenetlabError(f"--steps must be at least 3 (got {steps})")
    splits = data.load(dataset, data_dir=data_dir)
    res = {
        "dataset": splits.name,
        "train_examples": len(splits.train),
        "torch": torch.__version__,
        **step_profile(splits, steps=steps, batch_size=64, threads=threads[0], rounds=3, levers=levers),
    }
    if ops:
        res["ops"] = op_profile(splits, steps=min(30, steps), threads=threads[0])
    return BenchResult("bench-step-profile", res)
