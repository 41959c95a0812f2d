"""The digit-recognition web service: a draw-a-digit page and a small REST API (FastAPI + uvicorn).

Routes: ``GET /`` (the page), ``POST /predict``, ``POST /explain``, ``GET /models``, ``GET /health``,
``GET /openapi.json``, ``GET /docs``, ``GET /metrics`` (Prometheus: :mod:`lenetlab.serve.metrics`).
One server may serve several models: ``GET /models`` lists them and ``?model=NAME`` picks one
(default: the first; an unknown name is a 404 ``unknown_model``).
``POST /predict`` takes one image, in any of these bodies:

- ``multipart/form-data`` with the image in the field ``file`` (``curl -F file=@digit.png``);
- a raw ``image/png``, ``image/jpeg`` (or ``application/octet-stream``) body;
- ``application/json`` ``{"pixels": [[...28 numbers...] x 28]}``: grey levels 0..255, MNIST-style
  white ink on black (dark-on-light is detected and inverted).

Every image, JSON pixels included, goes through :func:`lenetlab.data.images.preprocess_image`
(the one preprocessing of ``lenet predict``: polarity, crop, fit 20x20, centre of mass in 28x28),
then the model's own input spec. ``POST /explain`` takes the same bodies and adds, from the same forward
pass, every layer's activations, the first convolution's kernels and the input-gradient saliency map
(:mod:`lenetlab.serve.explain`; torch models only, 501 ``explain_needs_torch`` for ONNX). Bad input
is a 4xx ``{"detail": "...", "code": "..."}``: 400 unreadable/empty, 413 too many bytes or pixels, 415
unsupported Content-Type, 422 blank image (``code: "blank_image"``: "draw a digit") or malformed JSON,
408 a body not received within the body timeout, 503 (with ``Retry-After``) when the server is saturated.
The limits, the admission queue and the timeouts are in :mod:`lenetlab.serve.limits` (and SECURITY.md).
"""

import base64
import functools
import io
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from PIL import Image

from lenetlab import __version__
from lenetlab.data.images import BlankImageError, ImageTooLargeError, load_gray, normalise, open_image
from lenetlab.errors import ConfigError, DataError, LenetlabError, Terminated, missing_extra, require
from lenetlab.inference.predictor import Predictor, TorchPredictor, load_predictor
from lenetlab.serve.apidocs import render_api_docs
from lenetlab.serve.batching import MAX_BATCH, WAIT_MS, Batcher, BatchOptions, pad_rows
from lenetlab.serve.explain import Explainer
from lenetlab.serve.limits import (
    HTTP_PROTOCOL,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    Busy,
    ByteBudget,
    Gate,
    SecurityHeaders,
    ServeLimits,
    in_range,
    is_loopback,
    upload_limit_bytes,
)
from lenetlab.serve.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from lenetlab.serve.metrics import Metrics, MetricsMiddleware, multiprocess_metrics
from lenetlab.signals import handling
from lenetlab.textfmt import quiet

try:
    import anyio
    import orjson
    from fastapi import APIRouter, FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, Field, ValidationError
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect
except ImportError as e:  # one line naming the extra, for `lenet serve` and `import lenetlab.serve.app` alike
    raise missing_extra(e, "serve", "lenet serve") from None

log = logging.getLogger("lenetlab.serve")

#: Image formats accepted from clients (PIL can read many more; fewer decoders, less attack surface).
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
RAW_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp", "application/octet-stream")

Pixel = Annotated[float, Field(ge=0, le=255, strict=True, allow_inf_nan=False)]
Row = Annotated[list[Pixel], Field(min_length=28, max_length=28)]


class PixelsRequest(BaseModel):
    """A 28x28 grey image as JSON: rows of 28 numbers 0..255, white ink on black like MNIST."""

    pixels: Annotated[list[Row], Field(min_length=28, max_length=28)]


class TopK(BaseModel):
    index: int
    label: str
    probability: float


