"""Tests of the training-speed benchmark (lenetlab.apps.bench_train, `lenet bench train`) on the embedded subset.

Speed targets are not asserted (shared, noisy machine): only that every figure is produced,
well-formed, and that the baseline pipeline does what NNDL's pipeline does.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from lenetlab.apps.bench_train import (
    FAST_LENET5,
    baseline_time_to_accuracy,
    fast_lenet5,
    measure_throughputs,
    time_to_accuracy,
)
from lenetlab.cli import main
from lenetlab.train.baseline import PILPipelineDataset

pytestmark = pytest.mark.usefixtures("one_thread")


def test_pil_pipeline_matches_pil_resize_and_normalise(subset):
    ds = PILPipelineDataset(subset.train.x, subset.train.y)
    x, y = ds[3]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32 and y == int(subset.train.y[3])
    ref = Image.fromarray(subset.train.x[3, 0].numpy(), mode="L").resize((32, 32), Image.BILINEAR)
    ref = (np.asarray(ref, dtype=np.float32) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(x[0].numpy(), ref, atol=1e-6)
    assert len(ds) == len(subset.train)
    # NNDL's quirk, Normalize(127.5, 127.5) on [0, 1] pixels, squeezes inputs into [-1, -0.992]
    q, _ = PILPipelineDataset(subset.train.x[:1], subset.train.y[:1], mean=127.5, std=127.5)[0]
    assert q.min() >= -1.0 and q.max() <= -0.992


def test_fast_recipe_is_the_shipped_config():
    from lenetlab.train.config import load_config_file

    assert load_config_file("fast-lenet5") == fast_lenet5()
    assert FAST_LENET5["model"] == "lenet5-fast" and FAST_LENET5["model_kwargs"] == {"c1": 16, "c3": 32}
    assert fast_lenet5(epochs=3).epochs == 3 and fast_lenet5().epochs == FAST_LENET5["epochs"] == 1


def test_time_to_accuracy_reached_and_not_reached(subset):
    cfg = fast_lenet5(dataset="mnist-subset", epochs=1, batch_size=100)
    hit = time_to_accuracy(subset, cfg, target=0.0, checks_per_epoch=2)
    assert hit.reached and hit.step == 5 and hit.train_time > 0 and len(hit.curve) == 1
    miss = time_to_accuracy(subset, cfg, target=1.01, checks_per_epoch=2)
    assert not miss.reached and miss.epoch == 1.0 and len(miss.curve) == 2
    times = [c[0] for c in miss.curve]
    assert times == sorted(times) and miss.wall_time >= miss.train_time


def test_baseline_time_to_accuracy_budget_and_checks(subset):
    out = baseline_time_to_accuracy(subset, target=1.01, budget_s=0.4, check_every_s=0.1)
    assert not out.reached and out.train_time >= 0.4 and out.epoch > 0 and out.step > 0
    times = [c[0] for c in out.curve]
    assert len(times) >= 4 and times == sorted(times) and times[-1] == pytest.approx(out.train_time, abs=1e-3)
    assert all(t >= 0.1 * (i + 1) - 1e-3 for i, t in enumerate(times))  # check i after (i + 1) * 0.1 s of training
    # accuracies of the model trained, on the subset's 200 test images: whole counts of them
    assert all(acc * 200 == pytest.approx(round(acc * 200), abs=1e-9) for _, _, acc in out.curve)
    hit = baseline_time_to_accuracy(subset, target=0.0, budget_s=60, check_every_s=0.05)
    assert hit.reached and len(hit.curve) == 1 and hit.train_time < 1


def test_cli_bench_train_json(subset, capsys):
    rc = main(
        [
            "bench",
            "train",
            "--dataset",
            "mnist-subset",
            "--steps",
            "6",
            "--threads",
            "1",
            "--no-tta",
            "--no-levers",
            "--json",
        ]
    )
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["dataset"] == "mnist-subset" and res["threads"] == [1]
    assert set(res["throughput"]) == {"baseline @1t", "Runner (tensor-resident) @1t"}
    assert res["ratio"]["baseline @1t"] == 1.0 and res["best_ratio_same_threads"] > 0
    assert res["best"] == res["best_ratio_variant"] == "Runner (tensor-resident) @1t"


def test_cli_bench_train_prints_the_report(subset, capsys):
    rc = main(
        [
            "bench",
            "train",
            "--dataset",
            "mnist-subset",
            "--steps",
            "6",
            "--threads",
            "1",
            "--no-levers",
            "--target",
            "0.0",
            "--baseline-budget",
            "1",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "round 1/3 done" in out and "path (batch 64)" in out and "lenetlab Runner (tensor-resident)" in out
    assert "Best ratio at the same model, batch and thread count: " in out and "Target reached: " in out
    assert "training time  epoch  test accuracy" in out and "**" not in out


def test_measure_throughputs_interleaves_variants_and_thread_counts(subset):
    variants = [("b1", 1, None), ("r1", 1, {}), ("r2", 2, {"channels_last": True})]
    out = measure_throughputs(subset, variants, steps=4, rounds=2, window=2)
    assert set(out) == {"b1", "r1", "r2"} and all(v > 0 and math.isfinite(v) for v in out.values())


def test_cli_bench_train_bad_steps_exits_2(capsys):
    assert main(["bench", "train", "--dataset", "mnist-subset", "--steps", "1", "--no-tta"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--steps" in err and "Traceback" not in err


def test_cli_bench_train_times_a_shipped_config(subset, capsys):
    rc = main(
        [
            "bench",
            "train",
            "--dataset",
            "mnist-subset",
            "--steps",
            "6",
            "--threads",
            "1",
            "--no-levers",
            "--config",
            "lenet5-modern-w8",
            "--target",
            "0.0",
            "--json",
        ]
    )
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    tta, base = res["time_to_accuracy"], res["baseline_time_to_accuracy"]
    assert tta["config"] == "lenet5-modern-w8" and tta["reached"] and base["reached"] and tta["device"] == "cpu"
    assert res["speedup_to_target"]["ratio"] == pytest.approx(base["train_time"] / tta["train_time"])
    assert res["speedup_to_target"]["lower_bound"] is False and res["speedup_to_target"]["budget_multiple"] == 10
    assert res["baseline_same_budget"]["test_accuracy"] == base["curve"][-1][2]
    assert tta["recipe"]["model_kwargs"] == {"width": 8, "dropout": 0.1} and tta["recipe"]["label_smoothing"] == 0.1


def test_cli_bench_train_bad_baseline_budget_exits_2(capsys):
    assert main(["bench", "train", "--dataset", "mnist-subset", "--baseline-budget", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --baseline-budget") and "Traceback" not in err


def test_cli_bench_train_unknown_config_is_one_line(subset, capsys):
    rc = main(["bench", "train", "--dataset", "mnist-subset", "--steps", "6", "--no-levers", "--config", "nope"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: nope: no such config") and "Traceback" not in err
