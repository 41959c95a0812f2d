"""ONNX export: dynamic batch parity with PyTorch, metadata, serving through onnxruntime, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from lenetlab.cli import main
from lenetlab.data.transforms import InputSpec
from lenetlab.inference.predictor import (
    OnnxPredictor,
    TorchPredictor,
    default_checkpoint,
)
from lenetlab.models import build_model, load_checkpoint


@pytest.mark.slow
def test_onnx_matches_pytorch_at_batch_1_7_64(onnx_model):
    path, info = onnx_model
    assert info["max_abs_diff"] < 1e-4 and info["exporter"].endswith("dynamo=True)")
    ckpt = load_checkpoint(default_checkpoint())
    model = build_model(ckpt)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert isinstance(inp.shape[0], str), f"batch dimension is not dynamic: {inp.shape}"
    assert inp.shape[1:] == [1, 32, 32]
    gen = torch.Generator().manual_seed(1)
    for n in (1, 7, 64):
        x = torch.randn(n, 1, 32, 32, generator=gen)
        with torch.inference_mode():
            ref = model(x).numpy()
        got = session.run(None, {inp.name: x.numpy()})[0]
        assert got.shape == (n, 10)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


def test_onnx_metadata_describes_preprocessing(onnx_model):
    path, _ = onnx_model
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    ckpt = load_checkpoint(default_checkpoint())
    assert InputSpec.from_dict(json.loads(meta["lenetlab.input_spec"])) == InputSpec.from_dict(ckpt["input_spec"])
    assert json.loads(meta["lenetlab.class_names"]) == ckpt["class_names"]
    assert json.loads(meta["lenetlab.model"])["name"] == "lenet5"


def test_onnx_predictor_agrees_with_torch(onnx_model, subset_test):
    path, _ = onnx_model
    x = torch.from_numpy(subset_test[0][:64]).unsqueeze(1)
    p_onnx, p_torch = OnnxPredictor(path), TorchPredictor()
    assert p_onnx.spec == p_torch.spec and p_onnx.class_names == p_torch.class_names
    np.testing.assert_allclose(p_onnx.predict_proba(x), p_torch.predict_proba(x), atol=1e-5)


@pytest.mark.slow
def test_cli_export_writes_onnx(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(default_checkpoint()), "--format", "onnx", "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert out.is_file() and info["path"] == str(out) and info["max_abs_diff"] < 1e-4
    assert main(["export", str(default_checkpoint()), "--out", str(out)]) == 0  # the one-line text form
    text = capsys.readouterr().out
    assert text.startswith(f"wrote {out} (") and "dynamic batch" in text and text.count("\n") == 1


def test_cli_export_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    assert main(["export", str(default_checkpoint()), "--out", str(tmp_path / "m.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "m.txt" in err and err.count("\n") == 1


def test_cli_export_checkpoint_and_output_errors(tmp_path, capsys):
    """No traceback for a bare checkpoint (no input spec), an unwritable --out, or an opset it cannot reach."""
    from lenetlab.models import create, save_checkpoint

    bare = save_checkpoint(
        tmp_path / "bare.pt", {"model": {"name": "lenet5", "kwargs": {}}, "state_dict": create("lenet5").state_dict()}
    )
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    (tmp_path / "dir.onnx").mkdir()
    cases = [
        (["export", str(bare)], ["bare.pt", "input_spec"]),
        (["export", str(default_checkpoint()), "--out", str(blocker / "m.onnx")], ["--out", "cannot create"]),
        (["export", str(default_checkpoint()), "--out", str(tmp_path / "dir.onnx")], ["--out", "cannot write"]),
        # the exporter would silently fall back to its own opset
        (["export", str(default_checkpoint()), "--out", str(tmp_path / "o.onnx"), "--opset", "3"], ["--opset 3"]),
    ]
    for argv, needles in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and all(n in err for n in needles), err
    assert not (tmp_path / "o.onnx").exists()


def test_cli_serve_errors(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope.pt"), "--port", "0"]) == 2
    assert "nope.pt" in capsys.readouterr().err
    assert main(["serve", "--onnx", str(tmp_path / "nope.onnx")]) == 2
    assert "nope.onnx" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["serve", "--onnx", str(bad)]) == 2
    assert "bad.onnx" in capsys.readouterr().err
    # a checkpoint and an ONNX model may be served together; a bad one of them is still one line
    assert main(["serve", str(default_checkpoint()), "--onnx", str(bad), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "bad.onnx" in err and err.count("\n") == 1


def test_cli_serve_port_in_use_is_a_one_line_error(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"--port {port}" in err and err.count("\n") == 1
    assert main(["serve", "--host", "192.0.2.1", "--port", "0"]) == 2  # TEST-NET-1: not an address of ours
    assert "--host 192.0.2.1" in capsys.readouterr().err


def test_onnx_without_metadata_is_refused(tmp_path, onnx_model):
    proto = onnx.load(str(onnx_model[0]))
    del proto.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(proto, str(plain))
    with pytest.raises(Exception, match="no lenetlab metadata"):
        OnnxPredictor(plain)


@pytest.mark.parametrize(
    "key, value, needle",
    [
        (
            "lenetlab.input_spec",
            {"channels": 1, "size": 100_000, "resize": "pad", "mean": [0.5], "std": [0.5]},
            "field 'lenetlab.input_spec.size' must be an integer from 8 to 512",
        ),
        ("lenetlab.class_names", ["0", "1", "2"], "lists 3 classes but the model gives 10 outputs"),
    ],
)
def test_onnx_with_inconsistent_metadata_is_refused_at_load(tmp_path, onnx_model, key, value, needle):
    """The same limits as for checkpoints: refused when the server starts, not per request."""
    proto = onnx.load(str(onnx_model[0]))
    for prop in proto.metadata_props:
        if prop.key == key:
            prop.value = json.dumps(value)
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(Exception, match=needle) as e:
        OnnxPredictor(bad)
    assert str(e.value).startswith(str(bad)) and "\n" not in str(e.value)


def test_failed_verification_keeps_the_previous_export(tmp_path, onnx_model, monkeypatch):
    """The check runs on the temporary file: a failing one leaves the good export in place, no temporary."""
    from lenetlab.serve import export

    out = tmp_path / "model.onnx"
    out.write_bytes(onnx_model[0].read_bytes())
    monkeypatch.setattr(export, "_max_diff", lambda *a: 0.5)
    with pytest.raises(Exception, match=r"model.onnx: onnxruntime differs from PyTorch by 5.00e-01 .*nothing written"):
        export.export_onnx(default_checkpoint(), out)
    assert out.read_bytes() == onnx_model[0].read_bytes() and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


PROBE = """
import json, os, sys, threading, time, urllib.request
port, onnx_path, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "cli":  # the `lenet serve --onnx` command line
    from lenetlab.cli import main
    target, args = main, (["serve", "--onnx", onnx_path, "--port", str(port), "--log-level", "warning"],)
