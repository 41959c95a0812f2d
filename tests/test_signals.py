"""One signal policy (lenetlab.signals): SIGTERM ends every long-running command with one line
`terminated` on stderr and exit status 143, leaving nothing half-written."""

from __future__ import annotations

import http.server
import signal
import subprocess
import sys
import threading
import time

import pytest

from lenetlab.errors import Terminated
from lenetlab.signals import StopRequest, terminate_on_sigterm

LENET = "import sys\nfrom lenetlab.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def _lenet(tmp_path, *argv, before: str = "") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", before + LENET, *argv],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _terminate(proc: subprocess.Popen) -> str:
    """Send SIGTERM, wait; return stderr after checking the exit status."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    return err


def test_sigterm_while_submit_inspects_the_data(tmp_path):
    (tmp_path / "data").mkdir()
    slow = (
        "import time\nimport lenetlab.data\n"
        "def inspect(*args, **kwargs):\n    print('inspecting', flush=True)\n    time.sleep(120)\n"
        "lenetlab.data.inspect = inspect\n"
    )
    proc = _lenet(
        tmp_path, "submit", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "s.csv"), before=slow
    )
    assert proc.stdout.readline() == "inspecting\n"
    assert _terminate(proc) == "terminated\n"
    assert not (tmp_path / "s.csv").exists()


class _Stall(http.server.BaseHTTPRequestHandler):
    """Promises a large file, sends a little of it, then stalls."""

    started = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(10 * 2**20))
        self.end_headers()
        self.wfile.write(b"\0" * 1024)
        self.wfile.flush()
        self.started.set()
        self.server.stop.wait(60)


def test_sigterm_while_data_downloads(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stall)
    server.daemon_threads, server.stop = True, threading.Event()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    _Stall.started.clear()
    try:
        proc = _lenet(
            tmp_path,
            "data",
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path / "d"),
            "--download",
            "--mirror",
            f"http://127.0.0.1:{server.server_address[1]}/",
        )
        assert _Stall.started.wait(60), proc.communicate(timeout=60)
        time.sleep(0.5)  # the download's progress bar is up
        err = _terminate(proc)
    finally:
        server.stop.set()
        server.shutdown()
    assert err.replace("\r", "\n").rstrip("\n").rsplit("\n", 1)[-1] == "terminated"  # after the progress bar
    assert "Traceback" not in err
    assert [p for p in (tmp_path / "d").rglob("*") if p.is_file()] == []  # no partial download left


def test_sigterm_stops_the_server_after_its_graceful_shutdown(tmp_path):
    pytest.importorskip("uvicorn")
    proc = _lenet(tmp_path, "serve", "--port", "0")
    assert proc.stdout.readline().startswith("serving "), proc.communicate(timeout=60)
    err = proc.stderr.readline()
    while "Uvicorn running" not in err and err:  # its log, on stderr
        err = proc.stderr.readline()
    err = _terminate(proc)
    assert "Application shutdown complete" in err and err.endswith("\nterminated\n")


def test_terminate_on_sigterm_restores_the_previous_handler():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), terminate_on_sigterm():
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_stop_request_waits_for_a_safe_point_then_a_second_signal_stops_at_once():
    stop = StopRequest()
    with stop.installed():
        signal.raise_signal(signal.SIGTERM)
        assert stop.signum == signal.SIGTERM and stop.terminated  # recorded, nothing raised
        with pytest.raises(KeyboardInterrupt) as e:
            signal.raise_signal(signal.SIGINT)
        assert not isinstance(e.value, Terminated)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
