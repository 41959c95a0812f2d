"""Where a batch-64 training step goes: data, forward, backward and optimiser, timed one by one.

The companion of :mod:`lenetlab.apps.bench_train` (``lenet bench train --profile``). Each path trains
NNDL ``lenet5`` with SGD (lr 0.1, no momentum) at the same batch size, one step at a time, and times
four phases of every step with :func:`time.perf_counter` (on the CPU every operator has finished
when its call returns, so the clock needs no synchronisation):

- **data**: the next batch from the path's loader, ready for the model (channels-last conversion included);
- **forward**: the model and the cross-entropy loss (inside bf16 autocast where the path uses it);
- **backward**: ``loss.backward()``;
- **optimizer**: ``optimizer.step()`` and ``optimizer.zero_grad()``.

The paths: the per-sample PIL pipeline (:class:`~lenetlab.train.baseline.PILPipelineDataset`
through a shuffling DataLoader), lenetlab's tensor-resident :class:`~lenetlab.data.loader.TensorLoader`
built as the Runner builds it, and that loader with channels-last, then channels-last + bf16 autocast.
Every path is also timed on one fixed, pre-made batch ("model step alone": forward + backward +
optimiser, no data), which bounds the ratio any input pipeline can reach: baseline step time / model
step time. Paths are measured in interleaved rounds (every path once per round) and each phase is
the median over all timed steps, so bursts of load on a shared machine hit every path alike. The
Runner's own bookkeeping (loss and accuracy meters, the scheduler, logging) is not part of these steps.

Optionally :func:`op_profile` lists the aten operators taking the most self CPU time in the plain
lenetlab step (:mod:`torch.profiler`).

Entry point: :func:`run_step_profile` (``lenet bench train --profile``, ``benchmarks/train_speed.py --profile``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lenetlab import data, timing
from lenetlab.benchfmt import BenchResult
from lenetlab.data.loader import TensorLoader
from lenetlab.device import autocast_dtype
from lenetlab.errors import LenetlabError
from lenetlab.train.baseline import baseline_model, pil_loader
from lenetlab.train.config import RunConfig
from lenetlab.train.setup import augment_transform, build_spec

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
    """One measured path: its model, optimiser, endless batches and step options."""

    name: str
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    batches: Iterator
    channels_last: bool = False
    amp: torch.dtype | None = None


def _endless(new_pass: Callable[[int], Iterator]) -> Iterator:
    """Batches of pass 0, 1, 2, ... without end (each pass reshuffles, as a new epoch does)."""
    epoch = 0
    while True:
        yield from new_pass(epoch)
        epoch += 1


def _baseline_path(splits, batch_size: int, seed: int) -> _Path:
    dl = pil_loader(splits.train, batch_size, seed, drop_last=True)  # every timed step is a full batch
    return _Path("baseline", *baseline_model(seed), _endless(lambda epoch: iter(dl)))


def _lenetlab_path(name: str, splits, batch_size: int, seed: int, **levers) -> _Path:
    cfg = RunConfig(
        model="lenet5", optimizer="sgd", lr=0.1, momentum=0.0, batch_size=batch_size, device="cpu", seed=seed, **levers
    )
    loader = TensorLoader(
        splits.train.x,
        splits.train.y,
        batch_size,
        shuffle=True,
        seed=seed,
        drop_last=True,
        transform=augment_transform(cfg),
        spec=build_spec(cfg, splits),
    )

    def new_pass(epoch: int):
        loader.set_epoch(epoch)
        return iter(loader)

    model, opt = baseline_model(seed)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return _Path(name, model, opt, _endless(new_pass), cfg.channels_last, autocast_dtype(torch.device("cpu"), cfg.amp))


def _next_batch(p: _Path):
    x, y = next(p.batches)
    if p.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def _step(p: _Path, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """One forward (with the loss), backward and optimiser step; their durations in seconds (timed apart,
    so this step is written out here rather than taken whole from the train package)."""
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=p.amp, enabled=p.amp is not None):
        loss = F.cross_entropy(p.model(x).float(), y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    p.opt.step()
    p.opt.zero_grad(set_to_none=True)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def _timed_steps(p: _Path, n: int) -> list[tuple[float, ...]]:
    """``n`` full steps of ``p``: (data, forward, backward, optimizer) seconds each."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        x, y = _next_batch(p)
        out.append((time.perf_counter() - t0, *_step(p, x, y)))
    return out


def _build_paths(splits, batch_size: int, seed: int, levers: bool) -> list[_Path]:
    paths = [_baseline_path(splits, batch_size, seed)]
    for name, kw in LENETLAB_PATHS[: None if levers else 1]:
        paths.append(_lenetlab_path(name, splits, batch_size, seed, **kw))
    return paths


