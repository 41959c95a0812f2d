"""The digit-recognition web service: a draw-a-digit page and a small REST API (FastAPI + uvicorn).

Routes: ``GET /`` (the page), ``POST /predict``, ``GET /health``, ``GET /openapi.json``, ``GET /docs``.
``POST /predict`` takes one image, in any of these bodies:

- ``multipart/form-data`` with the image in the field ``file`` (``curl -F file=@digit.png``);
- a raw ``image/png``, ``image/jpeg`` (or ``application/octet-stream``) body;
- ``application/json`` ``{"pixels": [[...28 numbers...] x 28]}``: grey levels 0..255, MNIST-style
  white ink on black (dark-on-light is detected and inverted).

Every image, JSON pixels included, goes through :func:`lenetlab.data.images.preprocess_image`
(the one preprocessing of ``lenet predict``: polarity, crop, fit 20x20, centre of mass in 28x28),
then the model's own input spec. Bad input is a 4xx ``{"detail": "...", "code": "..."}``:
400 unreadable/empty, 413 too many bytes or pixels, 415 unsupported Content-Type, 422 blank
image (``code: "blank_image"``: "draw a digit") or malformed JSON.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from importlib import resources
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lenetlab import __version__
from lenetlab.data.images import BlankImageError, ImageTooLargeError, preprocess_image
from lenetlab.errors import DataError, LenetlabError
from lenetlab.inference.predictor import Predictor, load_predictor

log = logging.getLogger("lenetlab.serve")

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 25_000_000
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
    model: str
    backend: str
    input_28x28: list[list[int]] = Field(description="the 28x28 uint8 image the model received (before padding)")
    input_png: str = Field(description="the same image as a data:image/png;base64 URL")
    timing_ms: dict[str, float]


class ErrorResponse(BaseModel):
    detail: str
    code: str


class HealthResponse(BaseModel):
    status: str
    model: str
    backend: str
    source: str
    class_names: list[str]
    input_spec: dict[str, Any]


class ApiError(Exception):
    """A client error answered as ``{"detail", "code"}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


_ERRORS = {s: {"model": ErrorResponse} for s in (400, 413, 415, 422)}


def _request_body_schema() -> dict:
    binary = {"schema": {"type": "string", "format": "binary"}}
    pixels = PixelsRequest.model_json_schema()
    pixels.pop("title", None)
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
        "application/json": {"schema": pixels},
        "image/png": binary, "image/jpeg": binary, "application/octet-stream": binary,
    }}}


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, "too_large", f"request body of {int(declared):,} bytes is over the "
                                                 f"{limit:,}-byte upload limit")
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"request body is over the {limit:,}-byte upload limit")
        chunks.append(chunk)
    return b"".join(chunks)


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


