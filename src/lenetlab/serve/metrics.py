"""``GET /metrics``: what ``lenet serve`` has done, in the Prometheus text format (``prometheus-client``):
requests by route and status, a latency histogram, batch sizes, queue depths, 503 refusals and the seconds
spent in each stage of a request (:data:`STAGES`; docs/serving.md lists the metrics).

``route`` is the route's path (``/predict``...), ``/static`` for the page's files and ``other`` for any
other path, so that clients cannot grow the label set. With ``PROMETHEUS_MULTIPROC_DIR`` set (``lenet
serve --workers N`` sets it), every worker process writes its values there and a scrape answered by any
worker sums them all (prometheus-client's multi-process mode); otherwise each app has its own registry.
"""

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

from lenetlab.errors import missing_extra

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
except ImportError as e:  # one line naming the extra
    raise missing_extra(e, "serve", "lenet serve") from None

ROUTES = ("/", "/predict", "/explain", "/models", "/health", "/metrics", "/docs", "/openapi.json")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Reading the body (and a multipart form) and waiting (for a decode slot and for a batch), in wall time; decoding,
#: normalising (``preprocess_image``), the forward pass (``/explain``: with saliency and packaging) and encoding
#: the JSON answer, in CPU time of the thread doing it.
STAGES = ("read", "queue", "decode", "normalise", "forward", "encode")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def route_label(path: str) -> str:
    """The ``route`` label of a request path (a bounded set)."""
    if path in ROUTES:
        return path
    return "/static" if path.startswith("/static/") else "other"


@contextmanager
def multiprocess_metrics() -> Iterator[str]:
    """A fresh temporary ``PROMETHEUS_MULTIPROC_DIR`` for the worker processes started in the block
    (they inherit the environment); removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="lenetlab-metrics-", ignore_cleanup_errors=True) as folder:
        with mock.patch.dict(os.environ, {MULTIPROC_ENV: folder}):
            yield folder


class Metrics:
    """The server's metrics; ``depths()`` gives the current ``{stage: waiting requests}``."""

    def __init__(self, depths: Callable[[], dict[str, int]]) -> None:
        self.depths = depths
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # multi-process mode: values go to the directory's files, a scrape collects them all
        reg = None if self.multiprocess else CollectorRegistry()
        self.registry = reg
        self.requests = Counter(
            "lenet_requests", "HTTP requests answered, by route and status", ["route", "status"], registry=reg
        )
        self.latency = Histogram(
            "lenet_request_duration_seconds",
            "time from the request head to the answer's last byte",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.batch = Histogram(
            "lenet_batch_size", "images per forward pass", ["model", "route"], buckets=BATCH_BUCKETS, registry=reg
        )
        self.queue = Gauge(
            "lenet_queue_depth",
            "requests waiting: for a decode slot (admission) or for a batch",
            ["stage"],
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.busy = Counter("lenet_refused_busy", "requests refused with 503 (server busy)", ["route"], registry=reg)
        stages = Counter("lenet_stage_seconds", "seconds spent in each stage of a request", ["stage"], registry=reg)
        self._stages = {name: stages.labels(name) for name in STAGES}

    def stage(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to stage ``name`` (one of :data:`STAGES`)."""
        self._stages[name].inc(seconds)

    def batch_observer(self, model: str, route: str) -> Callable[[int], None]:
        """The function a batcher calls with each batch's size."""
        return self.batch.labels(model, route.strip("/")).observe

    def update_depths(self) -> None:
        """Set ``lenet_queue_depth`` from ``depths()``."""
        for stage, n in self.depths().items():
            self.queue.labels(stage).set(n)

    def scrape(self) -> bytes:
        """Every metric in the Prometheus text format (all workers' in multi-process mode)."""
        self.update_depths()
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)


class MetricsMiddleware:
    """ASGI middleware counting every HTTP request by route and status and timing it."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        """Pass the request on; count it and its status once the answer has been sent (500 if none was)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route, t0, status = route_label(scope.get("path", "")), time.perf_counter(), [500]

        async def send_seen(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_seen)
        finally:
            m = self.metrics
            m.requests.labels(route, str(status[0])).inc()
            m.latency.labels(route).observe(time.perf_counter() - t0)
            if status[0] == 503:
                m.busy.labels(route).inc()
            m.update_depths()
