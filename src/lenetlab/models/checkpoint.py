"""Self-describing checkpoints: written atomically, loaded without executing code, on any device.

A checkpoint is a plain dict saved with ``torch.save`` and read with ``torch.load(weights_only=True)``
(tensors, numbers, strings, lists and dicts only: no pickled classes). Keys:

- ``format``: :data:`FORMAT`
- ``model``: ``{"name": str, "kwargs": dict}`` — enough for :func:`lenetlab.models.create`
- ``state_dict``: the (unwrapped) model's weights
- ``class_names``: list of str; ``input_spec``: :meth:`InputSpec.to_dict` output
- ``config``: the run's config as a dict (may be empty)
- optional training state for ``last``: ``optimizer``, ``scheduler``, ``rng``, ``epoch``, ``step``...

It lives in ``models`` (not ``train``) so that serving can load a model without training code.
:func:`load_checkpoint` also reads an exported ``model.safetensors`` + ``config.json`` folder
(:mod:`lenetlab.models.pretrained`) as the same kind of dict.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
import torch.nn as nn

from lenetlab.errors import CheckpointError, first_line
from lenetlab.fileio import atomic_path
from lenetlab.models.pretrained import is_pretrained_dir, read_pretrained
from lenetlab.models.registry import create

FORMAT = "lenetlab-checkpoint-v1"


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    A crash mid-write leaves the previous file intact. Returns the path written.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with ``weights_only=True`` onto ``map_location``; one-line error if bad.

    ``path`` is a ``.pt`` file, a run directory (its ``best.pt``, else ``last.pt``) or an exported
    ``model.safetensors`` + ``config.json`` folder (read by :func:`read_pretrained`)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            if is_pretrained_dir(path):
                return read_pretrained(path, map_location)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (expected best.pt/last.pt written by lenet train)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refuses pickled classes/functions: only plain tensors and containers load.
        raise CheckpointError(f"{path}: holds Python objects that cannot be loaded safely "
                              "(lenetlab checkpoints contain only tensors, numbers, strings, lists and dicts)") from None
    except Exception as e:  # torch raises many types for truncated or corrupt archives
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({first_line(e, 150)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a lenetlab checkpoint (expected format {FORMAT!r})")
    return ckpt


def build_model(ckpt: dict, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model a checkpoint describes, load its weights, and put it in eval mode.

    A checkpoint that does not describe a registered model, or whose weights do not fit it,
    raises a one-line :class:`CheckpointError` (an unknown model name: :class:`LenetlabError`).
    """
    spec = ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise CheckpointError("checkpoint has no 'model' entry of the form {'name': str, 'kwargs': dict}")
    if "state_dict" not in ckpt:
        raise CheckpointError(f"checkpoint of model {spec['name']!r} has no 'state_dict'")
    try:
        model = create(spec["name"], **spec.get("kwargs", {}))
    except TypeError as e:
        raise CheckpointError(f"checkpoint's model arguments do not fit {spec['name']!r}: {e}") from None
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        detail = " ".join(str(e).split())[:240]
        raise CheckpointError(f"checkpoint weights do not fit model {spec['name']!r}: {detail}") from None
    return model.to(map_location).eval()


def load_pretrained(folder: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """The model saved in an exported ``model.safetensors`` + ``config.json`` folder, weights loaded, in
    eval mode on ``map_location`` (``lenetlab.models.create(name, pretrained=True)`` for shipped ones)."""
    return build_model(read_pretrained(folder, map_location), map_location=map_location)
