"""`lenet serve --workers N`: N uvicorn worker processes on one port, each with its own models and
limits; /health names the worker, /metrics sums them all, SIGTERM stops every one cleanly."""

from __future__ import annotations

import concurrent.futures as cf
import signal

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.timeout(300)


def _predict_ok(url: str, body: bytes) -> int:
    with httpx.Client(timeout=60) as c:  # a fresh connection each: the kernel spreads them over the workers
        r = c.post(url + "/predict", content=body, headers={"content-type": "image/png"})
        return int(r.status_code == 200 and r.json()["digit"] == 7)


def test_two_workers_share_the_port_and_stop_on_sigterm(free_port, images, seven_png):
    proc, url = images.start_server(["--workers", "2"], free_port(), timeout=120)
    try:
        parent = psutil.Process(proc.pid)
        workers = {p.pid for p in parent.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())}
        assert len(workers) >= 2
        pids = {httpx.get(url + "/health", timeout=30).json()["worker"] for _ in range(20)}
        assert pids and pids <= workers  # a worker answered, never the supervisor
        with cf.ThreadPoolExecutor(8) as pool:
            ok = sum(pool.map(lambda _: _predict_ok(url, seven_png), range(24)))
        assert ok == 24
        scrape = httpx.get(url + "/metrics", timeout=30).text
        counts = {
            s.labels["route"]: s.value
            for f in text_string_to_metric_families(scrape)
            for s in f.samples
            if s.name == "lenet_requests_total" and s.labels["status"] == "200"
        }
        assert counts["/predict"] == 24 and counts["/health"] >= 20  # every worker's requests, whoever scraped
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out  # as every lenet command ends on SIGTERM (lenetlab.signals)
    assert "Traceback" not in out and out.endswith("\nterminated\n")
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in workers)


@pytest.mark.parametrize("value", ["0", "65", "1.5"])
def test_bad_workers_is_a_one_line_error(value, capsys):
    from lenetlab.cli import main

    assert main(["serve", "--workers", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --workers") and "\n" not in err
