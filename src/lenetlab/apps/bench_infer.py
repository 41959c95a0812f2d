"""Inference benchmark of a trained checkpoint: batch throughput and single-image latency.

For one checkpoint (default: the ``lenet5`` shipped with the package) it measures, on the CPU and
in one process so the figures compare like with like:

- **throughput**: images/s on batches of ``batch_size`` (median over repeats);
- **latency**: one image per call, p50 and p99 over ``calls`` calls (milliseconds).

Backends: eager PyTorch (``torch.inference_mode``), eager channels-last, TorchScript (trace +
freeze), ``torch.export`` (the ExportedProgram's module) and ONNX Runtime on the file written by
``lenet export`` (:func:`lenetlab.serve.export.export_onnx`, into a temporary folder). Backends
that fail on this installation are reported as skipped with the reason, not hidden. The inputs
are real test digits (the embedded MNIST subset) prepared with the checkpoint's input spec; all
backends are checked to agree with eager PyTorch (max |difference| of the scores).

Entry point: :func:`run_infer_bench` (``lenet bench infer``, ``benchmarks/infer_speed.py``).
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from lenetlab import data
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.inference.predictor import default_checkpoint
from lenetlab.models.checkpoint import build_model, load_checkpoint, load_model
from lenetlab.serve.export import export_onnx

__all__ = ["throughput", "latency", "build_backends", "run_infer_bench"]


def throughput(fn, x: torch.Tensor, repeats: int = 10, warmup: int = 2) -> float:
    """Images/s of ``fn(x)`` for a batch ``x`` ``[B, C, H, W]``: median over ``repeats`` calls."""
    for _ in range(warmup):
        fn(x)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        rates.append(len(x) / (time.perf_counter() - t))
    return float(np.median(rates))


def latency(fn, images: torch.Tensor, calls: int = 1000, warmup: int = 20) -> dict:
    """Single-image latency of ``fn``: ``{"p50_ms", "p99_ms", "mean_ms"}`` over ``calls`` calls,
    cycling through ``images`` ``[N, C, H, W]`` one ``[1, C, H, W]`` slice at a time."""
    singles = [images[i:i + 1] for i in range(len(images))]
    for i in range(warmup):
        fn(singles[i % len(singles)])
    times = np.empty(calls)
    for i in range(calls):
        t = time.perf_counter()
        fn(singles[i % len(singles)])
        times[i] = time.perf_counter() - t
    return {"p50_ms": float(np.percentile(times, 50) * 1e3), "p99_ms": float(np.percentile(times, 99) * 1e3),
            "mean_ms": float(times.mean() * 1e3)}


def build_backends(checkpoint, example: torch.Tensor, tmp: Path, onnx: bool = True, threads: int = 1):
    """``(backends, skipped)``: ``backends`` maps a name to ``fn(x float [N, C, H, W]) -> scores [N, K]``
    (torch tensor or NumPy array); ``skipped`` maps a name to why it could not be built."""
    model, ckpt = load_model(checkpoint, map_location="cpu")
    backends, skipped = {}, {}

    def eager(m, channels_last=False):
        def fn(x):
            with torch.inference_mode():
                return m(x.contiguous(memory_format=torch.channels_last) if channels_last else x)
        return fn

    backends["eager PyTorch"] = eager(model)
    cl = build_model(ckpt, map_location="cpu", source=checkpoint).eval().to(memory_format=torch.channels_last)
    backends["eager PyTorch, channels-last"] = eager(cl, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; measured while it exists
        try:
            with torch.no_grad():
                ts = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, example[:8])))
            backends["TorchScript (trace + freeze)"] = eager(ts)
        except Exception as e:  # any tracing/freezing failure only skips this backend
            skipped["TorchScript (trace + freeze)"] = f"{type(e).__name__}: {str(e)[:120]}"
        try:
            batch = torch.export.Dim("batch", min=1, max=65536)
            ep = torch.export.export(model, (example[:8],), dynamic_shapes=({0: batch},))
            backends["torch.export (ExportedProgram.module)"] = eager(ep.module())
        except Exception as e:
            skipped["torch.export (ExportedProgram.module)"] = f"{type(e).__name__}: {str(e)[:120]}"
    if onnx:
        try:
            import onnxruntime as ort


            path = export_onnx(checkpoint, tmp / "model.onnx")["path"]
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            backends["ONNX Runtime (lenet export)"] = lambda x: sess.run(None, {name: x.numpy()})[0]
        except Exception as e:  # missing onnxruntime/exporter, or an export failure
            skipped["ONNX Runtime (lenet export)"] = f"{type(e).__name__}: {str(e)[:120]}"
    return model, ckpt, backends, skipped


def _scores(out) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else torch.from_numpy(np.asarray(out))


def run_infer_bench(checkpoint=None, quick: bool = False, threads: int | None = 1, batch_size: int = 1000,
                    calls: int | None = None, onnx: bool = True, as_json: bool = False) -> dict:
    """Measure every backend; print a table (or JSON) and return the figures as a dict.

    ``checkpoint``: file or run directory (None: the packaged demo ``lenet5``); ``threads``: torch
    and ONNX Runtime intra-op threads (None: torch's default); ``batch_size``: throughput batch;
    ``calls``: single-image calls for the latency percentiles (default 2000, 300 with ``quick``).
    """
    if checkpoint is None:
        checkpoint = default_checkpoint()
    if threads:
        torch.set_num_threads(threads)
    calls = calls or (300 if quick else 2000)
    repeats = 5 if quick else 15
    subset = data.load("mnist-subset")
    with tempfile.TemporaryDirectory(prefix="lenet-infer-") as tmp:
        spec = InputSpec.from_dict(load_checkpoint(checkpoint, map_location="cpu", need=("input_spec",))["input_spec"])
        digits = prepare(subset.test.x, spec)  # real digits, [200, C, size, size]
        batch = digits.repeat(-(-batch_size // len(digits)), 1, 1, 1)[:batch_size].contiguous()
        model, ckpt, backends, skipped = build_backends(checkpoint, digits, Path(tmp), onnx, torch.get_num_threads())
        ref = backends["eager PyTorch"](digits)
        res = {"checkpoint": str(checkpoint), "model": ckpt["model"]["name"], "threads": torch.get_num_threads(),
               "torch": torch.__version__, "batch_size": batch_size, "calls": calls, "backends": {},
               "skipped": skipped}
        say = (lambda *a: None) if as_json else (lambda *a: print(*a, flush=True))
        say(f"lenetlab inference benchmark: {ckpt['model']['name']} from {checkpoint}")
        say(f"CPU, torch {torch.__version__}, {torch.get_num_threads()} thread(s); throughput on batches of "
            f"{batch_size} (median of {repeats}), latency over {calls} single-image calls; shared machine: noisy")
        say(f"  {'backend':40s} {'images/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'max|diff|':>10s}")
        for name, fn in backends.items():
            diff = float((_scores(fn(digits)) - ref).abs().max())
            tput = throughput(fn, batch, repeats)
            lat = latency(fn, digits, calls)
            res["backends"][name] = {"images_per_sec": tput, **lat, "max_abs_diff": diff}
            say(f"  {name:40s} {tput:>10,.0f} {lat['p50_ms']:>8.3f} {lat['p99_ms']:>8.3f} {diff:>10.1e}")
        for name, why in skipped.items():
            say(f"  {name:40s} skipped: {why}")
    if as_json:
        print(json.dumps(res, indent=2))
    return res
