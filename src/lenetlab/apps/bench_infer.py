"""``lenet bench infer``: batch throughput and single-image latency of a trained checkpoint.

For one checkpoint (default: the shipped ``lenet5``), on the CPU and in one process: images/s on
batches of ``batch_size`` and the p50/p99 latency of one image per call (:mod:`lenetlab.timing`), for
eager PyTorch (also channels-last), TorchScript (trace + freeze), ``torch.export`` and ONNX Runtime
(:class:`~lenetlab.inference.predictor.OnnxPredictor` on the file ``lenet export`` writes). A backend
that fails here is reported as skipped with the reason. The inputs are the embedded subset's test
digits; every backend's scores are checked against eager PyTorch.
"""

import tempfile
import warnings
from pathlib import Path

import torch

from lenetlab import data, timing
from lenetlab.benchfmt import BenchResult
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import require
from lenetlab.inference.predictor import OnnxPredictor, default_checkpoint
from lenetlab.inference.run import checkpoint_path
from lenetlab.models.checkpoint import build_model, load_model
from lenetlab.serve.export import ONNX_MODULES, export_onnx

__all__ = ["build_backends", "run_infer_bench"]


def build_backends(
    checkpoint, model, ckpt: dict, example: torch.Tensor, tmp: Path, onnx: bool = True, threads: int = 1
) -> tuple[dict, dict]:
    """``(backends, skipped)`` for the loaded ``model`` of ``checkpoint`` (its dict ``ckpt``): ``backends`` maps a
    name to ``fn(x float [N, C, H, W]) -> scores [N, K]`` (torch tensor or NumPy array), ``skipped`` a name to
    why it could not be built. ``example`` ``[N, C, H, W]`` traces the graphs; the ONNX file goes into ``tmp``."""
    backends, skipped = {}, {}

    def eager(m, channels_last=False):
        def fn(x):
            with torch.inference_mode():
                return m(x.contiguous(memory_format=torch.channels_last) if channels_last else x)

        return fn

    def attempt(name, build):
        try:
            backends[name] = build()
        except Exception as e:  # any tracing, export or runtime failure only skips this backend
            skipped[name] = f"{type(e).__name__}: {str(e)[:120]}"

    backends["eager PyTorch"] = eager(model)
    cl = build_model(ckpt, map_location="cpu", source=checkpoint).eval().to(memory_format=torch.channels_last)
    backends["eager PyTorch, channels-last"] = eager(cl, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; measured while it exists
        with torch.no_grad():
            attempt(
                "TorchScript (trace + freeze)",
                lambda: eager(torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, example[:8])))),
            )
        batch = torch.export.Dim("batch", min=1, max=65536)
        attempt(
            "torch.export (ExportedProgram.module)",
            lambda: eager(torch.export.export(model, (example[:8],), dynamic_shapes=({0: batch},)).module()),
        )
    if onnx:  # the file `lenet export` writes, run by the predictor `lenet predict --onnx` uses
        attempt(
            "ONNX Runtime (lenet export)",
            lambda: OnnxPredictor(export_onnx(checkpoint, tmp / "model.onnx")["path"], threads).scores,
        )
    return backends, skipped


def run_infer_bench(
    checkpoint=None,
    quick: bool = False,
    threads: int | None = 1,
    batch_size: int = 1000,
    calls: int | None = None,
    onnx: bool = True,
) -> BenchResult:
    """Measure every backend of ``checkpoint`` (None: the shipped ``lenet5``) on ``threads`` torch and ONNX
    Runtime threads (None: torch's default); ``calls``: single-image calls (default 2000, 300 with ``quick``)."""
    if onnx:
        require(ONNX_MODULES, "serve", "lenet bench infer's ONNX Runtime row (--no-onnx skips it)")
    checkpoint = default_checkpoint() if checkpoint is None else checkpoint_path(checkpoint)
    calls = calls or (300 if quick else 2000)
    repeats = 5 if quick else 15
    subset = data.load("mnist-subset")
    with tempfile.TemporaryDirectory(prefix="lenet-infer-") as tmp, timing.threads(threads) as n:
        model, ckpt = load_model(checkpoint, map_location="cpu")
        digits = prepare(subset.test.x, InputSpec.from_dict(ckpt["input_spec"]))  # real digits, [200, C, size, size]
        batch = digits.repeat(-(-batch_size // len(digits)), 1, 1, 1)[:batch_size].contiguous()
        singles = [digits[i : i + 1] for i in range(len(digits))]
        backends, skipped = build_backends(checkpoint, model, ckpt, digits, Path(tmp), onnx, n)
        ref = backends["eager PyTorch"](digits)
        res = {
            "checkpoint": str(checkpoint),
            "model": ckpt["model"]["name"],
            "threads": n,
            "torch": torch.__version__,
            "batch_size": batch_size,
            "calls": calls,
            "backends": {},
            "skipped": skipped,
        }
        for name, fn in backends.items():
            res["backends"][name] = {
                "images_per_sec": timing.median_rate(lambda fn=fn: len(fn(batch)), repeats, warmup=2),
                **timing.latency(fn, singles, calls, warmup=20),
                "max_abs_diff": float((torch.as_tensor(fn(digits)) - ref).abs().max()),
            }
    return BenchResult("bench-infer", res)
