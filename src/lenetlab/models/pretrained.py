"""Portable weights: a folder with ``model.safetensors`` (the state dict, no pickle) and ``config.json``
(how to rebuild and feed the model, and the weights' ``checksum``: :data:`CONFIG_TYPES`), the Hugging Face
Hub layout described in ``docs/runs.md``; and the registered names shipped with trained weights
(:data:`PRETRAINED`). Every command that takes a checkpoint takes such a folder too."""

import hashlib
import os
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_bytes

from lenetlab import __version__
from lenetlab.errors import CheckpointError, LenetlabError, first_line
from lenetlab.fileio import atomic_path, check_types, dumps, read_json

FORMAT = "lenetlab-pretrained-v1"
WEIGHTS, CONFIG = "model.safetensors", "config.json"
#: The fields of ``config.json`` and their JSON types (the first five are required; the others optional).
CONFIG_TYPES = {
    "model": str,
    "model_kwargs": dict,
    "class_names": list,
    "input_spec": dict,
    "checksum": str,
    "dataset": (str, type(None)),
    "test_accuracy": (int, float, type(None)),
    "dev_accuracy": (int, float),
    "step": int,
    "train_config": dict,
    "lenetlab_version": str,
    "model_type": str,
}

#: Registered model name -> folder (under ``lenetlab/models/``) holding its shipped trained weights.
PRETRAINED: dict[str, str] = {
    "lenet5": "assets/lenet5_mnist/pretrained",  # the shipped run's best.pt (see benchmarks/make_demo_checkpoint.py)
}


def pretrained_names() -> list[str]:
    """The registered model names that ship with trained weights."""
    return sorted(PRETRAINED)


def pretrained_dir(name: str) -> Path:
    """The folder of ``name``'s shipped weights; a one-line :class:`LenetlabError` when there are none."""
    if name not in PRETRAINED:
        have = ", ".join(pretrained_names()) or "none"
        raise LenetlabError(
            f"no pretrained weights for model {name!r} (models with pretrained weights: {have}; "
            "see `lenet models --pretrained`)"
        )
    return Path(str(resources.files("lenetlab.models").joinpath(PRETRAINED[name])))


def is_pretrained_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding ``model.safetensors`` and ``config.json``."""
    path = Path(path)
    return (path / WEIGHTS).is_file() and (path / CONFIG).is_file()


def save_pretrained(folder: str | os.PathLike, checkpoint: dict, **extra) -> dict:
    """Write checked ``checkpoint`` as ``folder/model.safetensors`` + ``folder/config.json`` (with the
    JSON-safe ``extra`` entries), each atomically; returns the config written."""
    folder, spec = Path(folder), checkpoint["model"]
    # copies: safetensors refuses tensors that share memory (tied weights)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in checkpoint["state_dict"].items()}
    class_names = [str(c) for c in checkpoint["class_names"]]
    input_spec = dict(checkpoint["input_spec"])
    config = {
        "format": FORMAT,
        "model_type": "lenetlab",
        "model": str(spec["name"]),
        # spelled out, as the Runner builds the model: a reader needs no lenetlab defaults
        "model_kwargs": {
            "num_classes": len(class_names),
            "in_channels": int(input_spec["channels"]),
            **spec.get("kwargs", {}),
        },
        "class_names": class_names,
        "input_spec": input_spec,
        "lenetlab_version": __version__,
    }
    if checkpoint.get("dataset") is not None:
        config["dataset"] = checkpoint["dataset"]
    config.update(extra)
    weights = safetensors_bytes(state, metadata={"format": "pt"})
    config["checksum"] = weights_checksum(weights)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / WEIGHTS, size=len(weights)) as tmp:
            tmp.write_bytes(weights)
        with atomic_path(folder / CONFIG) as tmp:
            tmp.write_text(dumps(config) + "\n", encoding="utf-8")
    except OSError as e:
        raise LenetlabError(f"{folder}: cannot write the exported model ({e.strerror or e})") from None
    return config


def weights_checksum(data: bytes) -> str:
    """``"sha256:<hex>"`` of the bytes of a ``model.safetensors`` file."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_pretrained(folder: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """An exported folder as a checked checkpoint-like dict (``config`` empty, ``pretrained`` the
    ``config.json``); any problem is a one-line :class:`CheckpointError`."""

    folder = Path(folder)
    if not is_pretrained_dir(folder):
        raise CheckpointError(f"{folder}: not an exported model folder (needs {WEIGHTS} and {CONFIG})")
    config = read_json(folder / CONFIG, error=CheckpointError)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{folder / CONFIG}: not a lenetlab model config (expected format {FORMAT!r})")
    check_types(config, CONFIG_TYPES, folder / CONFIG, required=tuple(CONFIG_TYPES)[:5], error=CheckpointError)
    try:
        data = (folder / WEIGHTS).read_bytes()
    except OSError as e:
        raise CheckpointError(f"{folder / WEIGHTS}: cannot read ({e.strerror or type(e).__name__})") from None
    try:
        state = safetensors_load(data)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{folder / WEIGHTS}: corrupt or unreadable safetensors file ({first_line(e)})") from None
    if weights_checksum(data) != config["checksum"]:
        raise CheckpointError(
            f"{folder / WEIGHTS}: does not match the checksum in {CONFIG}: the file was damaged or "
            "edited after it was exported (export it again)"
        )
    state = {k: v.to(map_location) for k, v in state.items()}
    return {
        "model": {"name": config["model"], "kwargs": dict(config["model_kwargs"])},
        "state_dict": state,
        "class_names": list(config["class_names"]),
        "input_spec": dict(config["input_spec"]),
        "dataset": config.get("dataset"),
        "config": {},
        "pretrained": config,
    }


def describe_pretrained() -> list[dict]:
    """Each name with shipped weights: ``{"name", "dataset", "test_accuracy", "classes", "input_spec",
    "path"}`` read from its ``config.json``."""
    rows = []
    for name in pretrained_names():
        folder = pretrained_dir(name)
        config = read_pretrained(folder)["pretrained"]
        rows.append(
            {
                "name": name,
                "dataset": config.get("dataset"),
                "test_accuracy": config.get("test_accuracy"),
                "classes": len(config["class_names"]),
                "input_spec": config["input_spec"],
                "path": str(folder),
            }
        )
    return rows
