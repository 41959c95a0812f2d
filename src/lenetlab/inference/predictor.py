"""The one predictor: a trained model (PyTorch checkpoint or exported ONNX file) ready to classify, used
by ``lenet predict``, ``ensemble``, ``submit`` and ``serve``: ``uint8`` images ``[N, C, H, W]`` in, converted
to the model's channels and its own :class:`InputSpec`, class probabilities ``[N, K]`` out. An ONNX model's
spec and class names are in its metadata: it needs neither the checkpoint nor the model code."""

import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from lenetlab.data.augment import tta_views
from lenetlab.data.common import to_channels
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.device import select_device
from lenetlab.errors import CheckpointError, LenetlabError, first_line, require
from lenetlab.fileio import loads
from lenetlab.inference.run import checkpoint_path, measured_test_accuracy
from lenetlab.models.checkpoint import check_class_names, checkpoint_data, load_model
from lenetlab.models.pretrained import pretrained_dir

#: Metadata keys that :func:`lenetlab.serve.export.export_onnx` writes into ``metadata_props``.
META_FORMAT, META_MODEL = "lenetlab.format", "lenetlab.model"
META_CLASSES, META_SPEC = "lenetlab.class_names", "lenetlab.input_spec"
ONNX_FORMAT = "lenetlab-onnx-v1"


