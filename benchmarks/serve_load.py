"""A bounded load test of `lenet serve` on this machine: latency, errors, dropped connections, memory.

Starts `lenet serve` (uvicorn, the packaged lenet5 unless --checkpoint/--onnx) on 127.0.0.1 on a free
port, or targets a running local server with --url, then sends --requests POST /predict requests from
--clients threads, each with its own keep-alive httpx client. With the default ``--payload mixed``
half the clients send a multipart PNG (a 280x280 canvas with a drawn '7', like the web page) and half
JSON 28x28 pixels. Every answer is compared with the sequential answer to the same body (all fields
but ``timing_ms``).

Reports p50/p90/p99/max latency, requests/s, 4xx and 5xx counts, dropped connections (a request that
got no HTTP response at all: reset, closed, timed out), answers that differ from the sequential one
and, for a server it started, the server's peak RSS above idle (``VmRSS`` of the server process
sampled every 20 ms from ``/proc/PID/status``, and its ``VmHWM``). ``--large-images N`` then sends N
concurrent large PNGs (``--large-mp`` megapixels, ~0.1 MB bodies each) to show that decoding memory
stays bounded. ``--explain N`` then sends N ``POST /explain`` of the canvas PNG from ``--explain-clients``
threads and reports the server-side time per request (``timing_ms.total`` of each answer: preprocessing,
the one forward pass, the saliency backward pass, packaging the activations) next to the client's
latency; the target is a p50 under 20 ms for ``lenet5``. ``--results FILE`` writes everything as JSON with a
``meta`` block (CPU, cores,
versions, date, command; see ``results_io.py``). Exits 1 on any dropped connection, 5xx or differing answer.

Loopback addresses only: this is not a tool for loading other people's servers.

    python benchmarks/serve_load.py                                  # 2,000 requests, 8 clients
    python benchmarks/serve_load.py --clients 200 --requests 2200    # the 200-client fault test
    python benchmarks/serve_load.py --clients 200 --requests 2200 --large-images 16 \\
        --results results/serve-load-200.json
    python benchmarks/serve_load.py --onnx model.onnx --payload png  # through onnxruntime
    python benchmarks/serve_load.py --clients 1 --requests 50 --explain 400 \
        --results results/serve-explain.json                     # POST /explain's server-side p50
"""

from __future__ import annotations

import argparse
import collections
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


