"""lenet5-scratch: same weights, same outputs; converters; `lenet compare` and `lenet bench ops`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lenetlab.cli import main
from lenetlab.errors import CheckpointError
from lenetlab.models import create, list_models
from lenetlab.models.lenet_scratch import (
    from_loop_reference,
    scratch_to_torch,
    to_loop_reference,
    torch_to_scratch,
)
from lenetlab.ops import AvgPool2d, Conv2d, LoopLeNet, MaxPool2d

REPO = Path(__file__).resolve().parents[2]


def test_registered_with_the_same_layers_as_lenet5():
    assert "lenet5-scratch" in [m.name for m in list_models()]
    scratch, ref = create("lenet5-scratch"), create("lenet5")
    assert isinstance(scratch.C1, Conv2d) and isinstance(scratch.S2, MaxPool2d) and isinstance(scratch.S4, AvgPool2d)
    assert {k: v.shape for k, v in scratch.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    assert create("lenet5-scratch", num_classes=5, in_channels=3)(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_same_weights_same_outputs_and_gradients_both_ways():
    torch.manual_seed(0)
    ref, scratch = create("lenet5"), create("lenet5-scratch")
    scratch.load_state_dict(torch_to_scratch(ref.state_dict()))
    x, y = torch.randn(32, 1, 32, 32), torch.randint(0, 10, (32,))
    torch.testing.assert_close(scratch(x), ref(x), atol=1e-5, rtol=0)
    for model in (ref, scratch):
        torch.nn.functional.cross_entropy(model(x), y).backward()
    for (name, p), q in zip(ref.named_parameters(), scratch.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=0, msg=name)
    other = create("lenet5-scratch")  # and back: scratch weights into a fresh torch lenet5
    ref2 = create("lenet5")
    ref2.load_state_dict(scratch_to_torch(other.state_dict()))
    torch.testing.assert_close(ref2(x), other(x), atol=1e-5, rtol=0)


def test_loop_reference_converters_reshape_biases_and_round_trip():
    ref = create("lenet5")
    loop_sd = to_loop_reference(ref.state_dict())
    assert loop_sd["conv1.bias"].shape == (6, 1) and loop_sd["linear6.bias"].shape == (84,)
    loop = LoopLeNet()
    loop.load_state_dict(loop_sd)
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(loop(x), ref(x), atol=1e-5, rtol=0)
    back = from_loop_reference(loop.state_dict())
    assert all(torch.equal(back[k], v) for k, v in ref.state_dict().items())


def test_converters_reject_foreign_state_dicts():
    with pytest.raises(CheckpointError, match="missing"):
        torch_to_scratch({"C1.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="unexpected key"):
        from_loop_reference({"fc.weight": torch.zeros(1)})


def test_lenet_compare_cli_passes(capsys):
    assert main(["compare", "--batch", "8", "--limit", "50", "--loop-images", "2"]) == 0
    out = capsys.readouterr().out
    assert "lenet5 vs lenet5-scratch" in out and "loop reference" in out and "PASS" in out


def test_lenet_compare_json(capsys):
    assert main(["compare", "--batch", "4", "--limit", "20", "--loop-images", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and all(r["max_abs_diff"] <= 1e-5 for r in result["rows"])
    assert {r["check"] for r in result["rows"]} >= {
        "lenet5 vs lenet5-scratch",
        "lenet5 vs loop reference",
        "lenet5 vs lenet5-scratch, float64",
    }
    f64 = next(r for r in result["rows"] if r["check"].endswith("float64"))
    assert f64["max_abs_diff"] < 1e-12  # no rounding to hide behind: the arithmetic is the same


def test_lenet_compare_fails_when_the_weights_do_not_match(monkeypatch, capsys):
    import lenetlab.apps.compare as compare

    convert = compare.torch_to_scratch

    def off_by_a_little(state):
        state = convert(state)
        state["C1.bias"] += 1e-3
        return state

    monkeypatch.setattr(compare, "torch_to_scratch", off_by_a_little)
    assert main(["compare", "--batch", "4", "--limit", "20", "--loop-images", "1"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_lenet_compare_uses_checkpoint_weights(tmp_path, capsys):
    from lenetlab.models.checkpoint import save_checkpoint

    model = create("lenet5")
    path = tmp_path / "w.pt"
    save_checkpoint(
        path,
        {
            "model": {"name": "lenet5", "kwargs": {}},
            "state_dict": model.state_dict(),
            "class_names": [str(i) for i in range(10)],
            "config": {},
            "input_spec": {"channels": 1, "size": 32, "resize": "pad", "mean": [0.5], "std": [0.5]},
        },
    )
    assert main(["compare", "--checkpoint", str(path), "--limit", "20", "--loop-images", "1"]) == 0
    assert str(path) in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["compare", "--batch", "0"], "--batch"),
        (["compare", "--tolerance", "-1"], "--tolerance"),
        (["compare", "--dataset", "no-such-dataset"], "no-such-dataset"),
        (["compare", "--checkpoint", "/nonexistent/ckpt.pt"], "not found"),
        (["bench", "ops", "--batches", "0"], "--batches"),
        (["bench", "ops", "--threads", "0"], "--threads"),
    ],
)
def test_cli_user_errors_exit_2(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err and len(err.strip().splitlines()) == 1


def test_bench_ops_json_rows(capsys):
    assert main(["bench", "ops", "--quick", "--batches", "2", "--no-loop", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    names = [(r["what"], r["mode"]) for r in result["rows"]]
    assert ("C3", "fwd+bwd") in names and ("LeNet-5", "fwd") in names and len(names) == 12
    assert all(r["torch_ms"] > 0 and r["scratch_ms"] > 0 and r["loop_ms"] is None for r in result["rows"])


def test_bench_loop_reference_on_a_sub_batch():
    from lenetlab.apps.bench_ops import bench_layers
    from lenetlab.benchfmt import text

    rows = bench_layers(batches=(4,), min_run_time=0.01, loop=True, loop_sub_fwd=2, loop_sub_bwd=1)
    pools = [r for r in rows if r.what in ("S2", "S4")]
    assert all(r.loop_ms > 0 and "sub-batch" in r.loop_note for r in pools)
    report = text("bench-ops", {"torch": "x", "threads": 1, "rows": [r.to_dict() for r in rows]})
    assert "im2col / PyTorch" in report and " ~ " in report


def test_benchmark_script_runs():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "ops_speed.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "--quick" in proc.stdout


@pytest.mark.parametrize(
    "name, kwargs, weights_of, match",
    [
        ("lenet5-mini", {}, "lenet5-mini", "is not lenet5 or lenet5-scratch"),
        ("lenet5", {}, "lenet5-mini", "weights do not fit model 'lenet5'"),
        ("lenet5", {"num_classes": 5}, None, "has 5 output classes but mnist-subset has 10"),
        ("lenet5", {"in_channels": 3}, None, "expects 3 input channels"),
    ],
)
def test_compare_checkpoint_that_does_not_fit_is_a_one_line_error(tmp_path, capsys, name, kwargs, weights_of, match):
    from lenetlab.models.checkpoint import save_checkpoint

    path = tmp_path / "other.pt"
    state = create(weights_of or name, **kwargs).state_dict()
    save_checkpoint(
        path,
        {
            "model": {"name": name, "kwargs": kwargs},
            "state_dict": state,
            "class_names": [str(i) for i in range(kwargs.get("num_classes", 10))],
        },
    )
    assert main(["compare", "--checkpoint", str(path), "--limit", "20", "--loop-images", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err and str(path) in err and err.count("\n") == 1