class PredictResponse(BaseModel):
    digit: int = Field(description="index of the predicted class (the digit itself for MNIST)")
    label: str = Field(description="name of the predicted class")
    confidence: float
    probabilities: list[float] = Field(description="one per class, in class_names order, summing to 1")
    class_names: list[str]
    top_k: list[TopK]
    model: str = Field(description="the architecture (lenet models)")
    name: str = Field(description="the served model's name (GET /models; ?model=NAME)")
    backend: str
    input_28x28: list[list[int]] = Field(description="the 28x28 uint8 image the model received (before padding)")
    input_png: str = Field(description="the same image as a data:image/png;base64 URL")
    timing_ms: dict[str, float]


class Activation(BaseModel):
    name: str = Field(description="the model's own name for the layer (C1, S2, ..., or a block such as b3)")
    type: str = Field(description="the layer's class (Conv2d, MaxPool2d, Sequential...)")
    activation: str | None = Field(description="the element-wise module applied after it (ReLU, ScaledTanh...)")
    kind: Literal["maps", "vector"] = Field(description="maps: [C, H, W] feature maps; vector: [K] units")
    shape: list[int] = Field(description="[C, H, W] or [K], for the one image")
    min: float
    max: float
    values: list = Field(description="nested lists of that shape, 4 decimals")


class Kernels(BaseModel):
    layer: str = Field(description="the first convolution (C1 for LeNet)")
    shape: list[int] = Field(description="[out_channels, in_channels, kh, kw]")
    min: float
    max: float
    values: list[list[list[list[float]]]]


class ExplainResponse(PredictResponse):
    layers: list[Activation] = Field(description="every layer's output, in the order the forward pass runs them")
    kernels: Kernels | None = Field(description="the first convolution's weights (None without a convolution)")
    saliency: list[list[float]] = Field(description="28x28 |d score of the answer / d pixel|, max over channels, 0..1")
    rbf_distances: list[float] | None = Field(description="lenet5-1998: F6's squared distance to each centre")


class ModelInfo(BaseModel):
    name: str = Field(description="the name to pass as ?model=NAME")
    model: str = Field(description="the architecture (lenet models)")
    backend: str
    dataset: str | None
    test_accuracy: float | None
    explain: bool = Field(description="whether POST /explain works for it (the torch backend)")
    class_names: list[str]


class ErrorResponse(BaseModel):
    detail: str
    code: str


class HealthResponse(BaseModel):
    status: str
    model: str = Field(description="the default model's architecture")
    name: str = Field(description="the default model's served name")
    backend: str
    source: str
    class_names: list[str]
    input_spec: dict[str, Any]
    models: list[str] = Field(description="every served model's name (GET /models describes them)")
    worker: int = Field(description="the process id of the server process that answered (lenet serve --workers N)")


