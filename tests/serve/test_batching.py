"""Dynamic batching (`lenet serve --max-batch N --batch-wait-ms T`): concurrent requests share one forward
pass, each answer is the one its image gets alone, errors stay with their own request."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from lenetlab.errors import ConfigError
from lenetlab.serve.batching import Batcher, BatchOptions

pytestmark = pytest.mark.timeout(300)


def _app(predictor, onnx_path, batching: BatchOptions):
    from lenetlab.inference.predictor import OnnxPredictor
    from lenetlab.serve.app import ServedModel, create_app

    return create_app(
        [ServedModel("torch", predictor), ServedModel("onnx", OnnxPredictor(onnx_path))], batching=batching
    )


def _requests(subset_test, images) -> list[dict]:
    """Mixed requests: MNIST digits as JSON pixels and PNG, drawn sevens, both models, both routes,
    several top_k, and bad images (blank, not an image) among them."""
    x, _ = subset_test
    out = []
    for i in range(40):
        model = "onnx" if i % 3 == 0 else "torch"
        route = "explain" if model == "torch" and i % 4 == 1 else "predict"
        params = {"model": model, "top_k": 1 + i % 5}
        if i % 2:
            body = {"json": {"pixels": x[i].astype(int).tolist()}}
        else:
            body = {"files": {"file": ("d.png", images.png_bytes(images.canvas_seven(200 + 10 * i, 10 + i)))}}
        out.append({"url": f"/{route}", "params": params, **body})
    out.insert(
        7,
        {
            "url": "/predict",
            "params": {"model": "torch"},
            "content": images.blank(),
            "headers": {"content-type": "image/png"},
        },
    )
    out.insert(
        19, {"url": "/explain", "params": {}, "content": images.noise(), "headers": {"content-type": "image/png"}}
    )
    return out


async def _answers(app, requests: list[dict]) -> list[tuple[int, dict]]:
    """Every request sent at once; each answer's status and JSON without its timings."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120) as client:
        responses = await asyncio.gather(*(client.post(**r) for r in requests))
    out = []
    for r in responses:
        body = r.json()
        body.pop("timing_ms", None)
        out.append((r.status_code, body))
    return out


def test_batched_answers_are_the_answers_alone(predictor, onnx_model, subset_test, images):
    requests = _requests(subset_test, images)
    batched = _app(predictor, onnx_model[0], BatchOptions(max_batch=16, wait_ms=50))
    sizes: list[int] = []
    for b in batched.state.batchers.values():
        b.observe = sizes.append
    got = asyncio.run(_answers(batched, requests))
    alone = asyncio.run(_answers(_app(predictor, onnx_model[0], BatchOptions(max_batch=1)), requests))
    assert max(sizes) > 1, sizes  # requests did share forward passes
    assert sum(sizes) == len(requests) - 2  # the two bad images never reached a batch
    assert [s for s, _ in got] == [s for s, _ in alone]
    assert sorted({s for s, _ in got}) == [200, 400, 422]
    for (_, a), (_, b), r in zip(got, alone, requests):
        assert a == b, r["url"]  # bit for bit: probabilities, activations, saliency


def test_a_failing_batch_falls_back_to_each_image():
    def run(items):
        if "bad" in items:
            raise ValueError("bad item")
        return [f"ok {i}" for i in items]

    async def main():
        batcher = Batcher(run, BatchOptions(max_batch=8, wait_ms=50), capacity=100)
        return await asyncio.gather(*(batcher.submit(i) for i in ["a", "bad", "b"]), return_exceptions=True)

    a, bad, b = asyncio.run(main())
    assert (a, b) == ("ok a", "ok b")
    assert isinstance(bad, ValueError)


def test_a_full_batch_queue_is_busy():
    from lenetlab.serve.limits import Busy

    async def main():
        batcher = Batcher(lambda items: items, BatchOptions(max_batch=2, wait_ms=100), capacity=2)
        return await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)

    results = asyncio.run(main())
    assert results[:2] == [0, 1]  # queued
    assert all(isinstance(r, Busy) for r in results[2:])  # refused at once


@pytest.mark.parametrize(
    "bad", [{"max_batch": 0}, {"max_batch": 2.5}, {"max_batch": 5000}, {"wait_ms": -1}, {"wait_ms": float("nan")}]
)
def test_batch_options_are_validated(bad):
    with pytest.raises(ConfigError) as e:
        BatchOptions(**bad)
    assert "\n" not in str(e.value) and ("--max-batch" in str(e.value) or "--batch-wait-ms" in str(e.value))
