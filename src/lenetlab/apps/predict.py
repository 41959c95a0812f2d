"""``lenet predict``: read the digit in a person's own images with a trained model (the shipped ``lenet5``
by default), through the MNIST-style preprocessing the web service shares
(:func:`lenetlab.data.images.preprocess_image`); blank images are reported, not classified."""

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PIL import Image

from lenetlab.data.images import BlankImageError, preprocess_image
from lenetlab.device import select_device
from lenetlab.fileio import atomic_path, ensure_writable
from lenetlab.inference.predictor import Predictor, load_predictor
from lenetlab.textfmt import Output

__all__ = ["EXIT_BLANK", "ImagePrediction", "predict_images", "run_predict", "split_inputs"]

#: Exit status of ``lenet predict`` when at least one image held no digit (the others are printed).
EXIT_BLANK = 3


@dataclass
class ImagePrediction:
    """The answer for one image: ``status`` ``"ok"`` or ``"blank"``; ``top_k``: ``{"label", "index",
    "probability"}`` best first; ``shown``: the PNG of the model's 28×28 input (``--show``)."""

    image: str
    status: str
    label: str | None = None
    probability: float | None = None
    top_k: list = field(default_factory=list)
    message: str = ""
    shown: str | None = None

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return asdict(self)


def split_inputs(inputs: list[str]) -> tuple[str | None, list[str]]:
    """``lenet predict``'s positional arguments as ``(checkpoint, images)``: a first argument that is a run
    directory or a ``.pt`` file names the checkpoint (the older ``lenet predict CHECKPOINT IMAGE...``)."""
    first = Path(inputs[0]) if inputs else None
    if first is not None and len(inputs) > 1 and (first.is_dir() or first.suffix == ".pt"):
        return inputs[0], inputs[1:]
    return None, list(inputs)


def predict_images(
    predictor: Predictor, images: list, *, top_k: int = 3, show_dir: str | os.PathLike | None = None
) -> list[ImagePrediction]:
    """Classify each image (paths, bytes or arrays) with ``predictor``; one result per image, in order. An
    unreadable image is a one-line DataError before anything is classified. ``show_dir`` receives
    ``<name>.input.png``, the exact 28×28 image the model received (before the spec's padding)."""
    if show_dir is not None:
        ensure_writable(show_dir, "--show")  # a file there, or a read-only folder: one line, before any work
    names = [str(im) if isinstance(im, (str, os.PathLike)) else f"image{i}" for i, im in enumerate(images)]
    prepared: list[torch.Tensor | str] = []
    for im, name in zip(images, names):
        try:
            prepared.append(preprocess_image(im, name=name))
        except BlankImageError as e:
            prepared.append(str(e))
    ok = [i for i, p in enumerate(prepared) if isinstance(p, torch.Tensor)]
    probs = predictor.predict_proba(torch.stack([prepared[i] for i in ok])) if ok else None
    results = []
    for i, (p, name) in enumerate(zip(prepared, names)):
        if not isinstance(p, torch.Tensor):
            results.append(ImagePrediction(name, "blank", message=p))
            continue
        top = predictor.top_k(probs[ok.index(i)], top_k)
        results.append(ImagePrediction(name, "ok", label=top[0]["label"], probability=top[0]["probability"], top_k=top))
    if show_dir is not None:
        show = Path(show_dir)
        used: set[str] = set()
        for r, p in zip(results, prepared):
            if isinstance(p, torch.Tensor):
                stem = Path(r.image).stem if r.image else "image"
                base, n = stem, 1
                while stem in used:  # two inputs with the same file name in different folders
                    n += 1
                    stem = f"{base}-{n}"
                used.add(stem)
                dest = show / f"{stem}.input.png"
                with atomic_path(dest, suffix=".png") as tmp:
                    Image.fromarray(p[0].numpy(), mode="L").save(tmp, format="PNG")
                r.shown = str(dest)
    return results


def _line(r: ImagePrediction) -> str:
    if r.status == "blank":
        return f"{r.image}: no digit found (blank image) - write or draw a digit"
    alts = ", ".join(f"{t['label']} {100 * t['probability']:.1f}%" for t in r.top_k)
    return f"{r.image}: {r.label} ({100 * r.probability:.1f}%)   top-{len(r.top_k)}: {alts}" + (
        f"   input: {r.shown}" if r.shown else ""
    )


def run_predict(
    checkpoint,
    images: list[str],
    *,
    onnx=None,
    top_k: int = 3,
    device: str = "auto",
    show_dir=None,
    model: str | None = None,
) -> Output:
    """``lenet predict``: one line per image from ``checkpoint``, the ONNX model ``onnx`` or the shipped
    weights of ``model`` (all None: :func:`split_inputs`); status :data:`EXIT_BLANK` when one was blank."""
    if checkpoint is None and onnx is None and model is None:
        checkpoint, images = split_inputs(images)
    predictor = load_predictor(checkpoint, onnx, device=str(select_device(device)), model=model)
    results = predict_images(predictor, images, top_k=top_k, show_dir=show_dir)
    return Output(
        [r.to_dict() for r in results],
        "\n".join(map(_line, results)),
        status=EXIT_BLANK if any(r.status == "blank" for r in results) else 0,
    )
