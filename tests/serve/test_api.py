"""The REST API in-process: predictions, the page, the schema, and a 4xx for every bad input."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from lenetlab.data.images import preprocess_image


def _check_prediction(body: dict, k: int = 3) -> None:
    probs = np.array(body["probabilities"])
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-5 and (probs >= 0).all()
    assert body["class_names"] == [str(i) for i in range(10)]
    assert body["digit"] == int(probs.argmax()) and body["label"] == str(body["digit"])
    assert [t["index"] for t in body["top_k"]] == list(np.argsort(-probs, kind="stable")[:k])
    assert body["model"] == "lenet5"
    x = np.array(body["input_28x28"])
    assert x.shape == (28, 28) and x.min() >= 0 and x.max() <= 255
    png = base64.b64decode(body["input_png"].split(",", 1)[1])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), x)


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["model"] == "lenet5" and h["backend"] == "torch"
    assert h["input_spec"]["size"] == 32 and len(h["class_names"]) == 10


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<canvas id="pad"' in page.text and 'id="clear"' in page.text
    css = client.get("/static/style.css").text
    assert "touch-action: none" in css
    js = client.get("/static/app.js").text
    assert "pointerdown" in js and "/predict" in js


def test_openapi_schema_and_docs(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json", "image/png", "image/jpeg"} <= set(body)
    assert "/health" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_predict_canvas_seven_multipart(client, seven_png):
    r = client.post("/predict", files={"file": ("digit.png", seven_png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    _check_prediction(body)
    assert body["digit"] == 7
    # exactly the preprocessing of `lenet predict`: the shared function
    assert np.array_equal(np.array(body["input_28x28"]), preprocess_image(seven_png)[0].numpy())


def test_predict_dark_on_light_jpeg_raw_body(client, images):
    """A 'scan': dark ink on white paper, JPEG, sent as a raw image/jpeg body."""
    scan = ImageOps.invert(images.canvas_seven(560, 24)).convert("RGB")
    r = client.post("/predict?top_k=5", content=images.png_bytes(scan, "JPEG"), headers={"content-type": "image/jpeg"})
    assert r.status_code == 200, r.text
    _check_prediction(r.json(), k=5)
    assert r.json()["digit"] == 7


def test_json_pixels_match_uploads_and_read_mnist(client, subset_test, images):
    """JSON pixels (MNIST-style 0..255) go through the same preprocessing as an uploaded PNG."""
    x, y = subset_test
    correct = 0
    for img, label in zip(x[:30], y[:30]):
        r = client.post("/predict", json={"pixels": img.tolist()})
        assert r.status_code == 200, r.text
        correct += r.json()["digit"] == label
        if correct <= 2:
            up = client.post("/predict", files={"file": ("d.png", images.png_bytes(Image.fromarray(img)), "image/png")})
            assert up.json()["input_28x28"] == r.json()["input_28x28"]
            assert up.json()["probabilities"] == pytest.approx(r.json()["probabilities"], abs=1e-6)
    assert correct >= 28, f"only {correct}/30 subset test digits read correctly through the API"


def test_top_k_bounds(client, seven_png):
    r = client.post("/predict?top_k=50", files={"file": ("d.png", seven_png, "image/png")})
    assert r.status_code == 200 and len(r.json()["top_k"]) == 10
    for bad in ("0", "101", "x"):
        r = client.post(f"/predict?top_k={bad}", files={"file": ("d.png", seven_png, "image/png")})
        assert r.status_code == 422 and "top_k" in r.json()["detail"]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with almost no pixel data (a 'bomb')."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def fifty_megapixels(images) -> bytes:
    """A real, decodable 10000 x 5000 PNG (50 MP; about 50 KB since it is uniform)."""
    return images.png_bytes(Image.new("L", (10000, 5000), 0))


def _form(data: bytes, name: str = "file", filename: str = "upload.png", ctype: str = "image/png"):
    return {"files": {name: (filename, data, ctype)}}


BAD_INPUTS = {
    # name: (request kwargs builder, expected status, expected code)
    "not an image (text file)": (
        lambda f: _form(b"hello, this is not a picture\n", filename="a.txt", ctype="text/plain"),
        400,
        "not_an_image",
    ),
    "random bytes as image/png": (
        lambda f: {"content": f.noise(), "headers": {"content-type": "image/png"}},
        400,
        "not_an_image",
    ),
    "truncated PNG": (
        lambda f: {"content": f.png_bytes(f.canvas_seven())[:300], "headers": {"content-type": "image/png"}},
        400,
        "not_an_image",
    ),
    "empty body": (lambda f: {"content": b"", "headers": {"content-type": "image/png"}}, 400, "empty_body"),
    "empty multipart file": (lambda f: _form(b""), 400, "empty_file"),
    "multipart without 'file'": (lambda f: _form(f.blank(), name="image"), 422, "missing_file"),
    "unsupported content type": (
        lambda f: {"content": b"7", "headers": {"content-type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    "header claims 400 megapixels (bomb)": (
        lambda f: {"content": _png_header_only(20000, 20000), "headers": {"content-type": "image/png"}},
        413,
        "too_many_pixels",
    ),
    "upload over the size limit": (lambda f: _form(b"\x89PNG" + bytes(6 * 1024 * 1024)), 413, "too_large"),
    "JSON 27 rows": (lambda f: {"json": {"pixels": [[0] * 28] * 27}}, 422, "invalid_request"),
    "JSON 29 columns": (lambda f: {"json": {"pixels": [[0] * 29] * 28}}, 422, "invalid_request"),
    "JSON flat 784": (lambda f: {"json": {"pixels": [0] * 784}}, 422, "invalid_request"),
    "JSON 3-D": (lambda f: {"json": {"pixels": [[[0]] * 28] * 28}}, 422, "invalid_request"),
    "JSON strings": (lambda f: {"json": {"pixels": [["a"] * 28] * 28}}, 422, "invalid_request"),
    "JSON nulls": (lambda f: {"json": {"pixels": [[None] * 28] * 28}}, 422, "invalid_request"),
    "JSON booleans": (lambda f: {"json": {"pixels": [[True] * 28] * 28}}, 422, "invalid_request"),
    "JSON above 255": (lambda f: {"json": {"pixels": [[300] * 28] * 28}}, 422, "invalid_request"),
    "JSON negative": (lambda f: {"json": {"pixels": [[-1] * 28] * 28}}, 422, "invalid_request"),
    "JSON NaN": (
        lambda f: {
            "content": json.dumps({"pixels": [[float("nan")] * 28] * 28}),
            "headers": {"content-type": "application/json"},
        },
        422,
        "invalid_request",
    ),
    "JSON syntax error": (
        lambda f: {"content": b'{"pixels": [[1, 2', "headers": {"content-type": "application/json"}},
        422,
        "invalid_request",
    ),
    "JSON without pixels": (lambda f: {"json": {"image": 1}}, 422, "invalid_request"),
    "blank black canvas": (lambda f: _form(f.blank()), 422, "blank_image"),
    "blank white paper": (lambda f: _form(f.blank(value=255)), 422, "blank_image"),
    "JSON all zeros": (lambda f: {"json": {"pixels": [[0] * 28] * 28}}, 422, "blank_image"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_4xx(client, images, case, seven_png):
    build, status, code = BAD_INPUTS[case]
    r = client.post("/predict", **build(images))
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"] and "\n" not in body["detail"]
    if code == "blank_image":
        assert "draw a digit" in body["detail"]
    # the server keeps serving
    assert client.post("/predict", files={"file": ("d.png", seven_png, "image/png")}).json()["digit"] == 7


def test_fifty_megapixel_image_is_refused(client, fifty_megapixels):
    r = client.post("/predict", files={"file": ("big.png", fifty_megapixels, "image/png")})
    assert r.status_code == 413 and r.json()["code"] == "too_many_pixels"
    assert "50,000,000" in r.json()["detail"]


def test_limits_are_configurable(predictor, images):
    from fastapi.testclient import TestClient

    from lenetlab.serve.app import create_app

    with TestClient(create_app(predictor, max_upload_bytes=1000, max_pixels=100 * 100)) as c:
        assert c.post("/predict", content=bytes(1001), headers={"content-type": "image/png"}).status_code == 413
        r = c.post("/predict", files={"file": ("d.png", images.png_bytes(images.canvas_seven(101)), "image/png")})
        assert r.status_code == 413 and r.json()["code"] in ("too_many_pixels", "too_large")


def test_same_answer_as_lenet_predict(client, images, tmp_path, capsys):
    """The service and `lenet predict` share the preprocessing: same top-k probabilities and 28x28 input."""
    from lenetlab.cli import main
    from lenetlab.inference.predictor import default_checkpoint

    scan = ImageOps.invert(images.canvas_seven(400, 30))  # dark on light, another size
    path = tmp_path / "seven.png"
    scan.save(path)
    assert (
        main(
            [
                "predict",
                str(default_checkpoint()),
                str(path),
                "--json",
                "--device",
                "cpu",
                "--show",
                str(tmp_path / "show"),
            ]
        )
        == 0
    )
    cli = json.loads(capsys.readouterr().out)[0]
    api = client.post("/predict", files={"file": ("seven.png", path.read_bytes(), "image/png")}).json()
    assert [t["index"] for t in api["top_k"]] == [t["index"] for t in cli["top_k"]]
    assert [t["probability"] for t in api["top_k"]] == pytest.approx([t["probability"] for t in cli["top_k"]], abs=1e-6)
    shown = next((tmp_path / "show").glob("*.png"))
    assert np.array_equal(np.asarray(Image.open(shown)), np.array(api["input_28x28"]))