def _ms(values) -> float:
    return float(np.median(values)) * 1000.0


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

    ``splits``: a :class:`~lenetlab.data.splits.Splits` whose train split (uint8 ``[N, 1, 28, 28]``,
    int64 ``[N]``; at least ``batch_size`` examples) feeds every path; the model sees float
    ``[batch_size, 1, 32, 32]``. Each path runs ``steps`` timed steps with data and ``steps`` timed
    steps on one fixed batch (the model step alone), spread over ``rounds`` interleaved rounds, each
    round after ``warmup`` untimed steps, with ``threads`` torch CPU threads (restored afterwards).
    ``levers``: also the channels-last and channels-last + bf16 paths.

    Returns ``{"batch_size", "threads", "steps", "rounds", "warmup", "phases", "paths"}``; ``paths`` is a
    list, baseline first, of ``{"name", "phases_ms": {phase: median ms}, "total_ms"`` (median of the
    per-step totals), ``"phase_sum_ms", "examples_per_sec"`` (``batch_size / total``), ``"model_step_ms"``
    (median forward + backward + optimiser on the fixed batch), ``"vs_baseline"`` (baseline total / this
    total), ``"cap_free_data"}`` (baseline total / this path's model step: the ratio over the baseline
    if this path's data cost nothing).
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
        full = {p.name: [] for p in paths}
        alone = {p.name: [] for p in paths}
        per_round = [steps // rounds + (r < steps % rounds) for r in range(rounds)]
        for n in per_round:
            for p in paths:
                _timed_steps(p, warmup)
                full[p.name] += _timed_steps(p, n)
                alone[p.name] += [_step(p, *fixed[p.name]) for _ in range(n)]
    rows = []
    for p in paths:
        t = np.asarray(full[p.name])
        phases = {ph: _ms(t[:, i]) for i, ph in enumerate(PHASES)}
        total = _ms(t.sum(axis=1))
        rows.append(
            {
                "name": p.name,
                "phases_ms": phases,
                "total_ms": total,
                "phase_sum_ms": sum(phases.values()),
                "examples_per_sec": batch_size / total * 1000.0,
                "model_step_ms": _ms(np.asarray(alone[p.name]).sum(axis=1)),
            }
        )
    base = rows[0]["total_ms"]
    for r in rows:
        r["vs_baseline"] = base / r["total_ms"]
        r["cap_free_data"] = base / r["model_step_ms"]
    return {
        "batch_size": batch_size,
        "threads": threads,
        "steps": steps,
        "rounds": rounds,
        "warmup": warmup,
        "phases": list(PHASES),
        "paths": rows,
    }


def op_profile(
    splits, steps: int = 30, batch_size: int = 64, threads: int = 1, top: int = 6, seed: int = 0, warmup: int = 5
) -> dict:
    """The ``top`` aten operators by self CPU time in ``steps`` full steps of the plain lenetlab path.

    Recorded with :mod:`torch.profiler` (CPU activity) after ``warmup`` unrecorded steps; the
    profiler's own overhead inflates every figure a little. Returns ``{"path", "steps",
    "profiled_ms_per_step"`` (self CPU time of every recorded event, per step), ``"ops": [{"op",
    "self_ms_per_step", "share", "calls_per_step"}]}``, ``share`` being the fraction of
    ``profiled_ms_per_step``.
    """
    # imported here: it takes a while and only this function needs it
    from torch.profiler import ProfilerActivity, profile

    with timing.threads(threads):
        p = _lenetlab_path("lenetlab", splits, batch_size, seed)
        _timed_steps(p, warmup)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            _timed_steps(p, steps)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)  # microseconds
    aten = sorted((e for e in events if e.key.startswith("aten::")), key=lambda e: -e.self_cpu_time_total)[:top]
    return {
        "path": p.name,
        "steps": steps,
        "profiled_ms_per_step": total / steps / 1000.0,
        "ops": [
            {
                "op": e.key,
                "self_ms_per_step": e.self_cpu_time_total / steps / 1000.0,
                "share": e.self_cpu_time_total / total if total else 0.0,
                "calls_per_step": e.count / steps,
            }
            for e in aten
        ],
    }


def run_step_profile(
    dataset: str = "mnist",
    data_dir=None,
    quick: bool = False,
    steps: int | None = None,
    threads=None,
    levers: bool = True,
    ops: bool = True,
) -> BenchResult:
    """Load ``dataset``, run :func:`step_profile` (and :func:`op_profile` when ``ops``) and return the figures.

    ``steps`` timed steps per path (default 300, 100 with ``quick``); ``threads``: one torch CPU
    thread count, or a list holding one (default 1). The figures: the result of :func:`step_profile`
    plus ``dataset``, ``train_examples``, ``torch`` and ``ops``.
    """
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