def default_checkpoint() -> Path:
    """The shipped ``lenet5`` trained on MNIST: ``best.pt`` of the run ``models/assets/lenet5_mnist/``
    (``lenet train --config shipped-lenet5``)."""
    return Path(str(resources.files("lenetlab").joinpath("models/assets/lenet5_mnist/best.pt")))


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of scores ``[N, K]``."""
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Predictor:
    """What both backends offer: ``name``, ``backend``, ``source``, ``class_names``, ``spec``, ``config``
    (the training run's) and ``data`` (its data description; both empty for ONNX models), ``dataset``
    and ``test_accuracy`` (its run's, or what an exported folder records; None when unknown)."""

    dataset: str | None = None
    test_accuracy: float | None = None

    def scores(self, x: torch.Tensor) -> np.ndarray:
        """Raw model scores ``float32 [N, K]`` for model inputs ``x`` ``float [N, C, size, size]``."""
        raise NotImplementedError

    def predict_proba(self, images: torch.Tensor, batch_size: int = 1000, tta: bool = False) -> np.ndarray:
        """Class probabilities ``float64 [N, K]`` for ``uint8`` images ``[N, C, H, W]`` (any channel count),
        ``batch_size`` at a time; ``tta``: the mean over the image and four one-pixel shifts of it."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise LenetlabError(
                f"predict_proba: expected uint8 [N, C, H, W] images, got {images.dtype} {list(images.shape)}"
            )
        if images.shape[1] != self.spec.channels:
            images = to_channels(images, self.spec.channels)
        out = []
        for i in range(0, images.shape[0], batch_size):
            views = tta_views(images[i : i + batch_size]) if tta else [images[i : i + batch_size]]
            probs = [softmax(self.scores(prepare(v, self.spec)).astype(np.float64)) for v in views]
            out.append(sum(probs) / len(probs))
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)))

    def top_k(self, probs: np.ndarray, k: int) -> list[dict]:
        """The ``k`` most probable classes of one probability vector ``[K]``, best first, as
        ``{label, index, probability}`` dicts."""
        order = np.argsort(-probs, kind="stable")[: max(1, min(k, probs.shape[0]))]
        names = self.class_names
        return [
            {"label": names[i] if i < len(names) else str(i), "index": int(i), "probability": float(probs[i])}
            for i in order
        ]

    def info(self) -> dict:
        """A JSON-safe description (``GET /health``); the source is a file name, not a path."""
        return {
            "model": self.name,
            "backend": self.backend,
            "source": Path(self.source).name,
            "class_names": list(self.class_names),
            "input_spec": self.spec.to_dict(),
        }


class TorchPredictor(Predictor):
    """A lenetlab checkpoint (file, run directory or exported folder; the shipped model when None) run
    with PyTorch in eval mode on ``device``."""

    backend = "torch"

    def __init__(self, checkpoint: str | os.PathLike | None = None, device: str = "cpu") -> None:
        self.device = select_device(device)
        path = checkpoint_path(checkpoint) if checkpoint is not None else default_checkpoint()
        self.model, ckpt = load_model(path, map_location=self.device)  # every field checked
        self.name = ckpt["model"]["name"]
        self.class_names = list(ckpt["class_names"])
        self.spec = InputSpec.from_dict(ckpt["input_spec"])
        self.config = dict(ckpt.get("config") or {})
        self.data = checkpoint_data(ckpt)
        self.dataset = ckpt.get("dataset") or self.data.get("dataset")  # the dataset's name, not a path
        self.test_accuracy = measured_test_accuracy(path, ckpt)
        self.source = str(path)

    @torch.inference_mode()
    def scores(self, x: torch.Tensor) -> np.ndarray:
        return self.model(x.to(self.device)).float().cpu().numpy()


class OnnxPredictor(Predictor):
    """An ONNX model written by ``lenet export``, run with onnxruntime on the CPU; its metadata, and
    one zero batch run at load, are checked as a checkpoint's fields are."""

    backend = "onnxruntime"

    def __init__(self, path: str | os.PathLike, threads: int = 1) -> None:
        ort = require("onnxruntime", "serve", "running an ONNX model (--onnx)")
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: ONNX model file not found")
        opts = ort.SessionOptions()
        # one small image per request: more intra-op threads only add overhead on a shared machine
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise CheckpointError(f"{path}: not a loadable ONNX model ({first_line(e)})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get(META_FORMAT) != ONNX_FORMAT:
            raise CheckpointError(f"{path}: no lenetlab metadata in the ONNX file (write it with `lenet export`)")
        try:
            self.name = str(_metadata(meta, META_MODEL, path)["name"])
            self.class_names = check_class_names(_metadata(meta, META_CLASSES, path), path, META_CLASSES)
            # checked as a checkpoint's spec is: a huge size would allocate gigabytes per request
            self.spec = InputSpec.from_dict(_metadata(meta, META_SPEC, path), path, META_SPEC)
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: malformed lenetlab metadata ({type(e).__name__}: {e})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.config, self.data, self.source = {}, {}, str(path)
        c, size = self.spec.channels, self.spec.size
        try:
            out = self.scores(torch.zeros(1, c, size, size))
        except Exception as e:  # onnxruntime raises its own InvalidArgument/Fail/... types
            raise CheckpointError(
                f"{path}: field {META_SPEC!r}: the graph cannot take {c}x{size}x{size} inputs ({first_line(e, 120)})"
            ) from None
        if out.ndim != 2 or out.shape[1] != len(self.class_names):
            raise CheckpointError(
                f"{path}: metadata {META_CLASSES} lists {len(self.class_names)} classes but the "
                f"model gives {out.shape[-1] if out.ndim else 0} outputs"
            )

    def scores(self, x: torch.Tensor) -> np.ndarray:
        return self.session.run(None, {self.input_name: x.detach().cpu().numpy().astype(np.float32)})[0]


def _metadata(meta: dict, key: str, path: Path):
    """The strict JSON value of the ONNX metadata entry ``key``."""
    return loads(meta[key], f"{path}: {key}", CheckpointError)


def load_predictor(
    checkpoint: str | os.PathLike | None = None,
    onnx: str | os.PathLike | None = None,
    device: str = "cpu",
    model: str | None = None,
) -> Predictor:
    """An :class:`OnnxPredictor` for ``onnx``, else a :class:`TorchPredictor` for ``checkpoint`` (a file,
    run directory or exported folder) or for the shipped weights of registered ``model``; the shipped
    ``lenet5`` when all are None."""
    named = {"a CHECKPOINT": checkpoint, "--onnx MODEL.onnx": onnx, "--model NAME": model}
    given = [what for what, value in named.items() if value is not None]
    if len(given) == 2:
        raise LenetlabError(f"give either {given[0]} or {given[1]}, not both")
    if len(given) > 2:
        raise LenetlabError(f"give only one of {', '.join(given)}")
    if onnx is not None:
        return OnnxPredictor(onnx)
    if model is not None:
        return TorchPredictor(pretrained_dir(model), device=device)
    return TorchPredictor(checkpoint, device=device)
