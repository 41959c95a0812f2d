"""The server under faults (issue 15): disconnecting, stalling, flooding and oversized clients,
saturation, hardening. Real uvicorn servers: in a thread of this process (when the test needs short
timeouts or an injected predictor) or the `lenet serve` subprocess of conftest."""

from __future__ import annotations

import concurrent.futures as cf
import http.client
import json
import logging
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from contextlib import contextmanager
from urllib.parse import urlparse

import httpx
import pytest
from PIL import Image, ImageFile

from lenetlab.errors import ConfigError
from lenetlab.serve.app import create_app, uvicorn_options
from lenetlab.serve.limits import CSP, ServeLimits, is_loopback


@contextmanager
def serve_in_thread(app, **config):
    """Run ``app`` with uvicorn (the settings of `lenet serve`, overridden by ``config``) on a free
    127.0.0.1 port in a thread of this process; yields the base URL. Logs go to the root logger
    (``log_config=None``), so ``caplog`` sees them."""
    import uvicorn

    opts = {**uvicorn_options(app.state.limits), **config}
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, log_level="info", access_log=False, lifespan="off", **opts
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _wait_for(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def _connect(url: str, timeout: float = 30.0) -> socket.socket:
    u = urlparse(url)
    s = socket.create_connection((u.hostname, u.port), timeout=timeout)
    return s


def _read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket timeout: a test failure)."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _read_response(s: socket.socket) -> bytes:
    """One whole HTTP response with a Content-Length body (for keep-alive connections)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def _json_body(raw: bytes) -> dict:
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


def _head(content_length: int, ctype: str = "image/png") -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()


def _comparable(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timing_ms"}


@pytest.fixture(scope="module")
def seven_pixels(images):
    img = images.canvas_seven().resize((28, 28), Image.Resampling.BOX)
    import numpy as np

    return np.asarray(img).astype(int).tolist()


# --------------------------------------------------------------------- item 7: disconnects are not errors
def test_client_disconnecting_mid_body_logs_no_traceback(predictor, seven_png, caplog):
    caplog.set_level(logging.INFO, logger="uvicorn")
    caplog.set_level(logging.DEBUG, logger="lenetlab.serve")  # last: it also sets caplog's handler level
    app = create_app(predictor)
    n = 20
    with serve_in_thread(app) as url:
        for i in range(n):
            s = _connect(url)
            s.sendall(_head(100_000) + b"\x89PNG" + bytes(996))
            if i % 2:  # half of them reset the connection instead of closing it
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        _wait_for(
            lambda: sum("disconnected" in r.getMessage() for r in caplog.records) >= n,
            "the server to see every disconnect",
        )
        r = httpx.post(url + "/predict", files={"file": ("d.png", seven_png, "image/png")}, timeout=30)
        assert r.status_code == 200 and r.json()["digit"] == 7
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not loud, [f"{r.levelname} {r.name}: {r.getMessage()}" for r in loud]
    assert "Exception in ASGI application" not in caplog.text and "Traceback" not in caplog.text
    gone = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert all(r.levelno == logging.DEBUG and r.name == "lenetlab.serve" for r in gone)


# --------------------------------------------------------------------- item 6: oversized bodies get a 413 answer
def _chunks(total: int, size: int = 256 * 1024):
    block = bytes(size)
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield block[:n]
        sent += n


@pytest.mark.slow
@pytest.mark.parametrize("connection", ["close", "keep-alive"])
@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_50mb_body_gets_413_json_not_a_reset(live_server, seven_png, framing, connection):
    """Clients that send the whole body before reading the answer (http.client, urllib, requests) get
    the 413, also with ``Connection: close`` (urllib's default), where the server used to close the
    socket with the body unread: a reset instead of the answer."""
    u = urlparse(live_server)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    headers = {"Content-Type": "image/png", "Connection": connection}
    try:
        if framing == "chunked":  # no Content-Length
            conn.request(
                "POST",
                "/predict",
                body=_chunks(50 * 1024 * 1024),
                encode_chunked=True,
                headers={**headers, "Transfer-Encoding": "chunked"},
            )
        else:
            conn.request("POST", "/predict", body=bytes(50 * 1024 * 1024), headers=headers)
        r = conn.getresponse()
        assert r.status == 413
        body = json.loads(r.read())
    finally:
        conn.close()
    assert body["code"] == "too_large" and "upload limit" in body["detail"] and "\n" not in body["detail"]
    # the server keeps serving
    r = httpx.post(live_server + "/predict", files={"file": ("d.png", seven_png, "image/png")}, timeout=30)
    assert r.json()["digit"] == 7


def test_oversized_body_with_expect_continue_is_refused_without_reading(predictor):
    limits = ServeLimits(max_upload_bytes=1000)
    with serve_in_thread(create_app(predictor, limits=limits)) as url:
        s = _connect(url)
        s.sendall(_head(5000)[:-2] + b"Expect: 100-continue\r\n\r\n")
        raw = _read_until_closed(s)  # closed after the answer: the body was never asked for
        s.close()
    assert raw.startswith(b"HTTP/1.1 413") and b"100 Continue" not in raw
    assert _json_body(raw)["code"] == "too_large"


# --------------------------------------------------------------------- item 5: bounded decoding
def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def png_25mp(images) -> bytes:
    """A real 5000 x 5000 PNG (25 MP, the size that took ~450 MB per request), about 25 KB."""
    return images.png_bytes(Image.new("L", (5000, 5000), 0))


def test_too_many_pixels_is_413_from_the_header_without_decoding(client, monkeypatch, png_25mp):
    loads = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self.size) or real_load(self))
    for body in (_png_header_only(30000, 30000), png_25mp):
        r = client.post("/predict", files={"file": ("big.png", body, "image/png")})
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "too_many_pixels" and "16,777,216" in r.json()["detail"]
    assert loads == [], f"pixel data was decoded: {loads}"


def test_large_accepted_image_is_reduced_before_float_conversion(client, images, monkeypatch):
    """A 16-megapixel photo-sized upload reaches the float pipeline at most ~2x the working size."""
    from lenetlab.data import images as im

    seen = []
    real = im._pil_to_float
    monkeypatch.setattr(im, "_pil_to_float", lambda img: seen.append(img.size) or real(img))
    big = images.canvas_seven(4000).convert("RGB")
    r = client.post("/predict", files={"file": ("big.png", images.png_bytes(big), "image/png")})
    assert r.status_code == 200 and r.json()["digit"] == 7
    assert seen and max(seen[0]) < 2 * im.WORK_SIDE, seen


class SlowPredictor:
    """Wraps a predictor; every prediction waits until ``release`` is set (and says it has started)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.started = threading.Semaphore(0)
        self.release = threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict_proba(self, x):
        self.started.release()
        assert self.release.wait(120), "the test never released the predictor"
        return self.inner.predict_proba(x)


def test_saturated_server_answers_503_with_retry_after(predictor, seven_pixels):
    slow = SlowPredictor(predictor)
    app = create_app(slow, limits=ServeLimits(workers=1, queue=1))
    body = {"pixels": seven_pixels}
    with serve_in_thread(app) as url, cf.ThreadPoolExecutor(2) as pool:
        try:
            first = pool.submit(httpx.post, url + "/predict", json=body, timeout=120)
            assert slow.started.acquire(timeout=60)  # the only worker slot is taken
            queued = pool.submit(httpx.post, url + "/predict", json=body, timeout=120)
            _wait_for(lambda: app.state.gate.waiting == 1, "the second request to queue")
            r = httpx.post(url + "/predict", json=body, timeout=60)  # the queue is full too
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert r.json()["code"] == "busy" and "\n" not in r.json()["detail"]
        finally:
            slow.release.set()
        assert first.result().status_code == 200 and queued.result().status_code == 200
        assert first.result().json()["digit"] == 7
        # once drained, the server accepts work again
        assert httpx.post(url + "/predict", json=body, timeout=60).status_code == 200
    assert app.state.gate.active == 0 and app.state.gate.waiting == 0 and app.state.budget.used == 0


def test_buffered_body_budget_gives_503(predictor, seven_png):
    """A body that would take the memory held by request bodies over its limit is refused, not buffered."""
    limits = ServeLimits(max_upload_bytes=100_000, max_buffered_bytes=100_000, workers=1)
    slow = SlowPredictor(predictor)
    app = create_app(slow, limits=limits)
    with serve_in_thread(app) as url, cf.ThreadPoolExecutor(1) as pool:
        try:
            first = pool.submit(
                httpx.post,
                url + "/predict",
                content=seven_png + bytes(90_000 - len(seven_png)),
                headers={"content-type": "image/png"},
                timeout=120,
            )
            assert slow.started.acquire(timeout=60)  # holds 90,000 of the 100,000 bytes
            r = httpx.post(url + "/predict", content=bytes(20_000), headers={"content-type": "image/png"}, timeout=60)
            assert r.status_code == 503 and r.json()["code"] == "busy" and r.headers["retry-after"] == "1"
        finally:
            slow.release.set()
        assert first.result().status_code == 200
    assert app.state.budget.used == 0


# --------------------------------------------------------------------- item 10: hardening
def test_security_headers_on_page_api_and_errors(client):
    responses = {
        "page": client.get("/"),
        "script": client.get("/static/app.js"),
        "health": client.get("/health"),
        "api error": client.post("/predict", content=b"", headers={"content-type": "image/png"}),
        "not found": client.get("/nope"),
        "schema": client.get("/openapi.json"),
    }
    for name, r in responses.items():
        h = r.headers
        assert h["x-content-type-options"] == "nosniff", name
        assert h["referrer-policy"] == "no-referrer", name
        assert h["content-security-policy"] == CSP, name
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
    assert client.get("/docs").headers["content-security-policy"] == CSP  # the docs need no exception


def test_page_works_under_its_csp(client):
    """The page has no inline script, style or event handler and loads only same-origin files
    (CSP blocks anything else); so does the API docs page."""
    html = client.get("/").text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert "<style" not in html and not re.search(r"\sstyle=", html) and not re.search(r"\son[a-z]+=", html)
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/") and not url.startswith("//"), url
    js = client.get("/static/app.js").text
    assert "eval(" not in js and "innerHTML" not in js and 'setAttribute("style"' not in js
    assert not re.search(r"fetch\(\s*[\"']https?:", js)
    docs = client.get("/docs").text
    assert "<script" not in docs and "<style" not in docs and not re.search(r"\sstyle=", docs)
    for url in re.findall(r'(?:src|href)="([^"]+)"', docs):
        assert url.startswith(("/", "#")) and not url.startswith("//"), f"/docs loads {url}"


def test_no_cors_by_default(client):
    r = client.get("/health", headers={"Origin": "https://elsewhere.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    pre = client.options(
        "/predict", headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in pre.headers


def test_health_shows_the_checkpoint_file_name_not_its_path(client):
    source = client.get("/health").json()["source"]
    assert source == "best.pt"  # the shipped run's checkpoint


def test_stalled_upload_gets_408_and_the_connection_closes(predictor):
    app = create_app(predictor, limits=ServeLimits(body_timeout_s=0.5))
    with serve_in_thread(app) as url:
        s = _connect(url)
        s.sendall(_head(10_000) + b"\x89PNG\r\n")  # ...and nothing more
        raw = _read_until_closed(s)
        s.close()
    assert raw.startswith(b"HTTP/1.1 408"), raw[:200]
    body = _json_body(raw)
    assert body["code"] == "body_timeout" and "0.5 s" in body["detail"]


@pytest.mark.parametrize("after_a_request", [False, True])
@pytest.mark.parametrize("sent", [b"", b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-"])
def test_connection_without_a_complete_request_head_is_closed(predictor, sent, after_a_request):
    """uvicorn times out a connection only when it is idle after a response, and stops the timer at
    the first byte: a silent client, or one trickling a request head, held a connection forever."""
    app = create_app(predictor, limits=ServeLimits(keep_alive_s=1))
    with serve_in_thread(app) as url:
        s = _connect(url)
        if after_a_request:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _read_response(s).startswith(b"HTTP/1.1 200")
        s.sendall(sent)
        for _ in range(3):  # trickling more bytes of the head does not postpone the deadline
            time.sleep(0.4)
            try:
                s.sendall(b"X" if sent else b"")
            except OSError:
                break
        assert _read_until_closed(s) == b""
        s.close()


@pytest.mark.slow
def test_keep_alive_outlasts_httpx_pool_expiry(live_server):
    """A connection idle for 6 s (more than httpx's 5 s pool expiry) is still open: the client, not the
    server, closes idle connections, so a reused connection is never closed under the client's request."""
    u = urlparse(live_server)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", "/health")
        assert conn.getresponse().read() and conn.sock is not None
        time.sleep(6.0)
        conn.request("GET", "/health")  # same socket: http.client does not reconnect by itself
        assert conn.getresponse().status == 200
    finally:
        conn.close()


@pytest.mark.slow
def test_fifty_concurrent_clients_all_answered_identically(live_server, seven_png, seven_pixels):
    """50 keep-alive clients, half multipart PNG and half JSON, a pause around httpx's 5 s pool expiry
    in the middle: every request answered, 200, and identical to the sequential answer."""
    payloads = [{"files": {"file": ("seven.png", seven_png, "image/png")}}, {"json": {"pixels": seven_pixels}}]
    reference = [_comparable(httpx.post(live_server + "/predict", timeout=30, **p).json()) for p in payloads]
    assert [a["digit"] for a in reference] == [7, 7]

    def client(i: int) -> list:
        rng = random.Random(i)
        out = []
        with httpx.Client(base_url=live_server, timeout=60) as c:
            for k in range(4):
                if k == 2:
                    time.sleep(rng.uniform(4.8, 5.2))
                try:
                    r = c.post("/predict", **payloads[i % 2])
                    out.append((r.status_code, _comparable(r.json()) == reference[i % 2]))
                except httpx.HTTPError as e:
                    out.append((type(e).__name__, False))
        return out

    with cf.ThreadPoolExecutor(50) as pool:
        results = [x for xs in pool.map(client, range(50)) for x in xs]
    assert len(results) == 200
    assert results == [(200, True)] * 200, {str(x) for x in results if x != (200, True)}


# --------------------------------------------------------------------- item 10: the CLI
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "1e9"])
def test_bad_max_upload_mb_is_a_one_line_error(value, capsys):
    from lenetlab.cli import main

    assert main(["serve", f"--max-upload-mb={value}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --max-upload-mb"), err


def test_bad_max_upload_mb_exits_2_from_the_shell():
    p = subprocess.run(
        [sys.executable, "-m", "lenetlab.cli", "serve", "--max-upload-mb", "nan"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.splitlines()) == 1 and p.stderr.startswith("error: --max-upload-mb nan"), p.stderr


def test_non_loopback_host_warns_on_stderr(monkeypatch, capsys):
    from lenetlab.cli import main
    from lenetlab.errors import LenetlabError
    from lenetlab.serve import app as app_module

    def stop(host, port):
        raise LenetlabError("stopped by the test before binding")

    monkeypatch.setattr(app_module, "_check_can_listen", stop)
    for host in ("0.0.0.0", "::", "192.168.1.10"):
        assert main(["serve", "--host", host]) == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 2 and lines[0].startswith(f"warning: --host {host} is not a loopback address")
    for host in ("127.0.0.1", "localhost", "::1"):
        assert main(["serve", "--host", host]) == 2
        assert "warning" not in capsys.readouterr().err
    assert is_loopback("127.0.0.2") and is_loopback("[::1]") and not is_loopback("example.org")


@pytest.mark.parametrize(
    "bad",
    [
        {"workers": 0},
        {"queue": -1},
        {"body_timeout_s": float("nan")},
        {"max_pixels": 1.5},
        {"max_buffered_bytes": 10, "max_upload_bytes": 100},
    ],
)
def test_limits_are_validated(bad):
    with pytest.raises(ConfigError):
        ServeLimits(**bad)
