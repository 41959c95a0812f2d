"""Against a real `lenet serve` (uvicorn on 127.0.0.1): curl-style uploads, bad inputs, still serving."""

from __future__ import annotations

import concurrent.futures as cf

import httpx
import pytest
import torch

from lenetlab.inference.predictor import TorchPredictor, default_checkpoint

pytestmark = pytest.mark.slow


def test_live_server_predicts_and_survives_bad_input(live_server, seven_png, images):
    with httpx.Client(base_url=live_server, timeout=30) as c:
        r = c.post("/predict", files={"file": ("digit.png", seven_png, "image/png")})  # curl -F file=@digit.png
        assert r.status_code == 200 and r.json()["digit"] == 7
        bad = [
            ({"content": b"", "headers": {"content-type": "image/png"}}, 400),
            ({"files": {"file": ("a.txt", b"not an image", "text/plain")}}, 400),
            ({"files": {"file": ("blank.png", images.blank(), "image/png")}}, 422),
            ({"json": {"pixels": [[0] * 28] * 27}}, 422),
            ({"json": {"pixels": [["x"] * 28] * 28}}, 422),
            ({"content": bytes(6 * 1024 * 1024), "headers": {"content-type": "image/png"}}, 413),
        ]
        for kwargs, status in bad:
            r = c.post("/predict", **kwargs)
            assert r.status_code == status, r.text
            assert isinstance(r.json()["detail"], str)
        # still serving, also under a little concurrency
        with cf.ThreadPoolExecutor(4) as pool:
            codes = list(
                pool.map(
                    lambda _: (
                        httpx.post(
                            f"{live_server}/predict", timeout=30, files={"file": ("d.png", seven_png, "image/png")}
                        ).status_code
                    ),
                    range(8),
                )
            )
        assert codes == [200] * 8
        assert c.get("/health").json()["status"] == "ok"


def test_packaged_lenet5_reaches_985_on_real_mnist(mnist_dir):
    """The shipped lenet5 (a run of the shipped config shipped-lenet5) on the 10,000 MNIST test images."""
    from lenetlab.data import load

    test = load("mnist", data_dir=mnist_dir).test
    p = TorchPredictor(default_checkpoint())
    correct = 0
    for i in range(0, len(test.x), 2500):
        correct += int(
            (torch.from_numpy(p.predict_proba(test.x[i : i + 2500]).argmax(1)) == test.y[i : i + 2500]).sum()
        )
    assert correct / len(test.x) >= 0.985
    assert default_checkpoint().stat().st_size < 1_000_000
