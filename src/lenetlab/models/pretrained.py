"""Portable weights: a folder with ``model.safetensors`` and ``config.json`` (the Hugging Face Hub layout),
and the registered names that ship with trained weights.

``model.safetensors`` holds the model's state dict (the ``safetensors`` format: plain tensors, no
pickle, readable from any language); ``config.json`` says how to rebuild the model and feed it::

    {"format": "lenetlab-pretrained-v1", "model_type": "lenetlab", "model": "lenet5",
     "model_kwargs": {"num_classes": 10, "in_channels": 1}, "class_names": ["0", ..., "9"],
     "input_spec": {"channels": 1, "size": 32, "resize": "pad", "mean": [0.5], "std": [0.5]},
     "lenetlab_version": "0.1.0", "dataset": "mnist", "test_accuracy": 0.993, ...}

``lenet export RUN --format safetensors`` writes such a folder; :func:`read_pretrained` reads it back
as a checkpoint-like dict, so :func:`lenetlab.models.load_checkpoint` (and with it ``lenet predict``,
``lenet eval``, ``lenet serve``) accept the folder wherever they accept a checkpoint.
:data:`PRETRAINED` maps model names to the folders shipped inside the package; it is what
``lenetlab.models.create(name, pretrained=True)`` and ``lenet models --pretrained`` read.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from lenetlab import __version__
from lenetlab.errors import CheckpointError, LenetlabError, first_line
from lenetlab.fileio import atomic_path
from lenetlab.textfmt import align

FORMAT = "lenetlab-pretrained-v1"
WEIGHTS, CONFIG = "model.safetensors", "config.json"

#: Registered model name -> folder (under ``lenetlab/models/``) holding its shipped trained weights.
PRETRAINED: dict[str, str] = {
    "lenet5": "assets/lenet5_mnist",  # the package's lenet5_mnist.pt as safetensors (see benchmarks/make_demo_checkpoint.py)
}


def pretrained_names() -> list[str]:
    """The registered model names that ship with trained weights."""
    return sorted(PRETRAINED)


def pretrained_dir(name: str) -> Path:
    """The folder of ``name``'s shipped weights; a one-line :class:`LenetlabError` when there are none."""
    if name not in PRETRAINED:
        have = ", ".join(pretrained_names()) or "none"
        raise LenetlabError(f"no pretrained weights for model {name!r} (models with pretrained weights: {have}; "
                            "see `lenet models --pretrained`)")
    return Path(str(resources.files("lenetlab.models").joinpath(PRETRAINED[name])))


def is_pretrained_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding ``model.safetensors`` and ``config.json``."""
    path = Path(path)
    return (path / WEIGHTS).is_file() and (path / CONFIG).is_file()


def save_pretrained(folder: str | os.PathLike, checkpoint: dict, **extra) -> dict:
    """Write ``checkpoint`` (a lenetlab checkpoint dict: ``model``, ``state_dict``, ``class_names``,
    ``input_spec``) as ``folder/model.safetensors`` + ``folder/config.json``, each atomically.

    ``extra`` entries (JSON-safe: ``test_accuracy``, ``dataset``...) are added to ``config.json``.
    Returns the config written. Tensors that share memory (tied weights) are stored as copies.
    """
    folder = Path(folder)
    try:
        spec = checkpoint["model"]
        state = {k: v.detach().to("cpu").contiguous().clone() for k, v in checkpoint["state_dict"].items()}
        class_names = [str(c) for c in checkpoint["class_names"]]
        input_spec = dict(checkpoint["input_spec"])
        # spelled out, as the Runner builds the model: a reader needs no lenetlab defaults
        kwargs = {"num_classes": len(class_names), "in_channels": int(input_spec["channels"]),
                  **dict(spec.get("kwargs") or {})}
        config = {"format": FORMAT, "model_type": "lenetlab", "model": str(spec["name"]), "model_kwargs": kwargs,
                  "class_names": class_names, "input_spec": input_spec, "lenetlab_version": __version__}
    except (KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"cannot export: the checkpoint lacks model/state_dict/class_names/input_spec "
                              f"({type(e).__name__}: {e})") from None
    if checkpoint.get("dataset") is not None:
        config["dataset"] = checkpoint["dataset"]
    config.update(extra)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / WEIGHTS) as tmp:
            tmp.write_bytes(safetensors_bytes(state, metadata={"format": "pt"}))
        with atomic_path(folder / CONFIG) as tmp:
            tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise LenetlabError(f"{folder}: cannot write the exported model ({e.strerror or e})") from None
    return config


def read_pretrained(folder: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a ``model.safetensors`` + ``config.json`` folder as a checkpoint-like dict: ``model``
    (``{"name", "kwargs"}``), ``state_dict``, ``class_names``, ``input_spec``, ``dataset``, ``config``
    (empty: no training state) and ``pretrained`` (the ``config.json`` itself). One-line
    :class:`CheckpointError` for a missing, malformed or unreadable file."""
    folder = Path(folder)
    if not is_pretrained_dir(folder):
        raise CheckpointError(f"{folder}: not an exported model folder (needs {WEIGHTS} and {CONFIG})")
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{folder / CONFIG}: not valid JSON ({first_line(e)})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{folder / CONFIG}: not a lenetlab model config (expected format {FORMAT!r})")
    missing = [k for k in ("model", "model_kwargs", "class_names", "input_spec") if k not in config]
    if missing:
        raise CheckpointError(f"{folder / CONFIG}: missing field {missing[0]!r}")
    device = str(map_location) if isinstance(map_location, torch.device) else map_location
    try:
        state = load_file(str(folder / WEIGHTS), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{folder / WEIGHTS}: corrupt or unreadable safetensors file ({first_line(e)})") from None
    return {"model": {"name": config["model"], "kwargs": dict(config["model_kwargs"])}, "state_dict": state,
            "class_names": list(config["class_names"]), "input_spec": dict(config["input_spec"]),
            "dataset": config.get("dataset"), "config": {}, "pretrained": config}


def describe_pretrained() -> list[dict]:
    """Each name with shipped weights: ``{"name", "dataset", "test_accuracy", "classes", "input_spec",
    "path"}`` read from its ``config.json``."""
    rows = []
    for name in pretrained_names():
        folder = pretrained_dir(name)
        config = read_pretrained(folder)["pretrained"]
        rows.append({"name": name, "dataset": config.get("dataset"), "test_accuracy": config.get("test_accuracy"),
                     "classes": len(config["class_names"]), "input_spec": config["input_spec"], "path": str(folder)})
    return rows


def print_pretrained(as_json: bool = False) -> list[dict]:
    """Print the models that ship with trained weights (``lenet models --pretrained``); returns the rows."""
    rows = describe_pretrained()
    if as_json:
        print(json.dumps(rows, indent=2))
        return rows
    table = [(r["name"], r["dataset"] or "?", "?" if r["test_accuracy"] is None else f"{r['test_accuracy']:.4f}",
              r["classes"], f"create({r['name']!r}, pretrained=True)") for r in rows]
    print("\n".join(align([("model", "trained on", "test acc", "classes", "python"), *table], right={2, 3})))
    return rows