def _open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Open (lazily: header only) an uploaded image, refusing other formats and oversize images."""
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:
        raise ApiError(413, "too_many_pixels", "image is too large to decode safely") from None
    except Exception:  # UnidentifiedImageError, or a decoder choking on a malformed header
        raise ApiError(400, "not_an_image",
                       f"body is not a readable image (accepted formats: {', '.join(FORMATS)})") from None
    w, h = img.size
    if w * h > max_pixels:  # checked from the header, before decoding any pixel data
        raise ApiError(413, "too_many_pixels",
                       f"image is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}")
    return img


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


def _predict(predictor: Predictor, img: Image.Image, top_k: int, max_pixels: int) -> dict:
    """Preprocess with the shared function, run the model, build the response (runs in a worker thread)."""
    t0 = time.perf_counter()
    try:
        x = preprocess_image(img, name="image", max_pixels=max_pixels)  # uint8 [1, 28, 28]
    except BlankImageError:
        raise ApiError(422, "blank_image", "no digit found in the image: draw a digit") from None
    except ImageTooLargeError as e:
        raise ApiError(413, "too_many_pixels", str(e)) from None
    except DataError as e:
        raise ApiError(400, "not_an_image", str(e)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # decoders on truncated/corrupt data
        log.info("undecodable upload: %s: %s", type(e).__name__, e)
        raise ApiError(400, "not_an_image", "image data is corrupt or truncated") from None
    t1 = time.perf_counter()
    probs = predictor.predict_proba(x.unsqueeze(0))[0]  # [K]
    t2 = time.perf_counter()
    names = predictor.class_names
    order = np.argsort(-probs, kind="stable")[: min(top_k, len(names))]
    best = int(order[0])
    x28 = x[0].numpy()
    return {
        "digit": best, "label": names[best], "confidence": float(probs[best]),
        "probabilities": [float(p) for p in probs], "class_names": list(names),
        "top_k": [{"index": int(i), "label": names[i], "probability": float(probs[i])} for i in order],
        "model": predictor.name, "backend": predictor.backend,
        "input_28x28": x28.astype(int).tolist(), "input_png": _png_data_url(x28),
        "timing_ms": {"preprocess": round(1e3 * (t1 - t0), 3), "model": round(1e3 * (t2 - t1), 3)},
    }


def create_app(predictor: Predictor | None = None, *, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               max_pixels: int = MAX_PIXELS) -> FastAPI:
    """Build the FastAPI app serving ``predictor`` (default: the packaged demo ``lenet5`` on the CPU)."""
    predictor = predictor if predictor is not None else load_predictor()
    app = FastAPI(title="lenetlab digit recognition",
                  description=__doc__.split("\n\n", 1)[1], version=_version())
    app.state.predictor = predictor

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = _validation_error(list(exc.errors()))
        return JSONResponse({"detail": err.detail, "code": err.code}, status_code=422)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(resources.files("lenetlab.serve").joinpath("static/index.html")))

    @app.get("/health", response_model=HealthResponse, summary="liveness and the model being served")
    async def health() -> dict:
        return {"status": "ok", **predictor.info()}

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS, openapi_extra=_request_body_schema(),
              summary="classify one digit image (multipart 'file', raw image body, or JSON pixels)")
    async def predict(request: Request,
                      top_k: Annotated[int, Query(ge=1, le=100, description="how many best classes to list")] = 3,
                      ) -> dict:
        body = await _read_body(request, max_upload_bytes)
        if not body:
            raise ApiError(400, "empty_body", "empty request body: send an image (multipart field 'file') "
                                              "or JSON {\"pixels\": 28x28}")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            img = _open_image(await _form_file(request, body), max_pixels)
        elif ctype == "application/json" or ctype.endswith("+json"):
            img = _pixels_image(body)
        elif ctype in RAW_TYPES:
            img = _open_image(body, max_pixels)
        else:
            raise ApiError(415, "unsupported_media_type",
                           f"unsupported Content-Type {ctype or '(none)'!r}: send multipart/form-data with a "
                           "'file' field, an image/png or image/jpeg body, or application/json {\"pixels\": ...}")
        return await run_in_threadpool(_predict, predictor, img, top_k, max_pixels)

    app.mount("/static", StaticFiles(packages=[("lenetlab.serve", "static")]), name="static")
    return app


def _version() -> str:
    return __version__


def _check_can_listen(host: str, port: int) -> None:
    """One-line :class:`LenetlabError` if ``host:port`` cannot be bound (in use, not a local address);
    uvicorn would log it and exit with status 1 after the model had loaded."""
    import socket


    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            s.bind(addr)
    except OSError as e:
        raise LenetlabError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})") from None


def run_server(checkpoint: str | None = None, onnx: str | None = None, *, host: str = "127.0.0.1",
               port: int = 8000, device: str = "cpu", max_upload_mb: float = 5.0,
               log_level: str = "info") -> None:
    """Load the model (``onnx`` via onnxruntime, else ``checkpoint``, else the packaged demo
    ``lenet5``) and serve it with uvicorn on ``host:port`` until interrupted."""
    import torch
    import uvicorn


    if not 0 <= port <= 65535:
        raise LenetlabError(f"--port {port}: must be between 0 and 65535")
    if max_upload_mb <= 0:
        raise LenetlabError(f"--max-upload-mb {max_upload_mb}: must be positive")
    _check_can_listen(host, port)
    # one small image per request: parallelism comes from concurrent requests, not intra-op threads
    torch.set_num_threads(1)
    predictor = load_predictor(checkpoint, onnx, device=device)
    app = create_app(predictor, max_upload_bytes=int(max_upload_mb * 1024 * 1024))
    where = f"http://{host}:{port}/" if port else f"{host} on a free port (uvicorn prints which)"
    print(f"serving {predictor.name} ({predictor.backend}, {predictor.source}) at {where}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")
