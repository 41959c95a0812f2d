"""A bounded load test of `lenet serve` on this machine: latency percentiles, throughput, errors.

Starts `lenet serve` (uvicorn, the packaged lenet5 unless --checkpoint/--onnx) on 127.0.0.1 on a free
port, or targets a running local server with --url, then sends --requests POST /predict requests
(a 280x280 canvas PNG of a drawn '7', multipart, like the web page) from --concurrency threads,
each with its own keep-alive httpx client. Prints p50/p90/p99/max latency, requests/s and the error
count; exits 1 if any request failed or was misread. Loopback addresses only: this is not a tool
for loading other people's servers.

    .venv/bin/python benchmarks/serve_load.py                      # 2,000 requests, 8 at a time
    .venv/bin/python benchmarks/serve_load.py --onnx model.onnx    # through onnxruntime
    .venv/bin/python benchmarks/serve_load.py --payload json       # JSON 28x28 pixels instead of a PNG
    .venv/bin/python benchmarks/serve_load.py --results results/serve-load.json   # the docs' results file

``--results FILE`` puts this run's figures into FILE as the row of its backend and payload, keeping
the other rows (one file holds the torch and the onnxruntime rows; see results_io.py).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

import httpx
import numpy as np
from PIL import Image, ImageDraw

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def seven_png() -> bytes:
    """A '7' drawn with thick white strokes on a black 280x280 canvas, as PNG bytes."""
    img = Image.new("L", (280, 280), 0)
    d = ImageDraw.Draw(img)
    pts = [(80, 70), (200, 70), (130, 225)]
    d.line(pts, fill=255, width=20, joint="curve")
    for x, y in pts:
        d.ellipse((x - 10, y - 10, x + 10, y + 10), fill=255)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def seven_pixels() -> list[list[int]]:
    img = Image.open(io.BytesIO(seven_png())).resize((28, 28), Image.Resampling.BOX)
    return np.asarray(img).astype(int).tolist()


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "lenetlab.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning"]
    if args.checkpoint:
        cmd.append(args.checkpoint)
    if args.onnx:
        cmd += ["--onnx", args.onnx]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"lenet serve exited early:\n{proc.stdout.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("lenet serve did not start within 120 s")


def run_load(url: str, n: int, concurrency: int, payload: str, expect: int | None) -> dict:
    """Send ``n`` requests from ``concurrency`` threads; returns latencies (s), errors and wall time."""
    png = seven_png()
    body = json.dumps({"pixels": seven_pixels()}).encode()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                t0 = time.perf_counter()
                try:
                    if payload == "png":
                        r = client.post("/predict", files={"file": ("seven.png", png, "image/png")})
                    else:
                        r = client.post("/predict", content=body, headers={"content-type": "application/json"})
                    dt = time.perf_counter() - t0
                    ok = r.status_code == 200 and (expect is None or r.json()["digit"] == expect)
                    err = None if ok else f"HTTP {r.status_code}: {r.text[:120]}"
                except httpx.HTTPError as e:
                    dt, err = time.perf_counter() - t0, f"{type(e).__name__}: {e}"
                with lock:
                    latencies.append(dt)
                    if err:
                        errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "errors": errors, "wall": time.perf_counter() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--url", default=None, help="target a running local server instead of starting one")
    ap.add_argument("--checkpoint", default=None, help="checkpoint to serve (default: the packaged lenet5)")
    ap.add_argument("--onnx", default=None, help="serve this ONNX model through onnxruntime")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--payload", choices=["png", "json"], default="png")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--results", metavar="FILE", default=None,
                    help="put the figures into this results file, replacing the row of the same backend and payload")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.requests > 100_000:
        ap.error("--requests must be 1..100000 and --concurrency at least 1")

    proc = None
    if args.url:
        host = urlparse(args.url).hostname or ""
        if host not in LOOPBACK:
            ap.error(f"--url {args.url}: only loopback addresses (127.0.0.1, localhost, ::1) are allowed")
        url = args.url.rstrip("/")
    else:
        proc, url = start_server(args)
    try:
        health = httpx.get(url + "/health", timeout=10).json()
        run_load(url, args.warmup, min(args.concurrency, args.warmup), args.payload, None)
        res = run_load(url, args.requests, args.concurrency, args.payload, expect=7)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    lat = np.array(res["latencies"]) * 1e3
    summary = {
        "url": url, "model": health.get("model"), "backend": health.get("backend"), "payload": args.payload,
        "requests": len(lat), "concurrency": args.concurrency, "errors": len(res["errors"]),
        "wall_s": round(res["wall"], 3), "requests_per_s": round(len(lat) / res["wall"], 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2), "p90_ms": round(float(np.percentile(lat, 90)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2), "max_ms": round(float(lat.max()), 2),
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['requests']} requests, {args.concurrency} concurrent, {args.payload} payload -> "
              f"{summary['model']} ({summary['backend']}) at {url}")
        print(f"  p50 {summary['p50_ms']:.2f} ms   p90 {summary['p90_ms']:.2f} ms   p99 {summary['p99_ms']:.2f} ms"
              f"   max {summary['max_ms']:.2f} ms")
        print(f"  {summary['requests_per_s']:.1f} requests/s over {summary['wall_s']:.1f} s;"
              f"  errors: {summary['errors']}  ({summary['cpu_count']} CPUs, shared: timings are noisy)")
    for e in res["errors"][:5]:
        print("  error:", e, file=sys.stderr)
    if args.results:
        write_load_results(args.results, summary, sys.argv[1:] if argv is None else argv)
    return 1 if res["errors"] else 0


def write_load_results(path: str, summary: dict, argv: list[str]) -> None:
    """Replace (or add) this backend's and payload's row in the results file ``path``."""
    from pathlib import Path

    from results_io import (
        command_line,
        load_results,
        machine_line,
        make_meta,
        write_results,
    )

    command = command_line(argv, "python benchmarks/serve_load.py")
    meta = make_meta("serve-load", "Serving under load: POST /predict", command,
                     regenerate=f"python benchmarks/serve_load.py --results {path}",
                     regenerate_note="then again with --onnx MODEL.onnx for the onnxruntime row")
    row = {k: v for k, v in summary.items() if k != "url"}
    row.update(command=command, source=meta["source"], machine=machine_line(meta), date=meta["date"])
    rows = load_results(path)["rows"] if Path(path).is_file() else []
    rows = [r for r in rows if (r.get("backend"), r.get("payload")) != (row["backend"], row["payload"])] + [row]
    if len({r.get("source") for r in rows}) > 1:
        meta["source"] = "measured at several commits (each row names its own, with its machine and date)"
    write_results(path, meta, rows=rows)


if __name__ == "__main__":
    sys.exit(main())
