"""Predict the digit in a person's own images with a trained checkpoint (``lenet predict``).

Each image goes through :func:`lenetlab.data.images.preprocess_image` (the MNIST-style 28×28
preprocessing shared with the web service), then the checkpoint's own :class:`InputSpec`, then
the model; the top-k classes come with softmax probabilities. Blank images are reported, not
classified.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from lenetlab.data.images import BlankImageError, preprocess_image
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import CheckpointError, ConfigError

__all__ = ["EXIT_BLANK", "ImagePrediction", "Predictor", "predict_images", "run_predict"]

#: Exit status of ``lenet predict`` when at least one image held no digit (the others are printed).
EXIT_BLANK = 3


@dataclass
class ImagePrediction:
    """The answer for one image: ``status`` is ``"ok"`` or ``"blank"`` (no digit found).

    ``top_k`` lists ``{"label", "index", "probability"}`` best first; ``label`` is the class name of
    the best one; ``shown`` is the PNG of the model's 28×28 input when ``--show`` was used.
    """

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


class Predictor:
    """A checkpoint's model ready to classify user images on one device.

    ``checkpoint``: a ``.pt`` file or a run directory (best.pt, else last.pt).
    """

    def __init__(self, checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> None:
        from lenetlab.models.checkpoint import build_model, load_checkpoint

        self.device = torch.device(device)
        ckpt = load_checkpoint(checkpoint, map_location=self.device)
        self.spec = InputSpec.from_dict(ckpt["input_spec"])
        if self.spec.channels != 1:
            raise CheckpointError(f"{checkpoint}: predict reads single-digit grayscale images, but this model "
                                  f"expects {self.spec.channels} input channels")
        self.model = build_model(ckpt, map_location=self.device)
        self.model_name = ckpt["model"]["name"]
        self.class_names = [str(c) for c in ckpt.get("class_names") or []]

    @torch.no_grad()
    def probabilities(self, x28: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``float [N, K]`` (on CPU) for MNIST-style ``uint8 [N, 1, 28, 28]`` images."""
        xb = prepare(x28.to(self.device), self.spec)
        scores = self.model(xb).float()
        return torch.softmax(scores, dim=1).cpu()

    def top_k(self, probs: torch.Tensor, k: int) -> list[dict]:
        """The ``k`` most probable classes of one probability vector ``[K]``, best first."""
        p, idx = probs.topk(min(k, probs.numel()))
        names = self.class_names
        return [{"label": names[i] if i < len(names) else str(i), "index": int(i), "probability": float(v)}
                for v, i in zip(p.tolist(), idx.tolist())]


def predict_images(checkpoint: str | os.PathLike, images: list, *, top_k: int = 3, device: str = "cpu",
                   show_dir: str | os.PathLike | None = None) -> list[ImagePrediction]:
    """Classify each image (paths, bytes or arrays) with ``checkpoint``; one result per image, in order.

    A blank image gives ``status="blank"``; an unreadable one raises a one-line DataError naming it
    (before anything is classified). ``show_dir`` receives ``<name>.input.png``, the exact 28×28
    image the model received (before the spec's padding and normalisation).
    """
    if top_k < 1:
        raise ConfigError(f"--top-k must be at least 1 (got {top_k})")
    names = [str(im) if isinstance(im, (str, os.PathLike)) else f"image{i}" for i, im in enumerate(images)]
    prepared: list[torch.Tensor | str] = []
    for im, name in zip(images, names):
        try:
            prepared.append(preprocess_image(im, name=name))
        except BlankImageError as e:
            prepared.append(str(e))
    predictor = Predictor(checkpoint, device=device)
    ok = [i for i, p in enumerate(prepared) if isinstance(p, torch.Tensor)]
    probs = predictor.probabilities(torch.stack([prepared[i] for i in ok])) if ok else None
    results = []
    for i, (p, name) in enumerate(zip(prepared, names)):
        if not isinstance(p, torch.Tensor):
            results.append(ImagePrediction(name, "blank", message=p))
            continue
        top = predictor.top_k(probs[ok.index(i)], top_k)
        results.append(ImagePrediction(name, "ok", label=top[0]["label"], probability=top[0]["probability"],
                                       top_k=top))
    if show_dir is not None:
        from PIL import Image

        show = Path(show_dir)
        show.mkdir(parents=True, exist_ok=True)
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
                Image.fromarray(p[0].numpy(), mode="L").save(dest)
                r.shown = str(dest)
    return results


def run_predict(checkpoint, images: list[str], *, top_k: int = 3, device: str = "auto", show_dir=None,
                as_json: bool = False, out=None) -> int:
    """``lenet predict``: print the predictions; returns 0, or :data:`EXIT_BLANK` when an image was blank."""
    from lenetlab.device import select_device

    out = out or sys.stdout
    results = predict_images(checkpoint, images, top_k=top_k, device=str(select_device(device)), show_dir=show_dir)
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2), file=out)
    else:
        for r in results:
            if r.status == "blank":
                print(f"{r.image}: no digit found (blank image) - write or draw a digit", file=out)
                continue
            alts = ", ".join(f"{t['label']} {100 * t['probability']:.1f}%" for t in r.top_k)
            line = f"{r.image}: {r.label} ({100 * r.probability:.1f}%)   top-{len(r.top_k)}: {alts}"
            if r.shown:
                line += f"   input: {r.shown}"
            print(line, file=out)
    return EXIT_BLANK if any(r.status == "blank" for r in results) else 0
