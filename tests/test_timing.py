"""The benchmarks' timing harness (lenetlab.timing): threads set and restored, one check, the clocks."""

from __future__ import annotations

import pytest
import torch

from lenetlab import timing
from lenetlab.errors import ConfigError


def test_threads_are_set_for_the_block_and_restored_even_on_error():
    old = torch.get_num_threads()
    with timing.threads(1) as n:
        assert n == torch.get_num_threads() == 1
    assert torch.get_num_threads() == old
    with pytest.raises(RuntimeError), timing.threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == old
    with timing.threads(None) as n:
        assert n == old


@pytest.mark.parametrize("bad", [0, -1, [1, 0], []])
def test_one_check_and_one_wording_for_thread_counts(bad):
    with pytest.raises(ConfigError, match=r"^--threads must be positive thread counts \(got "):
        timing.check_threads(bad)
    assert timing.check_threads(2) == [2] and timing.check_threads([1, 2]) == [1, 2]


def test_clocks():
    m = torch.nn.Linear(4, 2)
    x = torch.randn(16, 4)
    assert timing.median_rate(lambda: len(m(x)), repeats=3, warmup=1) > 0
    assert len(timing.rates(lambda: 1, repeats=4)) == 4
    lat = timing.latency(m, [x[i : i + 1] for i in range(16)], calls=50, warmup=2)
    assert 0 < lat["p50_ms"] <= lat["p99_ms"] and lat["mean_ms"] > 0
    assert 0 < timing.best_block(lambda: m(x), 0.01) < timing.seconds(lambda: [m(x) for _ in range(200)])
