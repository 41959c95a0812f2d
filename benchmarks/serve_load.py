"""A load test of `lenet serve` whose client does not share the server's interpreter or starve it.

Starts `lenet serve` (the packaged lenet5 unless --checkpoint/--onnx) as a subprocess on a free loopback
port, twice: first the **baseline** (``--max-batch 1 --workers 1``: batching off, one process), then the
**default** server (batching on, the default number of workers, or ``--workers N``), and sends both the
same load: ``--requests`` POSTs to ``--route`` (/predict or /explain) from ``--clients`` concurrent
asyncio clients (one ``httpx.AsyncClient`` event loop per process, in ``--client-procs`` processes).
The bodies are the 200 real digits of the embedded ``mnist-subset`` test split, as 280x280 PNGs
(multipart, like the web page) and/or 28x28 JSON pixels (``--body``); each answer is compared with the
baseline server's sequential answer to the same body (every field but ``timing_ms``).

Reports for each server: requests/s, p50/p90/p99/max latency, status counts, 5xx, dropped connections (no
HTTP response at all: reset, closed, timed out), mismatched answers, the server's CPU seconds per request
(user + system of the server and its worker processes, from psutil, before and after the measured run)
and its peak RSS (server + workers, sampled every 20 ms); then the ratio of the two servers' requests/s.
``--overload N`` then sends N concurrent clients (two requests each) to the default server and counts the
answers: only 200 and 503 with ``Retry-After`` are acceptable; connection-level failures are counted
apart. ``--url`` targets a running local server instead (one run, no baseline, no CPU or memory).
``--results FILE`` writes everything as JSON with a ``meta`` block (see ``results_io.py``), including the
load average: on a shared machine the figures are noisy. Exits 1 on any dropped connection, 5xx,
mismatched answer or unacceptable overload answer.

Loopback addresses only: this is not a tool for loading other people's servers.

    python benchmarks/serve_load.py                                       # 2,000 requests, 8 clients
    python benchmarks/serve_load.py --clients 200 --requests 5000        # issue 28's acceptance run
    python benchmarks/serve_load.py --clients 64 --requests 1500 --overload 1000 \\
        --results results/serve-load-async.json
    python benchmarks/serve_load.py --route explain --clients 8 --requests 400 --body png
    python benchmarks/serve_load.py --onnx model.onnx --body png          # also serve an ONNX model
"""

import argparse
import asyncio
import collections
import io
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

import httpx
import numpy as np
import psutil
from PIL import Image

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
BASELINE_ARGS = ["--max-batch", "1", "--workers", "1"]


def digit_bodies(kind: str) -> list[dict]:
    """The embedded ``mnist-subset`` test digits as request bodies: ``{"label", "kind", "content",
    "content_type"}`` with a 280x280 PNG (``png``), 28x28 JSON pixels (``json``) or both (``mixed``)."""
    import lenetlab.data

    test = lenetlab.data.load("mnist-subset").test
    bodies = []
    for i, (x, y) in enumerate(zip(test.x, test.y)):
        img = x[0].numpy().astype(np.uint8)
        if kind == "png" or (kind == "mixed" and i % 2 == 0):
            buf = io.BytesIO()
            Image.fromarray(img).resize((280, 280), Image.Resampling.BILINEAR).save(buf, format="PNG")
            bodies.append({"label": int(y), "kind": "png", "content": buf.getvalue(), "content_type": "image/png"})
        else:
            bodies.append(
                {
                    "label": int(y),
                    "kind": "json",
                    "content_type": "application/json",
                    "content": json.dumps({"pixels": img.tolist()}).encode(),
                }
            )
    return bodies


def request_kwargs(body: dict) -> dict:
    """httpx keyword arguments sending ``body``: a multipart upload for a PNG, the raw bytes for JSON."""
    if body["kind"] == "png":
        return {"files": {"file": ("digit.png", body["content"], body["content_type"])}}
    return {"content": body["content"], "headers": {"content-type": body["content_type"]}}


