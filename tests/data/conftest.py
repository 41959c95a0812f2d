"""Fixtures for the data tests: small generated IDX folders and an HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from helpers import write_idx

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def make_idx_dir(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = True, seed: int = 0) -> Path:
    """Write four small MNIST-like IDX files (random 28×28 images, labels 0..9) into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28)),
        np.arange(n_train) % 10,
        rng.integers(0, 256, (n_test, 28, 28)),
        np.arange(n_test) % 10,
    )
    for name, a in zip(NAMES, arrays):
        write_idx(folder / (name + (".gz" if gz else "")), a)
    return folder


@pytest.fixture
def make_idx():
    """The :func:`make_idx_dir` factory, for tests that need their own sizes or raw files."""
    return make_idx_dir


@pytest.fixture
def idx_dir(tmp_path) -> Path:
    """A folder with four gzip IDX files: 60 train and 20 test images."""
    return make_idx_dir(tmp_path / "idx")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        if self.path.startswith("/html/"):  # a captive portal / error page answering 200 with HTML
            body = b"<!DOCTYPE html><html><body>Access denied</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/forbidden/"):
            self.send_error(403)
            return
        super().do_GET()


@pytest.fixture
def http_root(tmp_path):
    """``(root_folder, base_url)`` of a threaded HTTP server on 127.0.0.1 serving ``root_folder``.

    ``/html/...`` answers 200 with an HTML page, ``/forbidden/...`` answers 403, a missing file 404.
    """
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
