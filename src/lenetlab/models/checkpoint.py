"""Checkpoints: plain dicts written atomically with a :func:`content_checksum`, read with
``weights_only=True``, every field checked (:func:`check_fields`, :func:`build_model`); each problem is
one :class:`CheckpointError` line naming the file and the field (``docs/faults.md``). Keys: ``format``,
``checksum``, :data:`MODEL_FIELDS`, ``config``, ``data`` (:func:`data_description`) and, in ``last.pt``,
:data:`TRAINING_FIELDS`. An exported folder (:mod:`lenetlab.models.pretrained`) loads as the same dict.
"""

import hashlib
import io
import math
import os
import pickle
from pathlib import Path

import torch
import torch.nn as nn

from lenetlab.choices import NAMED_DATASETS
from lenetlab.errors import CheckpointError, LenetlabError, first_line
from lenetlab.fileio import atomic_path, check_types
from lenetlab.inputspec import InputSpec
from lenetlab.models.pretrained import is_pretrained_dir, read_pretrained
from lenetlab.models.registry import create

FORMAT = "lenetlab-checkpoint-v1"
#: Fields a checkpoint needs to classify images (``lenet predict``, ``eval``, ``serve``, ``export``).
MODEL_FIELDS = ("model", "state_dict", "input_spec", "class_names")
#: Fields ``last.pt`` needs to continue a run (``lenet train --resume``), with their types.
TRAINING_FIELDS = {
    **dict.fromkeys(("config", "optimizer", "scheduler", "rng"), dict),
    "meters": torch.Tensor,
    **dict.fromkeys(("epoch", "batch", "step", "best_step"), int),
    **dict.fromkeys(("elapsed", "train_time"), (int, float)),
}


def _feed(h, value, depth: int = 0) -> None:
    """Feed ``value`` (a checkpoint field) into hash ``h`` (see :func:`content_checksum`)."""
    if depth > 64:
        raise CheckpointError("checkpoint nests containers more than 64 deep")
    if isinstance(value, torch.Tensor):
        t = value.detach()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            t = t.to("cpu").contiguous().reshape(-1)
            h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(f"D{len(value)}".encode())
        for k, v in value.items():
            _feed(h, k, depth + 1)
            _feed(h, v, depth + 1)
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}".encode())
        for v in value:
            _feed(h, v, depth + 1)
    else:
        h.update(f"V{type(value).__name__}:{value!r};".encode())


def content_checksum(payload: dict) -> str:
    """``"sha256:<hex>"`` over every field of ``payload`` but ``format`` and ``checksum``, in order (kept by
    ``torch.save``/``torch.load``): tensors by dtype, shape and raw bytes, other values by type and ``repr``."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k not in ("format", "checksum")})
    return "sha256:" + h.hexdigest()


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` with its :func:`content_checksum` to ``path`` atomically (a crash leaves the old
    file; a full disk is a one-line :class:`~lenetlab.errors.DiskFullError`); returns the path."""
    path = Path(path)
    body = {k: v for k, v in payload.items() if k not in ("format", "checksum")}
    if "data" not in body and isinstance(body.get("config"), dict) and body["config"]:
        body["data"] = data_description(body["config"], body.get("dataset"))
    buf = io.BytesIO()  # in memory first: the size is known, and a full disk is a plain OSError below
    torch.save({"format": FORMAT, "checksum": content_checksum(body), **body}, buf)
    data = buf.getbuffer()
    with atomic_path(path, size=len(data)) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return path


