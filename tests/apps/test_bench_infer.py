"""Tests of the inference benchmark (lenetlab.apps.bench_infer, `lenet bench infer`).

Only the shape of the results is checked (timings on a shared machine are noise): every backend
is measured or listed as skipped, outputs agree with eager PyTorch, percentiles are ordered.
"""

from __future__ import annotations

import json

import pytest
import torch

from lenetlab.apps.bench_infer import run_infer_bench
from lenetlab.cli import main


def test_infer_bench_demo_checkpoint_without_onnx():
    old = torch.get_num_threads()
    res = run_infer_bench(quick=True, calls=30, batch_size=64, onnx=False).data
    assert torch.get_num_threads() == old  # restored
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


def test_cli_bench_infer_prints_the_report_or_json(capsys):
    assert main(["bench", "infer", "--quick", "--calls", "10", "--batch-size", "16", "--no-onnx"]) == 0
    out = capsys.readouterr().out
    assert "images/s (batch 16)" in out and "eager PyTorch, channels-last" in out and "Model lenet5 from" in out
    assert main(["bench", "infer", "--quick", "--calls", "10", "--batch-size", "16", "--no-onnx", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["batch_size"] == 16 and res["calls"] == 10 and "eager PyTorch" in res["backends"]


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "infer", "--threads", "-1", "--no-onnx"],
        ["bench", "train", "--threads", "0", "--dataset", "mnist-subset"],
        ["bench", "train", "--profile", "--threads", "0", "--dataset", "mnist-subset"],
    ],
)
def test_cli_bench_bad_thread_count_is_one_line_and_leaves_torch_alone(argv, capsys):
    old = torch.get_num_threads()
    assert main(argv) == 2 and torch.get_num_threads() == old
    err = capsys.readouterr().err
    assert err.startswith("error: --threads must be positive thread counts") and "Traceback" not in err