def seven_png(size: int = 280, mode: str = "L") -> bytes:
    """A '7' drawn with thick white strokes on a black ``size`` x ``size`` canvas, as PNG bytes."""
    img = Image.new(mode, (size, size), 0)
    d = ImageDraw.Draw(img)
    s = size / 280
    pts = [(80 * s, 70 * s), (200 * s, 70 * s), (130 * s, 225 * s)]
    white = 255 if mode == "L" else (255,) * len(mode)
    d.line(pts, fill=white, width=round(20 * s), joint="curve")
    for x, y in pts:
        r = 10 * s
        d.ellipse((x - r, y - r, x + r, y + r), fill=white)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def seven_pixels() -> list[list[int]]:
    """The canvas '7' box-reduced to 28x28 grey levels (the JSON payload)."""
    img = Image.open(io.BytesIO(seven_png())).resize((28, 28), Image.Resampling.BOX)
    return np.asarray(img).astype(int).tolist()


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    """Start `lenet serve` on a free loopback port; returns the process and its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "lenetlab.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", *args.serve_arg]
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


def read_rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of process ``pid`` in KiB, from ``/proc/PID/status``."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) in seconds, from ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Samples a process's VmRSS every ``interval`` seconds in a thread; ``peak_kb`` is the largest."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_kb = max(self.peak_kb, read_rss_kb(self.pid)[0])
            except OSError:
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def comparable(answer: dict) -> dict:
    """An answer without its timings (the only field that legitimately varies between calls)."""
    return {k: v for k, v in answer.items() if k != "timing_ms"}


class Tickets:
    """``n`` requests shared by client threads: ``take()`` is True while one is left (thread-safe)."""

    def __init__(self, n: int) -> None:
        self.left, self.lock = n, threading.Lock()

    def take(self) -> bool:
        """Claim one request; False once all ``n`` are claimed."""
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def run_load(url: str, n: int, clients: int, payloads: list[tuple[str, dict]], reference: dict | None,
             timeout: float) -> dict:
    """Send ``n`` requests from ``clients`` threads; client ``i`` sends ``payloads[i % len(payloads)]``.

    Returns latencies (s), status counts, dropped connections (no HTTP response) by exception type,
    answers differing from ``reference`` (payload name -> comparable answer), and the wall time.
    """
    latencies: list[float] = []
    by_payload: dict[str, list[float]] = collections.defaultdict(list)
    statuses: collections.Counter = collections.Counter()
    dropped: collections.Counter = collections.Counter()
    samples: list[str] = []
    mismatched = 0
    lock = threading.Lock()
    tickets = Tickets(n)
    start = threading.Barrier(clients + 1)

    def worker(i: int) -> None:
        nonlocal mismatched
        name, kwargs = payloads[i % len(payloads)]
        with httpx.Client(base_url=url, timeout=timeout, limits=httpx.Limits(max_connections=1)) as client:
            start.wait()
            while tickets.take():
                t0 = time.perf_counter()
                status, differs, error = None, False, None
                try:
                    r = client.post("/predict", **kwargs)
                    status = r.status_code
                    if status == 200 and reference is not None:
                        differs = comparable(r.json()) != reference[name]
                    elif status != 200:
                        error = f"HTTP {status}: {r.text[:160]}"
                except httpx.HTTPError as e:
                    error = f"{type(e).__name__}: {e}"
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    by_payload[name].append(dt)
                    if status is None:
                        dropped[error.split(":")[0]] += 1
                    else:
                        statuses[status] += 1
                    mismatched += differs
                    if error and len(samples) < 5:
                        samples.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return {"latencies": latencies, "by_payload": by_payload, "statuses": statuses, "dropped": dropped, "mismatched": mismatched,
            "samples": samples, "wall": time.perf_counter() - t0}


def run_explain(url: str, n: int, clients: int, png: bytes, timeout: float) -> dict:
    """Send ``n`` ``POST /explain`` of ``png`` from ``clients`` threads; the server-side and client-side
    time per request (ms) and the answers' layer names and sizes."""
    server: list[dict] = []
    client_ms: list[float] = []
    statuses: collections.Counter = collections.Counter()
    info: dict = {}
    lock = threading.Lock()
    tickets = Tickets(n)

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=timeout, limits=httpx.Limits(max_connections=1)) as client:
            while tickets.take():
                t0 = time.perf_counter()
                r = client.post("/explain", files={"file": ("seven.png", png, "image/png")})
                dt = 1e3 * (time.perf_counter() - t0)
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        body = r.json()
                        server.append(body["timing_ms"])
                        client_ms.append(dt)
                        info.update(digit=body["digit"], layers=[layer["name"] for layer in body["layers"]],
                                    response_kb=round(len(r.content) / 1024, 1))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def p(values: list[float], q: float):
        return round(float(np.percentile(values, q)), 2) if values else None

    parts = {k: p([t[k] for t in server], 50) for k in ("preprocess", "forward", "saliency", "package")}
    total = [t["total"] for t in server]
    return {"requests": n, "clients": clients, "ok": statuses.get(200, 0),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "server_p50_ms": p(total, 50), "server_p90_ms": p(total, 90), "server_p99_ms": p(total, 99),
            "server_p50_parts_ms": parts, "client_p50_ms": p(client_ms, 50), "client_p90_ms": p(client_ms, 90),
            "target_p50_ms": 20, **info}


def summarise(res: dict) -> dict:
    """Percentiles (ms), throughput and error counts of one :func:`run_load` result."""
    lat = np.array(res["latencies"]) * 1e3
    st = res["statuses"]
    pct = (lambda q: round(float(np.percentile(lat, q)), 1)) if len(lat) else (lambda q: None)
    return {
        "requests": len(lat), "wall_s": round(res["wall"], 2),
        "requests_per_s": round(len(lat) / res["wall"], 1) if res["wall"] else None,
        "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
        "max_ms": round(float(lat.max()), 1) if len(lat) else None,
        "ok": st.get(200, 0), "errors_4xx": sum(v for k, v in st.items() if 400 <= k < 500),
        "errors_5xx": sum(v for k, v in st.items() if k >= 500),
        "statuses": {str(k): v for k, v in sorted(st.items())},
        "dropped": sum(res["dropped"].values()), "dropped_by_error": dict(res["dropped"]),
        "mismatched": res["mismatched"], "error_samples": res["samples"],
        "by_payload": {name: {"requests": len(v), "p50_ms": round(float(np.percentile(v, 50)) * 1e3, 1),
                              "p99_ms": round(float(np.percentile(v, 99)) * 1e3, 1)}
                       for name, v in sorted(res["by_payload"].items()) if v},
    }


