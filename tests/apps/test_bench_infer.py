"""Tests of the inference benchmark (lenetlab.apps.bench_infer, `lenet bench infer`).

Only the shape of the results is checked (timings on a shared machine are noise): every backend
is measured or listed as skipped, outputs agree with eager PyTorch, percentiles are ordered.
"""

from __future__ import annotations

import torch

from lenetlab.apps.bench_infer import latency, run_infer_bench, throughput
from lenetlab.cli import main


def test_throughput_and_latency_helpers():
    m = torch.nn.Linear(4, 2)
    x = torch.randn(16, 4)
    assert throughput(m, x, repeats=3, warmup=1) > 0
    lat = latency(m, x, calls=50, warmup=2)
    assert 0 < lat["p50_ms"] <= lat["p99_ms"] and lat["mean_ms"] > 0


def test_infer_bench_demo_checkpoint_without_onnx():
    old = torch.get_num_threads()
    try:
        res = run_infer_bench(quick=True, calls=30, batch_size=64, onnx=False, as_json=True)
    finally:
        torch.set_num_threads(old)
    assert res["model"] == "lenet5" and res["threads"] == 1
    assert "eager PyTorch" in res["backends"] and "eager PyTorch, channels-last" in res["backends"]
    assert len(res["backends"]) + len(res["skipped"]) == 4
    for name, b in res["backends"].items():
        assert b["images_per_sec"] > 0 and b["p50_ms"] <= b["p99_ms"], name
        assert b["max_abs_diff"] < 1e-3, name


def test_cli_bench_infer_missing_checkpoint_exits_2(tmp_path, capsys):
    assert main(["bench", "infer", "--checkpoint", str(tmp_path / "nope.pt"), "--no-onnx"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.pt" in err and "Traceback" not in err
