"""Tests of the step profile (lenetlab.apps.bench_step, `lenet bench train --profile`) on the embedded subset.

Speeds are not asserted (shared, noisy machine): only that every phase of every path is timed, the
figures hang together, and the command prints them.
"""

from __future__ import annotations

import json

import pytest
import torch

from lenetlab.apps.bench_step import PHASES, op_profile, step_profile
from lenetlab.cli import main
from lenetlab.errors import LenetlabError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_step_profile_times_every_phase_of_every_path(subset):
    res = step_profile(subset, steps=8, rounds=2, warmup=1)
    names = [p["name"] for p in res["paths"]]
    assert names == ["baseline", "lenetlab", "lenetlab + channels-last", "lenetlab + channels-last + bf16"]
    assert res["phases"] == list(PHASES) and res["batch_size"] == 64 and res["steps"] == 8
    for p in res["paths"]:
        assert set(p["phases_ms"]) == set(PHASES) and all(v > 0 for v in p["phases_ms"].values()), p
        assert p["phase_sum_ms"] == pytest.approx(sum(p["phases_ms"].values()))
        assert p["total_ms"] > 0  # medians of phases and of totals differ by noise: not compared (shared CPU)
        assert p["examples_per_sec"] == pytest.approx(64 / p["total_ms"] * 1000)
        assert p["model_step_ms"] > 0 and p["cap_free_data"] == pytest.approx(
            res["paths"][0]["total_ms"] / p["model_step_ms"]
        )
    assert res["paths"][0]["vs_baseline"] == 1.0
    assert "target" not in res  # targets are the docs' business; the result holds figures
    assert torch.get_num_threads() == 1  # restored


def test_step_profile_without_levers_and_at_two_threads_restores_the_thread_count(subset):
    res = step_profile(subset, steps=3, rounds=3, warmup=0, threads=2, levers=False)
    assert [p["name"] for p in res["paths"]] == ["baseline", "lenetlab"] and res["threads"] == 2
    assert torch.get_num_threads() == 1


def test_step_profile_needs_a_full_batch(subset):
    with pytest.raises(LenetlabError, match="no full batch of 2000"):
        step_profile(subset, steps=3, batch_size=2000)


def test_op_profile_lists_the_top_aten_operators(subset):
    out = op_profile(subset, steps=2, top=3, warmup=1)
    ops = out["ops"]
    assert out["path"] == "lenetlab" and out["steps"] == 2 and out["profiled_ms_per_step"] > 0
    assert len(ops) == 3 and all(o["op"].startswith("aten::") for o in ops)
    assert [o["self_ms_per_step"] for o in ops] == sorted((o["self_ms_per_step"] for o in ops), reverse=True)
    assert all(0 < o["share"] <= 1 and o["calls_per_step"] > 0 for o in ops)


def test_cli_bench_train_profile_prints_the_table(subset, capsys):
    assert main(["bench", "train", "--profile", "--dataset", "mnist-subset", "--steps", "3", "--no-levers"]) == 0
    out = capsys.readouterr().out
    assert "data ms  forward ms  backward ms  optimiser ms  total ms" in out
    assert "baseline: a typical tutorial's per-sample PIL pipeline + DataLoader" in out and "\nlenetlab " in out
    assert "model step alone ms  cap with free data" in out and "top aten operators" in out


def test_cli_bench_train_profile_json(subset, capsys):
    assert (
        main(
            [
                "bench",
                "train",
                "--profile",
                "--dataset",
                "mnist-subset",
                "--steps",
                "3",
                "--threads",
                "1",
                "--no-levers",
                "--json",
            ]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res["dataset"] == "mnist-subset" and res["threads"] == 1 and res["steps"] == 3
    assert [p["name"] for p in res["paths"]] == ["baseline", "lenetlab"] and res["ops"]["ops"]
    assert "time_to_accuracy" not in res and "throughput" not in res  # only the profile runs


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--threads", "1", "2"], "one thread count"),
        (["--compile"], "not with --compile"),
        (["--steps", "2"], "--steps must be at least 3"),
    ],
)
def test_cli_bench_train_profile_bad_flags_are_one_line(flags, words, capsys):
    assert main(["bench", "train", "--profile", "--dataset", "mnist-subset", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err