class ApiError(Exception):
    """A client error answered as ``{"detail", "code"}`` with ``status`` (and extra response ``headers``)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


class ClientGone(Exception):
    """The client disconnected before its request was answered: nothing to answer, nothing to log as an error."""


TopKQuery = Annotated[int, Query(ge=1, le=100, description="how many best classes to list")]
ModelQuery = Annotated[
    str | None, Query(max_length=200, description="a served model's name (GET /models); default: the first")
]
_ERRORS = {s: {"model": ErrorResponse} for s in (400, 404, 408, 413, 415, 422, 503)}


def _request_body_schema() -> dict:
    binary = {"schema": {"type": "string", "format": "binary"}}
    pixels = PixelsRequest.model_json_schema()
    pixels.pop("title", None)
    form = {"type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}
    content = {"multipart/form-data": {"schema": form}, "application/json": {"schema": pixels}}
    content.update(dict.fromkeys(("image/png", "image/jpeg", "application/octet-stream"), binary))
    return {"requestBody": {"required": True, "content": content}}


async def _receive_chunk(request: Request, deadline: float) -> tuple[bytes, bool]:
    """The next piece of the request body and whether more follows; :class:`ClientGone` if the client
    left, ``TimeoutError`` once ``deadline`` (``anyio.current_time()``) has passed."""
    with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
        message = await request.receive()
    if message["type"] == "http.disconnect":
        raise ClientGone("client disconnected while sending the request body")
    return message.get("body", b""), bool(message.get("more_body", False))


async def _refuse_too_large(
    request: Request, limits: ServeLimits, detail: str, read: int, more: bool, deadline: float
) -> None:
    """Raise the 413 for an oversized body, after reading and discarding the rest of the body (up to
    ``limits.drain_bytes`` in all, within the body timeout) so that a client still sending it gets
    the answer rather than a connection reset. A body not read to its end closes the connection."""
    if read == 0 and request.headers.get("expect", "").lower() == "100-continue":
        more = True  # the client waits for "100 Continue" before sending: refuse without asking for it
    else:
        try:
            while more and read < limits.drain_bytes:
                chunk, more = await _receive_chunk(request, deadline)
                read += len(chunk)
        except TimeoutError:
            pass
    raise ApiError(413, "too_large", detail, headers={"Connection": "close"} if more else None)


async def _read_body(request: Request, limits: ServeLimits, take: Callable[[int], None]) -> bytes:
    """The request body, at most ``limits.max_upload_bytes`` (413 beyond, checked from Content-Length
    before reading and again while reading), within ``limits.body_timeout_s`` (408), its bytes taken
    with ``take`` from the server's body budget (503 when spent)."""
    limit = limits.max_upload_bytes
    deadline = anyio.current_time() + limits.body_timeout_s
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared = int(declared)
            if declared < 0:
                raise ValueError
        except ValueError:
            detail = "Content-Length is not a non-negative number"
            raise ApiError(400, "bad_request", detail, headers={"Connection": "close"}) from None
        if declared > limit:
            detail = f"request body of {declared:,} bytes is over the {limit:,}-byte upload limit"
            if declared > limits.drain_bytes:  # not worth reading: answer now and close the connection
                raise ApiError(413, "too_large", detail, headers={"Connection": "close"})
            await _refuse_too_large(request, limits, detail, 0, True, deadline)
        take(declared)
    body, more = bytearray(), True
    try:
        while more:
            chunk, more = await _receive_chunk(request, deadline)
            if len(body) + len(chunk) > limit:
                detail = f"request body is over the {limit:,}-byte upload limit"
                await _refuse_too_large(request, limits, detail, len(body) + len(chunk), more, deadline)
            if declared is None:
                take(len(chunk))
            body += chunk
    except TimeoutError:
        detail = f"request body not received within {limits.body_timeout_s:g} s ({len(body):,} bytes arrived)"
        raise ApiError(408, "body_timeout", detail, headers={"Connection": "close"}) from None
    return bytes(body)


async def _form_file(request: Request, body: bytes) -> bytes:
    """The ``file`` part of a multipart body already read into ``body``."""

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
    except StarletteHTTPException as e:  # malformed multipart, too many parts
        raise ApiError(400, "bad_multipart", f"malformed multipart body ({e.detail})") from None
    except Exception as e:  # python-multipart's own parse errors
        raise ApiError(400, "bad_multipart", f"malformed multipart body ({type(e).__name__})") from None
    try:
        part = form.get("file")
        if part is None:
            raise ApiError(422, "missing_file", "multipart field 'file' is missing: send the image as file=@digit.png")
        data = await part.read() if hasattr(part, "read") else str(part).encode("utf-8")
    finally:
        await form.close()
    if not data:
        raise ApiError(400, "empty_file", "the uploaded 'file' is empty")
    return data


async def _read_image(request: Request, limits: ServeLimits, take: Callable[[int], None]) -> Image.Image:
    """The request's image from any accepted body (opened lazily: header checked, pixels not decoded)."""
    body = await _read_body(request, limits, take)
    if not body:
        raise ApiError(
            400, "empty_body", "empty request body: send an image (multipart field 'file') or JSON {\"pixels\": 28x28}"
        )
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return _open_image(await _form_file(request, body), limits.max_pixels)
    if ctype == "application/json" or ctype.endswith("+json"):
        return _pixels_image(body)
    if ctype in RAW_TYPES:
        return _open_image(body, limits.max_pixels)
    raise ApiError(
        415,
        "unsupported_media_type",
        f"unsupported Content-Type {ctype or '(none)'!r}: send multipart/form-data with a 'file' "
        'field, an image/png or image/jpeg body, or application/json {"pixels": ...}',
    )


