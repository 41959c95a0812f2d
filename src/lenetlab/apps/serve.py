"""``lenet serve [RUN_OR_CHECKPOINT ...] [--onnx MODEL.onnx ...]``: serve one or several trained models.

Each source becomes one :class:`~lenetlab.serve.app.ServedModel`, named after its run directory (a
``best.pt``/``last.pt`` inside a run is named after the run), file, or for an exported folder the model
its ``config.json`` names, so that the page's
model picker and ``?model=NAME`` can tell them apart; a repeated name gets ``-2``, ``-3``... The
picker shows the dataset and test accuracy: a run's from its own files (:class:`~lenetlab.inference.run.Run`,
as ``lenet runs`` reads them), an exported folder's from what it records. No source: the small
``lenet5`` shipped with lenetlab (itself a run).
"""

import json
import os
import threading
from pathlib import Path

from lenetlab.errors import LenetlabError
from lenetlab.inference.predictor import load_predictor
from lenetlab.inference.run import Run
from lenetlab.models.pretrained import is_pretrained_dir
from lenetlab.serve.app import ServedModel, run_server, serving_app
from lenetlab.serve.batching import MAX_BATCH, WAIT_MS
from lenetlab.serve.limits import cpu_count
from lenetlab.textfmt import quiet

#: How ``lenet serve --workers N`` hands its options to each worker process.
OPTIONS_ENV = "LENETLAB_SERVE_OPTIONS"


def served_model(source: str | None, *, onnx: bool = False, device: str = "cpu") -> ServedModel:
    """One :class:`ServedModel` for a run directory, checkpoint, exported folder or (``onnx``) ONNX file;
    ``source=None``: the shipped ``lenet5``, named ``lenet5``."""
    predictor = load_predictor(onnx=source) if onnx else load_predictor(source, device=device)
    path = Path(source or ".")
    if source is None or is_pretrained_dir(path):  # an exported folder is named by its config.json, not the folder
        return ServedModel(predictor.name, predictor)
    run = Run.of(path) if not onnx else None
    if run is None:
        return ServedModel(path.stem if path.is_file() else path.resolve().name, predictor)
    bad = run.read_config()[1]
    if bad and bad.startswith("config.json"):  # what GET /models shows comes from it: refuse now, not per request
        raise LenetlabError(f"{run.path}: {bad}")
    return ServedModel(
        run.path.resolve().name, predictor, dataset=run.data["dataset"], test_accuracy=run.test_accuracy()
    )


def served_models(sources: list[str], onnx: list[str] | None = None, device: str = "cpu") -> list[ServedModel]:
    """Every source (checkpoints first, then ONNX files) as a :class:`ServedModel` with a distinct name."""
    models = [served_model(s, device=device) for s in sources] + [served_model(o, onnx=True) for o in onnx or []]
    if not models:
        models = [served_model(None, device=device)]
    seen: dict[str, int] = {}
    for m in models:
        base = m.name
        seen[base] = seen.get(base, 0) + 1
        if seen[base] > 1:
            m.name = f"{base}-{seen[base]}"
    if len({m.name for m in models}) != len(models):  # "a-2" given as a source after two "a"
        raise LenetlabError("the served models' names clash: " + ", ".join(m.name for m in models))
    return models


def run_serve(
    sources: list[str],
    onnx: list[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "cpu",
    max_upload_mb: float = 5.0,
    log_level: str = "info",
    max_batch: int = MAX_BATCH,
    batch_wait_ms: float = WAIT_MS,
    workers: int | None = None,
    say=quiet,
) -> int:
    """``lenet serve``: check the options, load every model, serve until interrupted (``say`` shows
    where), gathering up to ``max_batch`` concurrent requests for ``batch_wait_ms`` into one forward
    pass (1: no batching), in ``workers`` processes (default: one per CPU, one outside the main thread;
    each builds its app with :func:`worker_app` from the options this puts in ``$LENETLAB_SERVE_OPTIONS``);
    returns exit status 0."""
    options = {
        "sources": sources,
        "onnx": onnx or [],
        "device": device,
        "max_upload_mb": max_upload_mb,
        "max_batch": max_batch,
        "batch_wait_ms": batch_wait_ms,
    }
    if workers is None:  # one per CPU; uvicorn's supervisor sets signal handlers, which only the main thread may
        workers = cpu_count() if threading.current_thread() is threading.main_thread() else 1
    if workers != 1:
        os.environ[OPTIONS_ENV] = json.dumps(options)
    run_server(
        lambda: served_models(sources, onnx, device),
        host=host,
        port=port,
        max_upload_mb=max_upload_mb,
        log_level=log_level,
        max_batch=max_batch,
        batch_wait_ms=batch_wait_ms,
        workers=workers,
        worker_factory=f"{__name__}:worker_app",
        say=say,
    )
    return 0


def worker_app():
    """The app of one ``lenet serve --workers N`` process (uvicorn's factory): the models and options
    that :func:`run_serve` left in ``$LENETLAB_SERVE_OPTIONS``."""
    o = json.loads(os.environ[OPTIONS_ENV])
    return serving_app(
        served_models(o["sources"], o["onnx"], o["device"]),
        max_upload_mb=o["max_upload_mb"],
        max_batch=o["max_batch"],
        batch_wait_ms=o["batch_wait_ms"],
    )
