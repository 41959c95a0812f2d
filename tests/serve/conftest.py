"""Fixtures for the serving tests: the app in-process, a real `lenet serve` subprocess, test images."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

import serve_load  # noqa: E402  (benchmarks/ is not a package): one starter of `lenet serve` subprocesses


@pytest.fixture(scope="session")
def predictor():
    """The packaged demo lenet5 as a TorchPredictor."""
    from lenetlab.inference.predictor import TorchPredictor

    return TorchPredictor()


@pytest.fixture(scope="session")
def app(predictor):
    from lenetlab.serve.app import create_app

    return create_app(predictor)


@pytest.fixture(scope="session")
def client(app):
    """An in-process client of the FastAPI app (no sockets)."""
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def canvas_seven(size: int = 280, width: int = 20) -> Image.Image:
    """A '7' drawn like on the web page: thick white strokes on a black canvas."""
    img = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(img)
    s = size / 280
    pts = [(80 * s, 70 * s), (200 * s, 70 * s), (130 * s, 225 * s)]
    d.line(pts, fill=255, width=round(width * s), joint="curve")
    for x, y in pts:
        r = width * s / 2
        d.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return img


@pytest.fixture(scope="session")
def seven_png() -> bytes:
    return png_bytes(canvas_seven())


@pytest.fixture(scope="session")
def free_port():
    return serve_load.free_port


start_server, stop_server = serve_load.start_server, serve_load.stop_server


@pytest.fixture(scope="session")
def live_server(free_port):
    """A real `lenet serve` (uvicorn, packaged lenet5) on 127.0.0.1; yields its base URL."""
    proc, url = start_server([], free_port())
    yield url
    stop_server(proc)


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory):
    """The packaged lenet5 exported with `lenet export` (path, and the summary dict)."""
    from lenetlab.inference.predictor import default_checkpoint
    from lenetlab.serve.export import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "lenet5.onnx"
    info = export_onnx(default_checkpoint(), out)
    return out, info


@pytest.fixture(scope="session")
def subset_test(subset):
    """(uint8 [N, 28, 28] NumPy images, labels) from the embedded subset's test split."""
    return subset.test.x[:, 0].numpy(), subset.test.y.numpy()


def make_blank(size=(280, 280), value=0) -> bytes:
    return png_bytes(Image.new("L", size, value))


def noise_bytes(n: int = 2048) -> bytes:
    return np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.fixture(scope="session")
def images():
    """Image helpers for the tests (test modules cannot import conftest under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        png_bytes=png_bytes,
        canvas_seven=canvas_seven,
        blank=make_blank,
        noise=noise_bytes,
        start_server=start_server,
        stop_server=stop_server,
        artifacts=ARTIFACTS,
    )


def _trained(subset, tmp_path_factory, model: str, epochs: int) -> Path:
    """``model`` trained briefly on the embedded subset (one thread), saved as a checkpoint."""
    import torch

    from helpers import train_small

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_small(
            subset, tmp_path_factory.mktemp(model) / f"{model}.pt", epochs=epochs, augment="none", model=model
        )
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def lenet1998_ckpt(subset, tmp_path_factory) -> Path:
    """LeNet-5 as in LeCun et al. 1998 (scaled tanh, C3 table, RBF output), a few epochs on the subset."""
    return _trained(subset, tmp_path_factory, "lenet5-1998", 4)


@pytest.fixture(scope="session")
def nin_ckpt(subset, tmp_path_factory) -> Path:
    """The small NiN (one top-level nn.Sequential) after one epoch: a zoo model whose layers are blocks."""
    return _trained(subset, tmp_path_factory, "nin-small", 1)
