"""``lenet export``: a checkpoint as an ONNX file, or as a ``model.safetensors`` + ``config.json`` folder."""

import os

from lenetlab.errors import LenetlabError
from lenetlab.models.pretrained import CONFIG, WEIGHTS
from lenetlab.serve.export import MODEL_CARD, export_onnx, export_safetensors
from lenetlab.textfmt import Output


def run_export(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    opset: int | None = None,
    format: str = "onnx",
) -> Output:
    """Export ``checkpoint`` to ONNX (``format="safetensors"`` or ``"hub"``: a Hugging Face Hub style folder
    of portable weights and a model card); the result says what was written and how closely the export
    reproduces the checkpoint."""
    if format in ("safetensors", "hub"):
        if opset is not None:
            raise LenetlabError("--opset applies to --format onnx only")
        info = export_safetensors(checkpoint, out)
        files = f"{WEIGHTS} + {CONFIG} + {MODEL_CARD}"
        return Output(
            info,
            f"wrote {info['path']}/ ({files}, {info['bytes'] / 1024:.0f} KB, "
            f"{info['model']}); reloaded outputs identical (max |diff| {info['max_abs_diff']:g}); "
            f"load with lenetlab.models.from_pretrained({info['path']!r})",
        )
    if format != "onnx":
        raise LenetlabError(f"--format {format}: expected onnx, safetensors or hub")
    info = export_onnx(checkpoint, out, opset=opset)
    return Output(
        info,
        f"wrote {info['path']} ({info['bytes'] / 1024:.0f} KB, {info['model']}, opset {info['opset']}, "
        f"dynamic batch; onnxruntime vs PyTorch max |diff| {info['max_abs_diff']:.1e})",
    )