else:  # the library function that `lenet serve` calls
    from lenetlab.inference.predictor import load_predictor
    from lenetlab.serve.app import ServedModel, run_server
    target, args = (lambda: run_server(lambda: [ServedModel("m", load_predictor(onnx=onnx_path))], port=port,
                                       log_level="warning")), ()
threading.Thread(target=target, args=args, daemon=True).start()
url = f"http://127.0.0.1:{port}"
for _ in range(600):
    try:
        health = json.load(urllib.request.urlopen(url + "/health", timeout=1))
        break
    except OSError:
        time.sleep(0.1)
pixels = [[255 if 4 <= r < 24 and 12 <= c < 16 else 0 for c in range(28)] for r in range(28)]
req = urllib.request.Request(url + "/predict", data=json.dumps({"pixels": pixels}).encode(),
                             headers={"content-type": "application/json"})
pred = json.load(urllib.request.urlopen(req, timeout=30))
mods = sorted(m for m in sys.modules if m.startswith("lenetlab"))
print(json.dumps({"health": health, "digit": pred["digit"], "modules": mods}), flush=True)
os._exit(0)
"""


def _serve_onnx_modules(onnx_path, port, mode, tmp_path) -> list[str]:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    res = subprocess.run(
        [sys.executable, str(script), str(port), str(onnx_path), mode], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["health"]["backend"] == "onnxruntime"
    assert out["digit"] == 1  # a vertical bar
    assert "lenetlab.serve.app" in out["modules"] and "lenetlab.data.images" in out["modules"]
    return [m for m in out["modules"] if m.startswith(("lenetlab.train", "lenetlab.plots", "lenetlab.apps.train"))]


@pytest.mark.slow
def test_serving_onnx_imports_no_training_code(onnx_model, free_port, tmp_path):
    """run_server(an ONNX model) in a fresh process answers /predict without importing training or plotting
    code (lenetlab.train, lenetlab.plots)."""
    forbidden = _serve_onnx_modules(onnx_model[0], free_port(), "lib", tmp_path)
    assert not forbidden, f"serving ONNX imported {forbidden}"


@pytest.mark.slow
def test_lenet_serve_onnx_cli_imports_no_training_code(onnx_model, free_port, tmp_path):
    forbidden = _serve_onnx_modules(onnx_model[0], free_port(), "cli", tmp_path)
    # The CLI builds every sub-parser, so it reads the RunConfig fields that define `lenet train`'s
    # flags: a plain dataclass module (no Runner), which is allowed (`lenet serve` reads runs with
    # lenetlab.inference.run).
    allowed = ("lenetlab.train", "lenetlab.train.config")
    forbidden = [m for m in forbidden if m not in allowed]
    assert not forbidden, f"`lenet serve --onnx` imported {forbidden}"


def test_serve_with_checkpoint_never_imports_training_code():
    code = (
        "import sys; from fastapi.testclient import TestClient; from lenetlab.serve.app import create_app; "
        "import lenetlab.serve.export; "
        "c = TestClient(create_app()); r = c.post('/predict', json={'pixels': [[0]*12 + [255]*4 + [0]*12]*28}); "
        "print(r.status_code, sorted(m for m in sys.modules if m.startswith('lenetlab.train')))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["200", "[]"], res.stdout


def test_export_into_an_unwritable_folder_is_one_line(readonly_dir, capsys):
    assert main(["export", str(default_checkpoint()), "--out", str(readonly_dir / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {readonly_dir / 'm.onnx'}: cannot write (") and err.count("\n") == 1, err