def main(argv=None) -> int:
    """Run the load test; exit status 0 when nothing was dropped, no 5xx and every answer matched."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--url", default=None, help="target a running local server instead of starting one")
    ap.add_argument("--checkpoint", default=None, help="checkpoint to serve (default: the packaged lenet5)")
    ap.add_argument("--onnx", default=None, help="serve this ONNX model through onnxruntime")
    ap.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for the started `lenet serve` (repeatable)")
    ap.add_argument("--requests", type=int, default=2000, help="requests in the measured run")
    ap.add_argument("--clients", "--concurrency", dest="clients", type=int, default=8,
                    help="concurrent clients (threads, one keep-alive connection each)")
    ap.add_argument("--warmup", type=int, default=20, help="requests before the measured run")
    ap.add_argument("--payload", choices=["mixed", "png", "json"], default="mixed",
                    help="mixed: half the clients multipart PNG, half JSON pixels")
    ap.add_argument("--timeout", type=float, default=60.0, help="per-request client timeout, s")
    ap.add_argument("--large-images", type=int, default=0, metavar="N",
                    help="then send N concurrent large PNGs (memory stays bounded?)")
    ap.add_argument("--large-mp", type=float, default=25.0, help="megapixels of each large PNG")
    ap.add_argument("--explain", type=int, default=0, metavar="N",
                    help="then send N POST /explain and report the server-side time per request")
    ap.add_argument("--explain-clients", type=int, default=1, help="concurrent clients for --explain")
    ap.add_argument("--results", default=None, metavar="FILE", help="also write the figures as JSON here")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    if not (1 <= args.requests <= 100_000 and 1 <= args.clients <= 1000 and 0 <= args.large_images <= 64
            and 0 <= args.explain <= 100_000 and 1 <= args.explain_clients <= 64):
        ap.error("--requests must be 1..100000, --clients 1..1000, --large-images 0..64, --explain 0..100000, "
                 "--explain-clients 1..64")

    png = seven_png()
    body = json.dumps({"pixels": seven_pixels()}).encode()
    kinds = {"png": ("png", {"files": {"file": ("seven.png", png, "image/png")}}),
             "json": ("json", {"content": body, "headers": {"content-type": "application/json"}})}
    payloads = [kinds["png"], kinds["json"]] if args.payload == "mixed" else [kinds[args.payload]]

    proc = None
    if args.url:
        host = urlparse(args.url).hostname or ""
        if host not in LOOPBACK:
            ap.error(f"--url {args.url}: only loopback addresses (127.0.0.1, localhost, ::1) are allowed")
        url = args.url.rstrip("/")
    else:
        proc, url = start_server(args)
    load_at_start = round(os.getloadavg()[0], 1)
    out: dict = {}
    try:
        health = httpx.get(url + "/health", timeout=10).json()
        reference = {}
        for name, kwargs in payloads:  # the sequential answers
            r = httpx.post(url + "/predict", timeout=30, **kwargs)
            r.raise_for_status()
            reference[name] = comparable(r.json())
        run_load(url, args.warmup, min(args.clients, max(args.warmup, 1)), payloads, None, args.timeout)
        idle_kb = read_rss_kb(proc.pid)[0] if proc else None
        if proc:
            cpu0 = cpu_seconds(proc.pid)
            with RssSampler(proc.pid) as sampler:
                res = run_load(url, args.requests, args.clients, payloads, reference, args.timeout)
            cpu = cpu_seconds(proc.pid) - cpu0
        else:
            res = run_load(url, args.requests, args.clients, payloads, reference, args.timeout)
        load = summarise(res)
        load.update({"clients": args.clients, "payload": args.payload,
                     "digit_7_answers": {k: v["digit"] == 7 for k, v in reference.items()}})
        if proc:
            rss, hwm = read_rss_kb(proc.pid)
            load.update({"server_idle_rss_mb": round(idle_kb / 1024, 1),
                         "server_peak_rss_mb": round(sampler.peak_kb / 1024, 1),
                         "server_peak_rss_above_idle_mb": round((sampler.peak_kb - idle_kb) / 1024, 1),
                         "server_rss_after_mb": round(rss / 1024, 1), "server_vmhwm_mb": round(hwm / 1024, 1),
                         "server_cpu_s": round(cpu, 2),
                         "server_cpu_ms_per_request": round(1e3 * cpu / max(1, load["requests"]), 2)})
        out.update({"url": url, "model": health.get("model"), "backend": health.get("backend"), "load": load})

        if args.large_images:
            side = round((args.large_mp * 1e6) ** 0.5)
            big = seven_png(side, "RGB")
            big_payload = [("large", {"files": {"file": ("large.png", big, "image/png")}})]
            before_kb = read_rss_kb(proc.pid)[0] if proc else None
            if proc:
                with RssSampler(proc.pid) as sampler:
                    res = run_load(url, args.large_images, args.large_images, big_payload, None, args.timeout)
            else:
                res = run_load(url, args.large_images, args.large_images, big_payload, None, args.timeout)
            large = summarise(res)
            large.update({"images": args.large_images, "width": side, "height": side,
                          "megapixels": round(side * side / 1e6, 2), "body_kb": round(len(big) / 1024, 1)})
            if proc:
                large.update({"server_rss_before_mb": round(before_kb / 1024, 1),
                              "server_peak_rss_mb": round(sampler.peak_kb / 1024, 1),
                              "server_peak_rss_above_idle_mb": round((sampler.peak_kb - idle_kb) / 1024, 1),
                              "server_vmhwm_mb": round(read_rss_kb(proc.pid)[1] / 1024, 1)})
            out["large_images"] = large

        if args.explain:
            run_explain(url, min(20, args.explain), 1, png, args.timeout)  # warm-up
            out["explain"] = run_explain(url, args.explain, args.explain_clients, png, args.timeout)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    load = out["load"]
    failed = load["dropped"] + load["errors_5xx"] + load["mismatched"] + load["errors_4xx"]
    if "large_images" in out:
        failed += out["large_images"]["dropped"] + out["large_images"]["errors_5xx"]
    if "explain" in out:
        failed += out["explain"]["requests"] - out["explain"]["ok"]
    out["passed"] = failed == 0
    if args.results:
        from results_io import command_line, make_meta, strip_repo_paths, write_results

        command = command_line(argv, "python benchmarks/serve_load.py")
        title = "Serving under load and faults: POST /predict" + (", POST /explain" if args.explain else "")
        meta = make_meta("serve-load-run", title, command, load_average=load_at_start,
                         regenerate=f"{command} --results {args.results}")
        write_results(args.results, meta, data=strip_repo_paths({k: v for k, v in out.items() if k != "url"}))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{load['requests']} requests, {args.clients} clients, {args.payload} payload -> "
              f"{out['model']} ({out['backend']}) at {url}")
        print(f"  p50 {load['p50_ms']} ms   p90 {load['p90_ms']} ms   p99 {load['p99_ms']} ms   "
              f"max {load['max_ms']} ms   {load['requests_per_s']} requests/s over {load['wall_s']} s")
        print(f"  4xx {load['errors_4xx']}   5xx {load['errors_5xx']}   dropped {load['dropped']} "
              f"{load['dropped_by_error'] or ''}  differing answers {load['mismatched']}")
        if "server_peak_rss_mb" in load:
            print(f"  server RSS: idle {load['server_idle_rss_mb']} MB, peak {load['server_peak_rss_mb']} MB "
                  f"(+{load['server_peak_rss_above_idle_mb']} MB); server CPU "
                  f"{load['server_cpu_ms_per_request']} ms per request (load-independent)")
        if "large_images" in out:
            lg = out["large_images"]
            print(f"{lg['images']} concurrent {lg['width']}x{lg['height']} PNGs ({lg['megapixels']} MP, "
                  f"{lg['body_kb']} KB): statuses {lg['statuses']}, dropped {lg['dropped']}, "
                  f"max {lg['max_ms']} ms")
            if "server_peak_rss_mb" in lg:
                print(f"  server RSS: peak {lg['server_peak_rss_mb']} MB "
                      f"(+{lg['server_peak_rss_above_idle_mb']} MB above idle)")
        if "explain" in out:
            ex = out["explain"]
            print(f"{ex['ok']}/{ex['requests']} POST /explain, {ex['clients']} clients: server-side p50 "
                  f"{ex['server_p50_ms']} ms (p90 {ex['server_p90_ms']} ms; {ex['server_p50_parts_ms']}), client "
                  f"p50 {ex['client_p50_ms']} ms, {ex.get('response_kb')} KB per answer (target: p50 < 20 ms)")
        print(f"  ({os.cpu_count()} CPUs, shared with the load generator: timings are noisy)")
    for e in load["error_samples"]:
        print("  error:", e, file=sys.stderr)
    return 0 if out["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