def _bad(source, field: str, what: str) -> CheckpointError:
    return CheckpointError(f"{source}: field {field!r} {what}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_class_names(names, source="checkpoint", field: str = "class_names") -> list:
    """``names`` as a list, checked: non-empty strings, each once (else a :class:`CheckpointError`)."""
    if not isinstance(names, (list, tuple)) or not names:
        raise _bad(source, field, "must be a non-empty list of names")
    if not all(isinstance(c, str) and c.strip() for c in names):
        raise _bad(source, field, "must hold non-empty strings")
    if len(set(names)) != len(names):
        dup = next(c for c in names if list(names).count(c) > 1)
        raise _bad(source, field, f"names {dup!r} twice")
    return list(names)


def _check_model_entry(m, source) -> None:
    if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not m["name"]:
        raise _bad(source, "model", "must be {'name': str, 'kwargs': dict}")
    kwargs = m.get("kwargs", {})
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise _bad(source, "model.kwargs", f"must be a dict of named arguments, got {kwargs!r}")
    for key in ("num_classes", "in_channels"):
        if key in kwargs and (not _is_int(kwargs[key]) or kwargs[key] < 1):
            raise _bad(source, f"model.kwargs.{key}", f"must be a positive integer, got {kwargs[key]!r}")


def _check_training(ck: dict, source) -> None:
    if not any(k in ck for k in ("optimizer", "scheduler", "rng", "meters")):  # best.pt has step and epoch too
        raise CheckpointError(
            f"{source}: not a last.pt: no training state (optimizer, rng, step...); "
            "a best.pt cannot be resumed, only evaluated"
        )
    for key, kind in TRAINING_FIELDS.items():
        if key not in ck:
            raise _bad(source, key, "is missing (an incomplete last.pt)")
        v = ck[key]
        if not isinstance(v, kind) or isinstance(v, bool):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise _bad(source, key, f"must be {names}, got {type(v).__name__}")
        if _is_number(v) and not (math.isfinite(v) and v >= 0):
            raise _bad(source, key, f"must be a non-negative number, got {v!r}")
    opt = ck["optimizer"]
    if not isinstance(opt.get("state"), dict) or not isinstance(opt.get("param_groups"), list):
        raise _bad(source, "optimizer", "is not an optimizer state dict (needs 'state' and 'param_groups')")
    rng = ck["rng"]
    if not (
        isinstance(rng.get("python"), (list, tuple))
        and len(rng["python"]) == 3
        and isinstance(rng.get("numpy"), (list, tuple))
        and len(rng["numpy"]) == 5
        and isinstance(rng.get("torch"), torch.Tensor)
    ):
        raise _bad(source, "rng", "is not a saved RNG state (python, numpy, torch)")
    if tuple(ck["meters"].shape) != (2, 3):
        raise _bad(source, "meters", f"must have shape [2, 3], got {list(ck['meters'].shape)}")
    if ck.get("best_state_dict") is not None:
        _check_state_dict(ck["best_state_dict"], source, "best_state_dict")
    if ck.get("best_accuracy") is not None and not _is_number(ck["best_accuracy"]):
        raise _bad(source, "best_accuracy", f"must be a number or None, got {type(ck['best_accuracy']).__name__}")
    if ck["step"] < ck["best_step"]:
        raise _bad(source, "best_step", f"{ck['best_step']} is after the saved step {ck['step']}")


def _check_state_dict(sd, source, field: str = "state_dict") -> None:
    if not isinstance(sd, dict) or not sd:
        raise _bad(source, field, "must be a non-empty dict of tensors")
    for k, v in sd.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise _bad(source, field, f"entry {k!r} is not a named tensor")


def check_fields(ck: dict, source="checkpoint", need: tuple[str, ...] = (), training: bool = False) -> dict:
    """``ck`` (read from ``source``), the type and range of every field checked: those in ``need`` must be
    present, and with ``training`` the :data:`TRAINING_FIELDS` of a ``last.pt``."""
    for key in need:
        if key not in ck:
            raise _bad(source, key, "is missing")
    if "model" in ck:
        _check_model_entry(ck["model"], source)
    if "state_dict" in ck:
        _check_state_dict(ck["state_dict"], source)
    if "class_names" in ck:
        check_class_names(ck["class_names"], source)
    if "input_spec" in ck:
        InputSpec.from_dict(ck["input_spec"], source)
    for key in ("config", "data"):
        if key in ck and ck[key] is not None and not isinstance(ck[key], dict):
            raise _bad(source, key, f"must be a dict, got {type(ck[key]).__name__}")
    if isinstance(ck.get("data"), dict):
        check_types(ck["data"], DATA_TYPES, f"{source}: field 'data'", error=CheckpointError)
    config = ck.get("config")
    for key in ("model", "dataset"):  # what serving shows of a model: a name, never another type
        if config and config.get(key) is not None and not isinstance(config[key], str):
            raise _bad(source, f"config.{key}", f"must be a name, got {type(config[key]).__name__}")
    if "dataset" in ck and ck["dataset"] is not None and not isinstance(ck["dataset"], str):
        raise _bad(source, "dataset", f"must be a name, got {type(ck['dataset']).__name__}")
    if training:
        _check_training(ck, source)
    return ck


# ----------------------------------------------------------------------------- data description
#: Datasets that come with their own dev split (``dev_size`` and ``split_seed`` do not apply).
FIXED_SPLIT = ("mnist-subset", "nndl-file")
_NAME, _COUNT = (str, type(None)), (int, type(None))
#: The JSON types of a data description's fields (what loading the splits again reads).
DATA_TYPES = {
    "dataset": _NAME,
    "data_dir": _NAME,
    "kind": (str,),
    "split": (str,),
    "dev_size": _COUNT,
    "split_seed": (int,),
    "image_size": _COUNT,
    "image_column": _NAME,
    "label_column": _NAME,
    "id_column": _NAME,
}


def data_description(config: dict, dataset: str | None = None) -> dict:
    """What a run was trained on (the ``data`` field of every checkpoint, :data:`DATA_TYPES`), from its config
    dict: ``lenetlab.inference.run.load_data`` builds the same splits from it. ``split`` is ``fixed`` (the
    dataset's own dev split) or ``carved`` (``dev_size`` examples, None for the default, by ``split_seed``)."""
    name = config.get("dataset") or dataset
    key = str(name or "").strip().lower()
    by_suffix = {".csv": "csv", ".gz": "nndl-file", ".json": "nndl-file"}
    kind = "named" if key in NAMED_DATASETS else next((k for s, k in by_suffix.items() if key.endswith(s)), "folder")
    return {
        "dataset": name,
        "data_dir": config.get("data_dir"),
        "kind": kind,
        "split": "fixed" if key in FIXED_SPLIT or kind in FIXED_SPLIT else "carved",
        "dev_size": config.get("val_size"),
        "split_seed": 0,
        "image_size": config.get("image_size"),
        **{k: config.get(k) for k in ("image_column", "label_column", "id_column")},
        **{k: config[k] for k in ("normalize", "resize", "digit_width") if k in config},
    }


def checkpoint_data(ckpt: dict) -> dict:
    """The data description of checkpoint dict ``ckpt``: its ``data`` field, else derived from its ``config``
    and ``dataset`` (an exported folder)."""
    if isinstance(ckpt.get("data"), dict):
        return ckpt["data"]
    dataset = ckpt.get("dataset")
    described = data_description(ckpt.get("config") or {}, dataset if isinstance(dataset, str) else None)
    return check_types(described, DATA_TYPES, "checkpoint: field 'config'", error=CheckpointError)


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    *,
    need: tuple[str, ...] = (),
    training: bool = False,
) -> dict:
    """A checkpoint file or exported folder read with ``weights_only=True`` onto ``map_location``, its checksum
    verified and :func:`check_fields` (``need``, ``training``) applied."""
    path = Path(path)
    if path.is_dir() and is_pretrained_dir(path):
        return check_fields(read_pretrained(path, map_location), path, need, training)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (expected best.pt/last.pt written by lenet train)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refuses pickled classes/functions: only plain tensors and containers load.
        raise CheckpointError(
            f"{path}: holds Python objects that cannot be loaded safely "
            "(lenetlab checkpoints contain only tensors, numbers, strings, lists and dicts)"
        ) from None
    except Exception as e:  # torch raises many types for truncated or corrupt archives
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({first_line(e, 150)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a lenetlab checkpoint (expected format {FORMAT!r})")
    if "checksum" not in ckpt:
        raise CheckpointError(
            f"{path}: field 'checksum' is missing: the weights cannot be verified (every "
            "checkpoint lenet train writes has one; restore the file, or retrain)"
        )
    if ckpt["checksum"] != content_checksum(ckpt):
        raise CheckpointError(
            f"{path}: field 'checksum' does not match the contents: the file was damaged "
            "or edited after it was saved (restore it, or retrain)"
        )
    return check_fields(ckpt, path, need, training)


def _check_shapes(shadow: nn.Module, state: dict, src, name: str) -> None:
    want = {k: tuple(v.shape) for k, v in shadow.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    wrong = [k for k in want if k in got and want[k] != got[k]]
    if missing or extra or wrong:
        detail = (
            f"missing {missing[:3]}"
            if missing
            else f"unexpected {extra[:3]}"
            if extra
            else f"{wrong[0]} is {list(got[wrong[0]])}, the model needs {list(want[wrong[0]])}"
        )
        raise CheckpointError(f"{src}: checkpoint weights do not fit model {name!r}: {detail}")


def build_model(ckpt: dict, map_location: str | torch.device = "cpu", source=None) -> nn.Module:
    """The model a checkpoint describes, weights loaded, in eval mode; with an ``input_spec`` it runs once on a
    zero input, so that an input size it cannot take, or outputs other than ``len(class_names)``, are refused."""
    src = source if source is not None else "checkpoint"
    spec = ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise CheckpointError(f"{src}: checkpoint has no 'model' entry of the form {{'name': str, 'kwargs': dict}}")
    if "state_dict" not in ckpt:
        raise CheckpointError(f"{src}: checkpoint of model {spec['name']!r} has no 'state_dict'")
    name, kwargs, state = spec["name"], spec.get("kwargs", {}), ckpt["state_dict"]
    try:
        # first without memory (meta tensors): kwargs asking for a giant model must not allocate it
        with torch.device("meta"):
            shadow = create(name, **kwargs)
        if isinstance(state, dict):
            _check_shapes(shadow, state, src, name)
        model = create(name, **kwargs)
    except CheckpointError:
        raise
    except LenetlabError as e:  # an unknown model name
        raise LenetlabError(f"{source}: {e}" if source is not None else str(e)) from None
    except (TypeError, ValueError, RuntimeError, NotImplementedError) as e:
        raise CheckpointError(f"{src}: checkpoint's model arguments do not fit {name!r}: {first_line(e)}") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        detail = " ".join(str(e).split())[:240]
        raise CheckpointError(f"{src}: checkpoint weights do not fit model {name!r}: {detail}") from None
    model = model.to(map_location).eval()
    if isinstance(ckpt.get("input_spec"), dict):
        shape_in = InputSpec.from_dict(ckpt["input_spec"], src)
        try:
            with torch.inference_mode():
                x = torch.zeros(1, shape_in.channels, shape_in.size, shape_in.size, device=map_location)
                out = tuple(model(x).shape)
        except (RuntimeError, ValueError) as e:
            raise CheckpointError(
                f"{src}: field 'input_spec': {name} cannot take {shape_in.channels}x"
                f"{shape_in.size}x{shape_in.size} inputs ({first_line(e, 120)})"
            ) from None
        names = ckpt.get("class_names")
        if isinstance(names, (list, tuple)) and (len(out) != 2 or out[1] != len(names)):
            raise CheckpointError(
                f"{src}: field 'class_names' lists {len(names)} classes but the model gives "
                f"{out[1] if len(out) == 2 else list(out)} outputs"
            )
    return model


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The model of checkpoint ``path`` (file or exported folder, with :data:`MODEL_FIELDS`) in eval mode on
    ``map_location``, and the checkpoint dict."""
    ckpt = load_checkpoint(path, map_location, need=MODEL_FIELDS)
    return build_model(ckpt, map_location, source=Path(path)), ckpt


def load_pretrained(folder: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """The model saved in an exported ``model.safetensors`` + ``config.json`` folder, weights loaded, in
    eval mode on ``map_location`` (``lenetlab.models.create(name, pretrained=True)`` for shipped ones)."""
    return load_model(folder, map_location)[0]