def request_bytes(url: str, route: str, body: dict) -> bytes:
    """One keep-alive ``POST route`` of ``body`` as raw HTTP/1.1 bytes (what httpx sends for :func:`request_kwargs`)."""
    req = httpx.Request("POST", url + route, **request_kwargs(body))
    content = req.read()
    head = f"POST {route} HTTP/1.1\r\nHost: {req.url.netloc.decode()}\r\nContent-Length: {len(content)}\r\n"
    head += f"Content-Type: {req.headers['content-type']}\r\n\r\n"
    return head.encode() + content


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
    """The status, lower-cased headers and body of one HTTP/1.1 response with a Content-Length."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line))
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return int(lines[0].split(" ", 2)[1]), headers, body


def comparable(answer: dict) -> dict:
    """An answer without its timings (the only field that legitimately varies between calls)."""
    return {k: v for k, v in answer.items() if k != "timing_ms"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    serve_args: list[str], port: int | None = None, timeout: float = 120.0
) -> tuple[subprocess.Popen, str]:
    """Start ``lenet serve SERVE_ARGS`` on 127.0.0.1 (``port``, default a free one); returns the process
    and its base URL once ``/health`` answers 200. Also the starter of the tests' servers."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "lenetlab.cli", "serve", *serve_args, "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*cmd, "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"lenet serve exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    stop_server(proc)
    raise SystemExit(f"lenet serve did not answer /health within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the server (and so its workers) and wait for it; SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_tree(pid: int) -> list[psutil.Process]:
    """The server process and its live descendants (uvicorn's workers)."""
    p = psutil.Process(pid)
    return [p, *p.children(recursive=True)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the server and its live worker processes."""
    total = 0.0
    for p in server_tree(pid):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


class RssSampler:
    """Samples the summed RSS of a server and its workers every ``interval`` s; ``peak_mb`` is the largest."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval, self.peak_mb = pid, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = 0
            for p in server_tree(self.pid):
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, rss / 2**20)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def empty_result() -> dict:
    """What :func:`async_load` counts, before the first request."""
    return {
        "latencies": [],
        "busy_latencies": [],
        "statuses": collections.Counter(),
        "dropped": collections.Counter(),
        "mismatched": 0,
        "no_retry_after": 0,
        "samples": [],
    }


async def async_load(
    url: str, route: str, bodies: list[dict], n: int, clients: int, reference: list | None, timeout: float
) -> dict:
    """Send ``n`` requests to ``url + route`` from ``clients`` coroutines, each with its own keep-alive
    connection (raw HTTP/1.1 over asyncio streams: a cheap client leaves the shared cores to the server);
    request ``i`` sends ``bodies[i % len(bodies)]``. Returns latencies (s), status counts, dropped
    connections by exception type, 503s without ``Retry-After``, answers differing from ``reference``
    (one comparable answer per body, or None) and a few error samples."""
    out = empty_result()
    next_i = 0
    raw = [request_bytes(url, route, b) for b in bodies]
    u = urlparse(url)

    async def one_client() -> None:
        nonlocal next_i
        conn = None
        while next_i < n:
            i, next_i = next_i, next_i + 1
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    if conn is None:
                        conn = await asyncio.open_connection(u.hostname, u.port)
                    conn[1].write(raw[i % len(bodies)])
                    status, headers, body = await read_response(conn[0])
            except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                out["dropped"][type(e).__name__] += 1
                if len(out["samples"]) < 5:
                    out["samples"].append(f"{type(e).__name__}: {e}")
                if conn is not None:
                    conn[1].close()
                conn = None
                continue
            out["latencies"].append(time.perf_counter() - t0)
            out["statuses"][status] += 1
            if status == 200 and reference is not None:
                out["mismatched"] += comparable(json.loads(body)) != reference[i % len(bodies)]
            elif status == 503:
                out["no_retry_after"] += "retry-after" not in headers
                out["busy_latencies"].append(out["latencies"][-1])
            elif status != 200 and len(out["samples"]) < 5:
                out["samples"].append(f"HTTP {status}: {body[:160]}")
            if headers.get("connection", "").lower() == "close":
                conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return out


def _client_proc(args: tuple, barrier, results) -> None:
    """One client process: wait for its siblings, run :func:`async_load`, put its result (and the CPU
    seconds it took) on ``results``."""
    barrier.wait()
    cpu = time.process_time()
    res = asyncio.run(async_load(*args))
    results.put({**res, "client_cpu": time.process_time() - cpu})


def run_load(
    url: str, route: str, bodies: list[dict], n: int, clients: int, procs: int, reference: list | None, timeout: float
) -> dict:
    """:func:`async_load` split over ``procs`` client processes (``n`` and ``clients`` shared out);
    the merged counts and the wall time from the moment all processes are ready."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(procs + 1), ctx.Queue()
    workers = []
    for k in range(procs):
        share = (n // procs + (k < n % procs), max(1, clients // procs + (k < clients % procs)))
        workers.append(
            ctx.Process(
                target=_client_proc,
                daemon=True,
                args=((url, route, bodies, share[0], share[1], reference, timeout), barrier, results),
            )
        )
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter()
    parts = [results.get() for _ in workers]
    wall = time.perf_counter() - t0
    for w in workers:
        w.join()
    merged = {**empty_result(), "client_cpu": 0.0}
    for p in parts:
        for k, v in p.items():
            merged[k] = merged[k] + v
    merged["wall"] = wall
    return merged


def summarise(res: dict, n: int, clients: int) -> dict:
    """The figures of one :func:`run_load` result (milliseconds, requests/s, counts)."""
    lat = np.array(res["latencies"] or [0.0]) * 1000
    p50, p90, p99 = (round(float(v), 1) for v in np.percentile(lat, [50, 90, 99]))
    statuses = {str(k): v for k, v in sorted(res["statuses"].items())}
    return {
        "requests": n,
        "clients": clients,
        "wall_s": round(res["wall"], 2),
        "requests_per_s": round(len(res["latencies"]) / res["wall"], 1),
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "max_ms": round(float(lat.max()), 1),
        "statuses": statuses,
        "errors_5xx": sum(v for k, v in res["statuses"].items() if k >= 500),
        "errors_4xx": sum(v for k, v in res["statuses"].items() if 400 <= k < 500),
        "dropped": sum(res["dropped"].values()),
        "dropped_by_error": dict(res["dropped"]),
        "mismatched": res["mismatched"],
        "no_retry_after": res["no_retry_after"],
        "busy_p50_ms": round(1000 * float(np.median(res["busy_latencies"])), 1) if res["busy_latencies"] else None,
        "error_samples": res["samples"],
    }


def sequential_answers(url: str, route: str, bodies: list[dict], timeout: float) -> list[dict]:
    """Each body's answer sent alone, one after the other (the reference answers)."""
    answers = []
    with httpx.Client(base_url=url, timeout=timeout) as client:
        for b in bodies:
            r = client.post(route, **request_kwargs(b))
            if r.status_code != 200:
                raise SystemExit(
                    f"the reference request for a {b['kind']} body got HTTP {r.status_code}: {r.text[:200]}"
                )
            answers.append(comparable(r.json()))
    return answers


def stage_seconds(url: str) -> dict[str, float]:
    """The server's ``lenet_stage_seconds_total`` by stage, from ``GET /metrics`` (all workers' sums)."""
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(httpx.get(url + "/metrics", timeout=30).text)
    return {s.labels["stage"]: s.value for f in families if f.name == "lenet_stage_seconds" for s in f.samples}


def measure_server(
    serve_args: list[str], args, bodies: list[dict], reference: list | None, overload: int = 0
) -> tuple[dict, list]:
    """Start a server with ``serve_args``, warm it up, run the load (and the overload), stop it.
    Returns its figures and the reference answers (this server's sequential ones when none were given)."""
    proc, url = start_server(serve_args)
    try:
        processes = len(server_tree(proc.pid))
        if reference is None:
            reference = sequential_answers(url, args.route, bodies, args.timeout)
        run_load(url, args.route, bodies, args.warmup, min(args.clients, args.warmup), 1, None, args.timeout)
        cpu0, stages0 = cpu_seconds(proc.pid), stage_seconds(url)
        with RssSampler(proc.pid) as rss:
            res = run_load(
                url, args.route, bodies, args.requests, args.clients, args.client_procs, reference, args.timeout
            )
        cpu, stages = cpu_seconds(proc.pid) - cpu0, stage_seconds(url)
        answered = max(1, len(res["latencies"]))
        out = {
            "serve_args": serve_args,
            "server_processes": processes,
            **summarise(res, args.requests, args.clients),
            "server_cpu_ms_per_request": round(1000 * cpu / answered, 2),
            "client_cpu_ms_per_request": round(1000 * res["client_cpu"] / answered, 2),
            "stage_ms_per_request": {
                k: round(1000 * (v - stages0.get(k, 0.0)) / answered, 3) for k, v in stages.items()
            },
            "server_peak_rss_mb": round(rss.peak_mb, 1),
        }
        if overload:
            with RssSampler(proc.pid) as rss:
                res = run_load(url, args.route, bodies, 2 * overload, overload, args.client_procs, None, args.timeout)
            o = summarise(res, 2 * overload, overload)
            o["server_peak_rss_mb"] = round(rss.peak_mb, 1)
            o["acceptable"] = set(o["statuses"]) <= {"200", "503"} and o["no_retry_after"] == 0 and o["dropped"] == 0
            out["overload"] = o
    finally:
        stop_server(proc)
    return out, reference


def passed(run: dict) -> bool:
    """No dropped connection, 5xx or mismatched answer (and an acceptable overload, if any)."""
    return (
        run["dropped"] == 0
        and run["errors_5xx"] == 0
        and run["mismatched"] == 0
        and run.get("overload", {}).get("acceptable", True)
    )


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--url", default=None, help="target a running local server instead of starting two")
    ap.add_argument("--checkpoint", default=None, help="checkpoint to serve (default: the packaged lenet5)")
    ap.add_argument("--onnx", default=None, help="also serve this ONNX model through onnxruntime")
    ap.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for both `lenet serve`s (repeatable)",
    )
    ap.add_argument("--workers", type=int, default=None, help="--workers of the default server (default: its own)")
    ap.add_argument("--route", choices=["predict", "explain"], default="predict")
    ap.add_argument(
        "--body",
        "--payload",
        dest="body",
        choices=["mixed", "png", "json"],
        default="mixed",
        help="280x280 PNGs, 28x28 JSON pixels, or half each",
    )
    ap.add_argument("--requests", type=int, default=2000, help="requests in each measured run")
    ap.add_argument(
        "--clients",
        "--concurrency",
        dest="clients",
        type=int,
        default=8,
        help="concurrent clients (coroutines, shared out over --client-procs)",
    )
    ap.add_argument("--client-procs", type=int, default=1, help="client processes, one event loop each")
    ap.add_argument("--warmup", type=int, default=50, help="requests before each measured run")
    ap.add_argument(
        "--overload",
        type=int,
        default=0,
        metavar="N",
        help="then N concurrent clients, two requests each, against the default server",
    )
    ap.add_argument("--timeout", type=float, default=60.0, help="per-request client timeout, s")
    ap.add_argument("--results", default=None, metavar="FILE", help="also write the figures as JSON here")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    if not (
        1 <= args.requests <= 100_000
        and 1 <= args.clients <= 2000
        and 0 <= args.overload <= 2000
        and 1 <= args.client_procs <= 16
        and args.warmup >= 1
    ):
        ap.error(
            "--requests must be 1..100000, --clients 1..2000, --overload 0..2000, --client-procs 1..16, --warmup >= 1"
        )
    if args.url and urlparse(args.url).hostname not in LOOPBACK:
        ap.error(f"--url {args.url}: only loopback addresses (this is not a tool for loading other servers)")
    args.route = "/" + args.route
    return args


