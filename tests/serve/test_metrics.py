"""``GET /metrics``: the Prometheus text format, parsed with prometheus-client's own parser; counts move."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from lenetlab.serve.batching import BatchOptions

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def seven_pixels(images):
    img = images.canvas_seven().resize((28, 28), Image.Resampling.BOX)
    return np.asarray(img).astype(int).tolist()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a scrape."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_parse_and_count_requests_batches_and_refusals(predictor, seven_pixels, images):
    from lenetlab.serve.app import create_app

    app = create_app(predictor, batching=BatchOptions(max_batch=8, wait_ms=50))

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120) as client:
            before = await client.get("/metrics")
            answers = await asyncio.gather(*(client.post("/predict", json={"pixels": seven_pixels}) for _ in range(6)))
            bad = await client.post("/predict", content=images.noise(), headers={"content-type": "image/png"})
            app.state.gate.queue, app.state.gate.workers = 0, 0  # saturated: the next one is refused
            busy = await client.post("/predict", json={"pixels": seven_pixels})
            app.state.gate.queue, app.state.gate.workers = app.state.limits.queue, app.state.limits.workers
            return before, answers, bad, busy, await client.get("/metrics")

    before, answers, bad, busy, after = asyncio.run(main())
    assert before.status_code == after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")
    assert [r.status_code for r in answers] == [200] * 6 and bad.status_code == 400 and busy.status_code == 503
    s0, s1 = _samples(before.text), _samples(after.text)
    ok = ("lenet_requests_total", (("route", "/predict"), ("status", "200")))
    assert s0.get(ok, 0) == 0 and s1[ok] == 6
    assert s1[("lenet_requests_total", (("route", "/predict"), ("status", "400")))] == 1
    assert s1[("lenet_refused_busy_total", (("route", "/predict"),))] == 1
    assert s1[("lenet_request_duration_seconds_count", (("route", "/predict"),))] == 8
    batches = ("lenet_batch_size_count", (("model", "lenet5"), ("route", "predict")))
    images_seen = ("lenet_batch_size_sum", (("model", "lenet5"), ("route", "predict")))
    assert s1[images_seen] == 6 and s1[batches] < 6  # six images in fewer forward passes
    assert s1[("lenet_queue_depth", (("stage", "admission"),))] == 0
    assert s1[("lenet_queue_depth", (("stage", "batch"),))] == 0


def test_unknown_paths_share_one_label(client):
    client.get("/no/such/path")
    client.get("/another-one")
    text = client.get("/metrics").text
    routes = {
        s.labels["route"]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "lenet_requests_total"
    }
    assert "other" in routes and not any(r.startswith("/no") or r.startswith("/another") for r in routes)
