"""Predictors with one interface: a PyTorch checkpoint or an exported ONNX model.

Both take MNIST-style ``uint8`` images ``[N, 1, 28, 28]`` (the output of
:func:`lenetlab.data.images.preprocess_image`), apply the model's own :class:`InputSpec` with
:func:`lenetlab.data.transforms.prepare` (pad to 32, normalise) and return class probabilities
``[N, K]``. :class:`OnnxPredictor` reads the spec and class names from the ONNX file's metadata,
so it needs neither the checkpoint nor the model-building code (``lenetlab.models``).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.device import select_device
from lenetlab.errors import CheckpointError, LenetlabError

#: Metadata keys written by :func:`lenetlab.serve.export.export_onnx` into ``metadata_props``.
META_FORMAT, META_MODEL, META_CLASSES, META_SPEC = (
    "lenetlab.format", "lenetlab.model", "lenetlab.class_names", "lenetlab.input_spec")
ONNX_FORMAT = "lenetlab-onnx-v1"


def default_checkpoint() -> Path:
    """The small ``lenet5`` trained on full MNIST that ships with the package (99.3% test accuracy)."""
    # resolved from the top package so that finding the file does not import lenetlab.models
    return Path(str(resources.files("lenetlab").joinpath("models/assets/lenet5_mnist.pt")))


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Predictor:
    """Common interface: ``name``, ``backend``, ``source``, ``class_names``, ``spec``, :meth:`predict_proba`."""

    name: str
    backend: str
    source: str
    class_names: list[str]
    spec: InputSpec

    def _check_spec(self) -> None:
        if self.spec.channels != 1:
            raise CheckpointError(f"{self.source}: the model expects {self.spec.channels}-channel input; "
                                  "serving handles single-channel (grayscale digit) models only")

    def scores(self, x: torch.Tensor) -> np.ndarray:
        """Raw model scores ``float [N, K]`` for model inputs ``x`` ``float [N, C, size, size]``."""
        raise NotImplementedError

    def predict_proba(self, images: torch.Tensor) -> np.ndarray:
        """Class probabilities ``float64 [N, K]`` for MNIST-style ``uint8`` images ``[N, 1, 28, 28]``."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise LenetlabError(f"predict_proba: expected uint8 [N, 1, H, W] images, got {images.dtype} "
                                f"{list(images.shape)}")
        return _softmax(self.scores(prepare(images, self.spec)).astype(np.float64))

    def info(self) -> dict:
        """A JSON-safe description (served by ``GET /health``)."""
        return {"model": self.name, "backend": self.backend, "source": self.source,
                "class_names": list(self.class_names), "input_spec": self.spec.to_dict()}


class TorchPredictor(Predictor):
    """A lenetlab checkpoint (file or run directory) run with PyTorch in eval mode on ``device``."""

    backend = "torch"

    def __init__(self, checkpoint: str | os.PathLike | None = None, device: str = "cpu") -> None:
        from lenetlab.models.checkpoint import build_model, load_checkpoint  # registers the models

        self.device = select_device(device)
        path = Path(checkpoint) if checkpoint is not None else default_checkpoint()
        ckpt = load_checkpoint(path, map_location=self.device)
        try:
            self.model = build_model(ckpt, map_location=self.device)
            self.name = str(ckpt["model"]["name"])
            self.class_names = [str(c) for c in ckpt["class_names"]]
            self.spec = InputSpec.from_dict(ckpt["input_spec"])
        except LenetlabError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{path}: incomplete or mismatched checkpoint ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:160] if str(e) else ''})") from None
        self.source = str(path)
        self._check_spec()

    @torch.inference_mode()
    def scores(self, x: torch.Tensor) -> np.ndarray:
        """Model scores ``[N, K]`` (float32 NumPy) for inputs ``x`` ``float [N, C, size, size]``."""
        return self.model(x.to(self.device)).float().cpu().numpy()


class OnnxPredictor(Predictor):
    """An ONNX model written by ``lenet export``, run with onnxruntime on the CPU."""

    backend = "onnxruntime"

    def __init__(self, path: str | os.PathLike, threads: int = 1) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: ONNX model file not found")
        opts = ort.SessionOptions()
        # one small image per request: more intra-op threads only add overhead on a shared machine
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CheckpointError(f"{path}: not a loadable ONNX model ({first[:160]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get(META_FORMAT) != ONNX_FORMAT:
            raise CheckpointError(f"{path}: no lenetlab metadata in the ONNX file (write it with `lenet export`)")
        try:
            self.name = str(json.loads(meta[META_MODEL])["name"])
            self.class_names = [str(c) for c in json.loads(meta[META_CLASSES])]
            self.spec = InputSpec.from_dict(json.loads(meta[META_SPEC]))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: malformed lenetlab metadata ({type(e).__name__}: {e})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.source = str(path)
        self._check_spec()

    def scores(self, x: torch.Tensor) -> np.ndarray:
        """Model scores ``[N, K]`` (float32 NumPy) for inputs ``x`` ``float [N, C, size, size]``."""
        return self.session.run(None, {self.input_name: x.detach().cpu().numpy().astype(np.float32)})[0]


def load_predictor(checkpoint: str | os.PathLike | None = None, onnx: str | os.PathLike | None = None,
                   device: str = "cpu") -> Predictor:
    """An :class:`OnnxPredictor` for ``onnx``, else a :class:`TorchPredictor` for ``checkpoint``
    (the packaged demo ``lenet5`` when ``None``)."""
    if onnx is not None and checkpoint is not None:
        raise LenetlabError("give either a CHECKPOINT or --onnx MODEL.onnx, not both")
    if onnx is not None:
        return OnnxPredictor(onnx)
    return TorchPredictor(checkpoint, device=device)