def _open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Open (lazily: header only) an uploaded image, refusing other formats and oversize images."""
    try:
        return open_image(data, name="upload", max_pixels=max_pixels, formats=FORMATS, decode=False)
    except ImageTooLargeError as e:  # from the header, before decoding any pixel data
        raise ApiError(413, "too_many_pixels", str(e)) from None
    except DataError:
        raise ApiError(
            400, "not_an_image", f"body is not a readable image (accepted formats: {', '.join(FORMATS)})"
        ) from None


def _pixels_image(body: bytes) -> Image.Image:
    """Validate a JSON ``{"pixels": 28x28}`` body and return it as an 8-bit grey image."""
    try:
        req = PixelsRequest.model_validate_json(body)
    except ValidationError as e:
        raise _validation_error(e.errors(include_url=False)) from None
    a = np.asarray(req.pixels, dtype=np.float64)
    return Image.fromarray(np.round(a).astype(np.uint8), mode="L")


def _validation_error(errors: list[dict]) -> ApiError:
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ApiError(422, "invalid_request", f"{loc}: {first.get('msg', 'invalid')}{more}")


def _png_data_url(x: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(x, mode="L").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _preprocess(img: Image.Image, max_pixels: int, stage: Callable[[str, float], None] | None = None):
    """The shared preprocessing (``preprocess_image``: ``load_gray``, then ``normalise``):
    ``uint8 [1, 28, 28]``, or the client's 4xx. ``stage(name, seconds)``, if given, is told the CPU time
    (this thread's) of ``decode`` and ``normalise``."""
    t0 = time.thread_time()
    try:
        gray = load_gray(img, name="image", max_pixels=max_pixels)
        t1 = time.thread_time()
        x = torch.from_numpy(normalise(gray, "image")).unsqueeze(0)
    except BlankImageError:
        raise ApiError(422, "blank_image", "no digit found in the image: draw a digit") from None
    except ImageTooLargeError as e:
        raise ApiError(413, "too_many_pixels", str(e)) from None
    except DataError as e:
        raise ApiError(400, "not_an_image", str(e)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # decoders on truncated/corrupt data
        log.info("undecodable upload: %s: %s", type(e).__name__, e)
        raise ApiError(400, "not_an_image", "image data is corrupt or truncated") from None
    if stage is not None:
        stage("decode", t1 - t0)
        stage("normalise", time.thread_time() - t1)
    return x


def _answer(served: "ServedModel", x, probs: np.ndarray, top_k: int) -> dict:
    """The prediction fields shared by ``/predict`` and ``/explain`` for image ``x`` ``uint8 [1, 28, 28]``
    and its class probabilities ``[K]``."""
    predictor = served.predictor
    names = predictor.class_names
    top = predictor.top_k(probs, top_k)
    best = top[0]["index"]
    x28 = x[0].numpy()
    return {
        "digit": best,
        "label": names[best],
        "confidence": float(probs[best]),
        "probabilities": probs.tolist(),
        "class_names": list(names),
        "top_k": top,
        "model": predictor.name,
        "name": served.name,
        "backend": predictor.backend,
        "input_28x28": x28.tolist(),
        "input_png": _png_data_url(x28),
    }


@dataclass
class Job:
    """One request on its way to a forward pass: its image ``uint8 [1, 28, 28]``, ``top_k``, the
    milliseconds its preprocessing took and when (``time.perf_counter()``) it started waiting for one."""

    x: torch.Tensor
    top_k: int
    pre_ms: float
    queued: float = 0.0


def _prepare(img: Image.Image, top_k: int, max_pixels: int, stage: Callable[[str, float], None]) -> Job:
    """:func:`_preprocess` ``img`` into a :class:`Job` (runs in a worker thread)."""
    t0 = time.perf_counter()
    x = _preprocess(img, max_pixels, stage)
    t1 = time.perf_counter()
    return Job(x, top_k, round(1e3 * (t1 - t0), 3), t1)


def _predict_batch(served: "ServedModel", stage: Callable[[str, float], None], jobs: list[Job]) -> list[Response]:
    """``/predict``'s answers, already encoded, for ``jobs`` from one forward pass
    (:func:`~lenetlab.serve.batching.pad_rows`: the same answer as alone)."""
    t1, c1 = time.perf_counter(), time.thread_time()
    stage("queue", sum(t1 - j.queued for j in jobs))
    probs = served.predictor.predict_proba(pad_rows([j.x for j in jobs]))  # [M, K]
    t2, c2 = time.perf_counter(), time.thread_time()
    stage("forward", c2 - c1)
    model_ms = round(1e3 * (t2 - t1), 3)
    answers = [
        StrictJSONResponse(
            {**_answer(served, j.x, probs[i], j.top_k), "timing_ms": {"preprocess": j.pre_ms, "model": model_ms}}
        )
        for i, j in enumerate(jobs)
    ]
    stage("encode", time.thread_time() - c2)
    return answers


def _explain_batch(served: "ServedModel", stage: Callable[[str, float], None], jobs: list[Job]) -> list[Response]:
    """``/explain``'s answers for ``jobs``, already encoded: the activations are thousands of numbers,
    which FastAPI's response-model validation would take longer to check than the model takes to
    compute. Each image has its own forward and backward pass, a batch of one: the activations shown
    are those of the model run on that image alone, to the last bit."""
    answers = []
    for j in jobs:
        t0, c0 = time.perf_counter(), time.thread_time()
        stage("queue", t0 - j.queued)
        seen = served.explainer.explain(j.x)
        body = {**_answer(served, j.x, seen.pop("probabilities"), j.top_k), **seen}
        total = round(j.pre_ms + 1e3 * (time.perf_counter() - t0), 3)
        body["timing_ms"] = {"preprocess": j.pre_ms, **seen["timing_ms"], "total": total}
        c1 = time.thread_time()
        answers.append(StrictJSONResponse(body))
        stage("forward", c1 - c0)
        stage("encode", time.thread_time() - c1)
    return answers


_ROUTES = {"predict": _predict_batch, "explain": _explain_batch}


def _batchers(
    served: "Sequence[ServedModel]", options: BatchOptions, limits: ServeLimits, metrics: Metrics, gate: Gate
) -> dict[tuple[str, str], Batcher] | None:
    """A :class:`Batcher` per served model and route, each holding at most ``queue + max_batch``
    images, telling ``metrics`` its batch sizes and stage times and waiting for more only while ``gate``
    has requests being preprocessed; None without batching."""
    if not options.on:
        return None
    return {
        (m.name, route): Batcher(
            functools.partial(run, m, metrics.stage),
            options,
            limits.queue + options.max_batch,
            observe=metrics.batch_observer(m.name, route),
            more_coming=lambda: gate.active > 0,
        )
        for m in served
        for route, run in _ROUTES.items()
    }


class StrictJSONResponse(JSONResponse):
    """Every JSON answer of the server: strict JSON, a non-finite number (an overflowing activation)
    written as ``null`` as :func:`lenetlab.fileio.dumps` writes it, which every browser's ``JSON.parse``
    reads. orjson writes the same values as the standard library's ``json``, about ten times faster for
    /explain's thousands of numbers (numpy scalars and arrays included)."""

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


@dataclass
class ServedModel:
    """One model of the server: ``name`` (unique; ``?model=NAME``), its predictor, and what the model
    picker shows (``dataset``, ``test_accuracy``; default: what the checkpoint records)."""

    name: str
    predictor: Predictor
    dataset: str | None = None
    test_accuracy: float | None = None
    explainer: Explainer | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.dataset = self.dataset or self.predictor.dataset
        if self.test_accuracy is None:
            self.test_accuracy = self.predictor.test_accuracy
        if isinstance(self.predictor, TorchPredictor):
            self.explainer = Explainer(self.predictor)

    def info(self) -> dict:
        """What ``GET /models`` lists for this model."""
        p = self.predictor
        return {
            "name": self.name,
            "model": p.name,
            "backend": p.backend,
            "dataset": self.dataset,
            "test_accuracy": self.test_accuracy,
            "explain": self.explainer is not None,
            "class_names": list(p.class_names),
        }


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return StrictJSONResponse({"detail": exc.detail, "code": exc.code}, status_code=exc.status, headers=exc.headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    client = f"{request.client.host}:{request.client.port}" if request.client else "client"
    log.debug(
        "%s %s: %s disconnected before the answer (%s)",
        request.method,
        request.url.path,
        client,
        exc or type(exc).__name__,
    )
    return Response(status_code=400, headers={"Connection": "close"})  # nobody is there to read it


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    err = _validation_error(list(exc.errors()))
    return StrictJSONResponse({"detail": err.detail, "code": err.code}, status_code=422)


_HANDLERS = {
    ApiError: _api_error,
    ClientGone: _client_gone,
    ClientDisconnect: _client_gone,
    RequestValidationError: _invalid,
}


def create_app(
    models: Predictor | Sequence[ServedModel] | None = None,
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
    limits: ServeLimits | None = None,
    batching: BatchOptions | None = None,
) -> FastAPI:
    """Build the FastAPI app serving ``models`` (a :class:`Predictor`, or several :class:`ServedModel`
    with distinct names, the first being the default; default: the packaged demo ``lenet5`` on the
    CPU) under ``limits`` (default: :class:`ServeLimits` with ``max_upload_bytes`` and ``max_pixels``),
    gathering concurrent requests into batches as ``batching`` says (default: no batching)."""
    models = models if models is not None else load_predictor()
    served = list(models) if isinstance(models, (list, tuple)) else [ServedModel(models.name, models)]
    if not served:
        raise LenetlabError("nothing to serve: give at least one model")
    by_name: dict[str, ServedModel] = {}
    for m in served:
        if m.name in by_name:
            raise LenetlabError(f"two served models are named {m.name!r}: give each a distinct name")
        by_name[m.name] = m
    limits = limits if limits is not None else ServeLimits(max_upload_bytes=max_upload_bytes, max_pixels=max_pixels)
    gate = Gate(limits.workers, limits.queue)
    metrics = Metrics(lambda: {"admission": gate.waiting, "batch": sum(b.depth for b in (batchers or {}).values())})
    batchers = _batchers(served, batching or BatchOptions(), limits, metrics, gate)
    # no Swagger UI or ReDoc: they load their scripts from a CDN (blank offline) and need an inline
    # script; /docs is rendered here from the same OpenAPI schema instead
    app = FastAPI(
        title="lenetlab digit recognition",
        description=__doc__.split("\n\n", 1)[1],
        version=__version__,
        docs_url=None,
        redoc_url=None,
        default_response_class=StrictJSONResponse,
        exception_handlers=_HANDLERS,
    )
    app.state.served, app.state.models, app.state.predictor = served, by_name, served[0].predictor
    app.state.limits, app.state.gate, app.state.budget = limits, gate, ByteBudget(limits.max_buffered_bytes)
    app.state.batchers, app.state.metrics = batchers, metrics
    app.add_middleware(SecurityHeaders)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(_router)
    app.mount("/static", StaticFiles(packages=[("lenetlab.serve", "static")]), name="static")
    return app


def _pick(request: Request, name: str | None) -> ServedModel:
    """The served model ``?model=name`` names (default: the first), or a 404."""
    state = request.app.state
    if name is None:
        return state.served[0]
    if name not in state.models:
        raise ApiError(404, "unknown_model", f"unknown model {name!r}; served models: {', '.join(state.models)}")
    return state.models[name]


async def _classify(request: Request, served: ServedModel, route: str, top_k: int) -> Response:
    """Read the request's image (any accepted body) and preprocess it in a worker thread (at most
    ``workers`` at once, a bounded queue, 503 beyond it), then answer it: in the same slot, or
    gathered with other requests by the model's batcher (its own bounded queue)."""
    state = request.app.state
    limits, gate, metrics, batchers = state.limits, state.gate, state.metrics, state.batchers
    try:
        gate.admit()  # a 503 before reading the body when the queue is already full: cheap under overload
        with state.budget.hold() as take:
            t0 = time.perf_counter()
            img = await _read_image(request, limits, take)
            t1 = time.perf_counter()
            metrics.stage("read", t1 - t0)
            async with gate.slot():
                metrics.stage("queue", time.perf_counter() - t1)
                if await request.is_disconnected():  # gave up while queued: skip the work
                    raise ClientGone("client disconnected while its request was queued")
                job = await run_in_threadpool(_prepare, img, top_k, limits.max_pixels, metrics.stage)
                del img
                if batchers is None:
                    metrics.batch_observer(served.name, route)(1)
                    return (await run_in_threadpool(_ROUTES[route], served, metrics.stage, [job]))[0]
        return await batchers[served.name, route].submit(job)
    except Busy as e:
        log.info("503 busy: %s", e)
        retry = str(limits.retry_after_s)
        raise ApiError(503, "busy", f"the server is busy ({e}): retry in {retry} s", {"Retry-After": retry}) from None


_router = APIRouter()


@_router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(str(resources.files("lenetlab.serve").joinpath("static/index.html")))


@_router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(render_api_docs(request.app.openapi()))


@_router.get("/health", response_model=HealthResponse, summary="liveness and the default model")
async def health(request: Request) -> dict:
    state = request.app.state
    default = state.served[0]
    info = default.predictor.info()
    info["source"] = Path(info["source"]).name  # the file's name: where it lives is not the client's business
    return {"status": "ok", **info, "name": default.name, "models": list(state.models), "worker": os.getpid()}


@_router.get("/metrics", include_in_schema=False)
async def scrape(request: Request) -> Response:
    return Response(request.app.state.metrics.scrape(), media_type=METRICS_CONTENT_TYPE)


@_router.get("/models", response_model=list[ModelInfo], summary="the served models, the default first")
async def list_served(request: Request) -> list[dict]:
    return [m.info() for m in request.app.state.served]


@_router.post(
    "/predict",
    response_model=PredictResponse,
    responses=_ERRORS,
    openapi_extra=_request_body_schema(),
    summary="classify one digit image (multipart 'file', raw image body, or JSON pixels)",
)
async def predict(request: Request, top_k: TopKQuery = 3, model: ModelQuery = None) -> Response:
    return await _classify(request, _pick(request, model), "predict", top_k)


@_router.post(
    "/explain",
    response_model=ExplainResponse,
    responses={**_ERRORS, 501: {"model": ErrorResponse}},
    openapi_extra=_request_body_schema(),
    summary="classify one digit image and show what every layer saw (same bodies as /predict)",
    description="The answer of `/predict` plus, from the same forward pass, every layer's activations, "
    "the first convolution's kernels and the input-gradient saliency map over the 28x28 "
    "input; for an RBF output layer (lenet5-1998) the squared distance to each class's "
    "centre. Needs the torch backend (501 for an ONNX model).",
)
async def explain(request: Request, top_k: TopKQuery = 3, model: ModelQuery = None) -> Response:
    served = _pick(request, model)
    if served.explainer is None:
        raise ApiError(
            501,
            "explain_needs_torch",
            f"model {served.name!r} runs on {served.predictor.backend}: /explain needs the torch backend "
            "(serve the checkpoint or run directory instead of the ONNX file); /predict works",
        )
    return await _classify(request, served, "explain", top_k)


def _check_can_listen(host: str, port: int) -> None:
    """One-line :class:`LenetlabError` if ``host:port`` cannot be bound (in use, not a local address);
    uvicorn would log it and exit with status 1 after the model had loaded."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            s.bind(addr)
    except OSError as e:
        raise LenetlabError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})") from None


def serving_app(
    models: Sequence[ServedModel],
    *,
    max_upload_mb: float = 5.0,
    max_batch: int = MAX_BATCH,
    batch_wait_ms: float = WAIT_MS,
) -> FastAPI:
    """The app ``lenet serve`` runs (in each process with ``--workers``): ``models`` under the limits of
    ``--max-upload-mb``, batched as ``--max-batch`` and ``--batch-wait-ms`` say."""
    # one small batch at a time per model: parallelism comes from concurrent requests, not intra-op threads
    torch.set_num_threads(1)
    return create_app(
        list(models),
        limits=ServeLimits(max_upload_bytes=upload_limit_bytes(max_upload_mb)),
        batching=BatchOptions(max_batch, batch_wait_ms),
    )


def run_server(
    load_models: Callable[[], Sequence[ServedModel]],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_mb: float = 5.0,
    log_level: str = "info",
    max_batch: int = MAX_BATCH,
    batch_wait_ms: float = WAIT_MS,
    workers: int = 1,
    worker_factory: str | None = None,
    say=quiet,
) -> None:
    """Check the options, then load the models (``load_models()``: slow, so after the quick checks)
    and serve them with uvicorn on ``host:port`` until interrupted, batching up to ``max_batch``
    concurrent requests per forward pass; ``say(text, err=False)`` shows a warning and the address.
    ``workers`` > 1: that many processes share the port (uvicorn's own supervisor), each building its
    app with ``worker_factory`` (an import string ``module:function``); the models are loaded here
    too, once, so that a bad one is refused in one line before any worker starts."""
    uvicorn = require(("uvicorn", "python_multipart"), "serve", "lenet serve")  # multipart: uploads
    limits = _check_options(host, port, max_upload_mb, max_batch, batch_wait_ms, workers, worker_factory, say)
    models = list(load_models())
    where = f"http://{host}:{port}/" if port else f"{host} on a free port (uvicorn prints which)"
    names = ", ".join(
        f"{m.name} ({m.predictor.name}, {m.predictor.backend}, {Path(m.predictor.source).name})" for m in models
    )
    say(f"serving {names} at {where}" + (f" with {workers} worker processes" if workers > 1 else ""))
    opts = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": log_level == "debug",
        **uvicorn_options(limits),
    }
    # uvicorn shuts down gracefully on SIGTERM, then raises it again, and swallows what a handler raises:
    # note it, and end as every command ends on SIGTERM (lenetlab.signals)
    terminated = []
    with handling(lambda signum, frame: terminated.append(signum)):
        if workers == 1:
            uvicorn.run(
                serving_app(models, max_upload_mb=max_upload_mb, max_batch=max_batch, batch_wait_ms=batch_wait_ms),
                **opts,
            )
        else:
            del models  # each worker loads its own
            terminated[:] = _supervise(worker_factory, workers, opts, early=terminated)
    if terminated:
        raise Terminated


def _check_options(host, port, max_upload_mb, max_batch, batch_wait_ms, workers, worker_factory, say) -> ServeLimits:
    """:func:`run_server`'s quick checks (one-line errors), before any model loads; the limits."""
    limits = ServeLimits(max_upload_bytes=upload_limit_bytes(max_upload_mb))  # ConfigError: one line, exit 2
    BatchOptions(max_batch, batch_wait_ms)
    if not in_range(workers, 1, 64, whole=True):
        raise ConfigError(f"--workers {workers!r}: must be a whole number from 1 to 64")
    if workers > 1 and worker_factory is None:
        raise LenetlabError("run_server: workers > 1 needs a worker_factory")
    if not 0 <= port <= 65535:
        raise LenetlabError(f"--port {port}: must be between 0 and 65535")
    if not is_loopback(host):
        say(
            f"warning: --host {host} is not a loopback address: anyone who can reach this machine can use "
            "the server (no authentication, no TLS; see SECURITY.md)",
            err=True,
        )
    _check_can_listen(host, port)
    return limits


def _supervise(factory: str, workers: int, opts: dict, early: Sequence[int] = ()) -> list[int]:
    """Run ``workers`` uvicorn processes of the app factory ``factory`` (an import string) on one
    socket under uvicorn's own supervisor, as ``uvicorn.run(..., workers=N)`` does, until a signal
    stops them all; returns ``[SIGTERM]`` if that signal was SIGTERM (the supervisor keeps it), or at
    once without starting anything when one is in ``early`` (signals that came before the supervisor
    listened, checked after it does)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        terminated = False

        def handle_term(self) -> None:
            self.terminated = True
            super().handle_term()

        def init_processes(self) -> None:
            # a worker stopped while it still imports would skip its graceful shutdown: a signal queued
            # meanwhile is acted on once every worker has started (or died)
            super().init_processes()
            for process in self.processes:
                process.wait_until_ready(timeout=120)

    config = uvicorn.Config(factory, factory=True, workers=workers, **opts)
    with multiprocess_metrics():
        supervisor = Supervisor(config, sockets=[])  # from here on it queues SIGTERM and SIGINT itself
        if early:
            return [signal.SIGTERM]
        supervisor.sockets.append(config.bind_socket())  # logs "Uvicorn running on ..."
        try:
            supervisor.run()
        finally:
            supervisor.sockets[0].close()
    return [signal.SIGTERM] if supervisor.terminated else []


def uvicorn_options(limits: ServeLimits) -> dict:
    """The uvicorn settings that go with ``limits``: keep-alive (and request-head) timeout, the protocol
    wrapper that applies it to new and trickling connections too, a bounded graceful shutdown."""
    return {"timeout_keep_alive": limits.keep_alive_s, "http": HTTP_PROTOCOL, "timeout_graceful_shutdown": 10}