def show(name: str, r: dict) -> None:
    print(
        f"{name}: {r['requests']} requests, {r['clients']} clients -> {r['requests_per_s']} requests/s   "
        f"p50 {r['p50_ms']} ms   p90 {r['p90_ms']} ms   p99 {r['p99_ms']} ms   max {r['max_ms']} ms"
    )
    extra = (
        f"   server CPU {r['server_cpu_ms_per_request']} ms/request (client {r['client_cpu_ms_per_request']})"
        f"   peak RSS {r['server_peak_rss_mb']} MB ({r['server_processes']} server processes)"
        if "server_peak_rss_mb" in r
        else ""
    )
    print(
        f"  statuses {r['statuses']}   5xx {r['errors_5xx']}   dropped {r['dropped']} "
        f"{r['dropped_by_error'] or ''}  mismatched {r['mismatched']}{extra}"
    )
    if "stage_ms_per_request" in r:
        print("  server ms/request by stage: " + ", ".join(f"{k} {v}" for k, v in r["stage_ms_per_request"].items()))
    if "overload" in r:
        o = r["overload"]
        print(
            f"  overload, {o['clients']} concurrent clients: statuses {o['statuses']}, 503 without Retry-After "
            f"{o['no_retry_after']}, dropped {o['dropped']} {o['dropped_by_error'] or ''}, p99 {o['p99_ms']} ms "
            f"(503s: p50 {o['busy_p50_ms']} ms), "
            f"peak RSS {o['server_peak_rss_mb']} MB -> {'acceptable' if o['acceptable'] else 'NOT acceptable'}"
        )
    for e in r["error_samples"] + r.get("overload", {}).get("error_samples", []):
        print("  error:", e, file=sys.stderr)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    load_at_start = round(os.getloadavg()[0], 2)
    bodies = digit_bodies(args.body)
    common = [
        *args.serve_arg,
        *([args.checkpoint] if args.checkpoint else []),
        *(["--onnx", args.onnx] if args.onnx else []),
    ]
    out = {
        "route": args.route,
        "body": args.body,
        "clients": args.clients,
        "requests": args.requests,
        "client_procs": args.client_procs,
        "distinct_bodies": len(bodies),
        "cpu_count": os.cpu_count(),
    }
    if args.url:
        reference = sequential_answers(args.url, args.route, bodies, args.timeout)
        res = run_load(
            args.url, args.route, bodies, args.requests, args.clients, args.client_procs, reference, args.timeout
        )
        out["runs"] = {"target": summarise(res, args.requests, args.clients)}
    else:
        baseline, reference = measure_server([*BASELINE_ARGS, *common], args, bodies, None)
        default_args = [*common, *(["--workers", str(args.workers)] if args.workers else [])]
        default, _ = measure_server(default_args, args, bodies, reference, args.overload)
        out["runs"] = {"baseline": baseline, "default": default}
        out["speedup"] = round(default["requests_per_s"] / baseline["requests_per_s"], 2)
    out["load_average"] = {"start": load_at_start, "end": round(os.getloadavg()[0], 2)}
    out["passed"] = all(passed(r) for r in out["runs"].values())
    if args.results:
        from results_io import command_line, make_meta, write_results

        command = command_line(argv, "python benchmarks/serve_load.py")
        meta = make_meta(
            "serve-load-async",
            f"Serving under load: POST {args.route}, batching off vs on",
            command,
            load_average=load_at_start,
            regenerate=f"{command} --results {args.results}",
        )
        write_results(args.results, meta, data=out)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for name, r in out["runs"].items():
            show(name, r)
        if "speedup" in out:
            print(f"default / baseline requests/s: {out['speedup']}x")
        print(
            f"({os.cpu_count()} CPUs; load average {load_at_start} at the start, {out['load_average']['end']} at "
            "the end: on a shared machine the figures are noisy)"
        )
    return 0 if out["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
