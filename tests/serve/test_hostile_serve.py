"""Hostile inputs on the serving side (issue 31): strict-JSON answers for a model whose activations
overflow, and ONNX metadata checked like checkpoint fields, its graph run once at load."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from fastapi.testclient import TestClient

from lenetlab.cli import main
from lenetlab.errors import CheckpointError
from lenetlab.inference.predictor import OnnxPredictor, TorchPredictor, default_checkpoint
from lenetlab.models import load_checkpoint, save_checkpoint
from lenetlab.serve.app import create_app


def _strict(text: str):
    """``text`` parsed as strictly as a browser's JSON.parse (no NaN, Infinity)."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in a JSON answer"))


@pytest.fixture(scope="module")
def overflowing(tmp_path_factory):
    """The shipped lenet5 with every weight scaled by 1e25: its activations overflow float32 to inf/NaN."""
    ck = load_checkpoint(default_checkpoint())
    ck["state_dict"] = {k: v * 1e25 if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    body = {k: v for k, v in ck.items() if k not in ("format", "checksum")}
    return save_checkpoint(tmp_path_factory.mktemp("overflow") / "big.pt", body)


def test_explain_and_predict_answer_strict_json_for_overflowing_activations(overflowing, seven_png):
    predictor = TorchPredictor(overflowing)
    with torch.no_grad():
        assert not torch.isfinite(predictor.model(torch.ones(1, 1, 32, 32))).all()  # it does overflow
    with TestClient(create_app(predictor)) as c:
        for path in ("/explain", "/predict"):
            r = c.post(path, files={"file": ("seven.png", seven_png, "image/png")})
            assert r.status_code == 200, r.text
            assert "NaN" not in r.text and "Infinity" not in r.text
            body = _strict(r.text)
            assert len(body["probabilities"]) == 10
        assert _strict(c.get("/models").text)[0]["name"]


def _edited(onnx_model, tmp_path, key: str, value) -> str:
    proto = onnx.load(str(onnx_model[0]))
    for prop in proto.metadata_props:
        if prop.key == key:
            prop.value = json.dumps(value)
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    return str(bad)


def test_onnx_duplicate_class_names_are_refused(onnx_model, tmp_path):
    bad = _edited(onnx_model, tmp_path, "lenetlab.class_names", ["0", "1", "1", "3", "4", "5", "6", "7", "8", "9"])
    with pytest.raises(CheckpointError) as e:
        OnnxPredictor(bad)
    assert str(e.value).startswith(bad) and "names '1' twice" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "value, needle",
    [
        ("0123456789", "must be a non-empty list"),
        ({"a": 1}, "must be a non-empty list"),
    ],
)
def test_onnx_class_names_of_the_wrong_type_are_refused(onnx_model, tmp_path, value, needle):
    with pytest.raises(CheckpointError, match=needle):
        OnnxPredictor(_edited(onnx_model, tmp_path, "lenetlab.class_names", value))


def test_onnx_input_size_the_graph_cannot_take_is_refused_at_load(onnx_model, tmp_path, seven_png, capsys):
    spec = {"channels": 1, "size": 64, "resize": "pad", "mean": [0.5], "std": [0.5]}  # valid, but the graph is 32x32
    bad = _edited(onnx_model, tmp_path, "lenetlab.input_spec", spec)
    with pytest.raises(CheckpointError) as e:
        OnnxPredictor(bad)
    assert str(e.value).startswith(bad) and "cannot take 1x64x64 inputs" in str(e.value) and "\n" not in str(e.value)
    img = tmp_path / "seven.png"
    img.write_bytes(seven_png)
    assert main(["predict", str(img), "--onnx", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cannot take" in err and err.count("\n") == 1


def test_onnx_metadata_that_is_not_strict_json_is_refused(onnx_model, tmp_path):
    proto = onnx.load(str(onnx_model[0]))
    for prop in proto.metadata_props:
        if prop.key == "lenetlab.input_spec":
            prop.value = '{"channels": 1, "size": 32, "resize": "pad", "mean": [NaN], "std": [0.5]}'
    bad = tmp_path / "nan.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(CheckpointError, match="NaN is not a JSON number"):
        OnnxPredictor(bad)
