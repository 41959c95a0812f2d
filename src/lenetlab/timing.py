"""The benchmarks' one timing harness: torch CPU threads set for a measurement and restored after it,
and the clocks every benchmark reads (seconds of one call, best block, median rate, latency percentiles)."""

import contextlib
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from lenetlab.errors import ConfigError


def check_threads(counts) -> list[int]:
    """``counts`` (one int or several) as a list of thread counts; a ConfigError unless all are positive."""
    counts = [int(t) for t in ([counts] if isinstance(counts, int) else counts)]
    if not counts or any(t < 1 for t in counts):
        raise ConfigError(f"--threads must be positive thread counts (got {counts})")
    return counts


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[int]:
    """Run the block with ``n`` torch CPU threads (None: the current count), then restore the count found
    on entry; yields the count in force."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(check_threads(n)[0])
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def seconds(fn: Callable[[], object]) -> float:
    """Wall seconds of one call of ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_block(fn: Callable[[], object], min_run_time: float) -> float:
    """Seconds per call of ``fn()``: the fastest block of ``torch.utils.benchmark``'s ``blocked_autorange``
    (the best, not the median: other processes on a shared machine only add time)."""
    from torch.utils.benchmark import Timer  # a slow import that only this clock needs

    return min(Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).times)


def rates(fn: Callable[[], int], repeats: int, warmup: int = 0) -> list[float]:
    """Items per second of each of ``repeats`` timed calls of ``fn()`` (which returns how many items it
    handled), after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = fn()
        out.append(n / (time.perf_counter() - start))
    return out


def median_rate(fn: Callable[[], int], repeats: int, warmup: int = 0) -> float:
    """The median of :func:`rates`."""
    return float(np.median(rates(fn, repeats, warmup)))


def latency(fn: Callable[[object], object], inputs: list, calls: int, warmup: int = 0) -> dict:
    """``{"p50_ms", "p99_ms", "mean_ms"}`` of ``calls`` timed calls ``fn(inputs[i])`` (cycling), after ``warmup``."""
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    times = np.array([seconds(lambda i=i: fn(inputs[i % len(inputs)])) for i in range(calls)])
    return {
        "p50_ms": float(np.percentile(times, 50) * 1e3),
        "p99_ms": float(np.percentile(times, 99) * 1e3),
        "mean_ms": float(times.mean() * 1e3),
    }
