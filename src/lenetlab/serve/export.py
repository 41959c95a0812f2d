"""Export a lenetlab checkpoint: to ONNX (below), or to portable weights, ``model.safetensors`` +
``config.json`` + a ``README.md`` model card in a folder (:func:`export_safetensors`, the Hugging Face
Hub layout, see :mod:`lenetlab.models.pretrained`).

ONNX: a dynamic batch dimension and self-describing metadata.

The exporter is chosen explicitly: ``torch.onnx.export(..., dynamo=True)``, the ``torch.export``
based exporter (the default since torch 2.9 and the one PyTorch maintains; the TorchScript
exporter, ``dynamo=False``, is deprecated). It traces the model in eval mode from an example
batch of 8 (a batch of 1 would let ``torch.export`` specialise the batch size) with the batch
dimension declared dynamic through ``dynamic_shapes``. The model's input spec, class names and
name go into the ONNX ``metadata_props`` so ``lenet serve --onnx`` can preprocess exactly like the
checkpoint without reading it. After writing, the file is checked with ``onnx.checker`` and run
with onnxruntime against PyTorch (batches 1 and 8).
"""

import io
import logging
import os
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch
import yaml

from lenetlab.data.transforms import InputSpec
from lenetlab.errors import CheckpointError, LenetlabError, first_line, require
from lenetlab.fileio import atomic_path, dumps, read_json
from lenetlab.inference.predictor import META_CLASSES, META_FORMAT, META_MODEL, META_SPEC, ONNX_FORMAT
from lenetlab.inference.run import checkpoint_path, measured_test_accuracy
from lenetlab.models.checkpoint import checkpoint_data, load_model, load_pretrained
from lenetlab.models.pretrained import CONFIG, FORMAT, WEIGHTS, save_pretrained

#: What ONNX export and ONNX Runtime need: the ``serve`` extra.
ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")
EXAMPLE_BATCH = 8
#: Largest batch the exported graph promises to accept (a bound torch.export needs for the Dim).
MAX_BATCH = 65536
#: The model card of an exported folder, as the Hugging Face Hub names it.
MODEL_CARD = "README.md"
#: The licence (a Hugging Face Hub identifier) of models trained on each named dataset.
DATA_LICENCES = {"mnist": "cc-by-sa-3.0", "mnist-subset": "cc-by-sa-3.0", "fashion-mnist": "mit"}


def default_onnx_path(checkpoint: str | os.PathLike) -> Path:
    """``model.pt`` → ``model.onnx``; a run directory → ``<dir>/model.onnx``."""
    p = Path(checkpoint)
    return p / "model.onnx" if p.is_dir() else p.with_suffix(".onnx")


def export_onnx(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    opset: int | None = None,
    tolerance: float = 1e-4,
) -> dict:
    """Export ``checkpoint`` (file or run directory) to ONNX at ``out`` and verify it.

    The graph takes ``input`` ``float32 [batch, C, size, size]`` (already normalised, as
    :func:`lenetlab.data.transforms.prepare` makes it) and returns ``scores`` ``[batch, K]``.
    Returns a summary dict: ``path``, ``model``, ``opset``, ``exporter``, ``bytes``, ``max_abs_diff``
    (onnxruntime vs PyTorch). Raises :class:`LenetlabError` when the outputs differ by more than
    ``tolerance``.
    """
    onnx = require(ONNX_MODULES, "serve", "ONNX export (lenet export --format onnx)")
    model, ckpt = load_model(checkpoint_path(checkpoint), map_location="cpu")  # every field checked, input_spec too
    try:  # the ONNX metadata needs them: a bare state-dict checkpoint cannot be served
        spec = InputSpec.from_dict(ckpt["input_spec"])
        class_names = [str(c) for c in ckpt["class_names"]]
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(
            f"{checkpoint}: checkpoint lacks a valid input_spec/class_names ({type(e).__name__}: {e})"
        ) from None
    out = _onnx_out(checkpoint, out)
    gen = torch.Generator().manual_seed(0)
    name = ckpt["model"]["name"]
    example = torch.randn(EXAMPLE_BATCH, spec.channels, spec.size, spec.size, generator=gen)
    try:
        proto = _quiet_export(model, example, opset)
    except Exception as e:  # the exporter's errors are long; keep the first line
        raise LenetlabError(f"{checkpoint}: ONNX export of {name!r} failed ({first_line(e, 200)})") from None
    opset_used = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and opset_used != opset:  # the exporter falls back silently to its own opset
        raise LenetlabError(
            f"--opset {opset}: the exporter cannot convert {name!r} to opset {opset} (it produced opset "
            f"{opset_used}); leave --opset out for the exporter's default"
        )
    _describe(proto, ckpt["model"], class_names, spec)
    onnx.checker.check_model(proto)
    diff = _save_verified(proto, out, lambda path: _max_diff(model, path, spec, gen), tolerance)
    return {
        "path": str(out),
        "model": name,
        "checkpoint": str(checkpoint),
        "exporter": "torch.onnx.export(dynamo=True)",
        "opset": opset_used,
        "dynamic_batch": True,
        "bytes": out.stat().st_size,
        "max_abs_diff": diff,
        "class_names": class_names,
    }


def _onnx_out(checkpoint, out) -> Path:
    """The ONNX file to write (``out``, default beside ``checkpoint``), its folder made; a name without
    ``.onnx`` or a file that ``lenet export`` did not write is refused."""
    out = Path(out) if out is not None else default_onnx_path(checkpoint)
    if out.suffix.lower() != ".onnx":
        raise LenetlabError(f"--out {out}: the ONNX file name must end in .onnx")
    if out.is_file() and not _exported_onnx(out):
        raise LenetlabError(f"--out {out}: exists and was not written by lenet export; choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LenetlabError(f"--out {out}: cannot create its folder ({e.strerror or e})") from None
    return out


def _save_verified(proto, out: Path, max_diff, tolerance: float) -> float:
    """Save ``proto`` at ``out`` when ``max_diff(path)``, its largest difference from PyTorch, is within
    ``tolerance`` (checked in the temporary file: a failed check leaves a previous good export in place)."""
    onnx = require(ONNX_MODULES, "serve", "ONNX export (lenet export --format onnx)")
    try:
        with atomic_path(out) as tmp:
            onnx.save(proto, str(tmp))
            diff = max_diff(tmp)
            if diff > tolerance:
                raise LenetlabError(
                    f"{out}: onnxruntime differs from PyTorch by {diff:.2e} (> {tolerance:g}); nothing written"
                )
    except OSError as e:
        raise LenetlabError(f"--out {out}: cannot write the ONNX file ({e.strerror or e})") from None
    return diff


def _exported_onnx(path: Path) -> bool:
    """Whether ``path`` is an ONNX file that ``lenet export`` wrote (its lenetlab metadata), which a new
    export may replace."""
    onnx = require(ONNX_MODULES, "serve", "ONNX export (lenet export --format onnx)")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # onnx raises DecodeError and others for a file that is not ONNX
        return False
    return any(p.key == META_FORMAT and p.value == ONNX_FORMAT for p in proto.metadata_props)


def _exported_folder(folder: Path) -> bool:
    """Whether ``folder`` holds nothing an export would replace but a previous export's files: no
    ``config.json``, ``model.safetensors`` or ``README.md``, or a ``config.json`` of format :data:`FORMAT`."""
    config, weights = folder / CONFIG, folder / WEIGHTS
    if not config.exists():
        return not weights.exists() and not (folder / MODEL_CARD).exists()
    try:
        return read_json(config).get("format") == FORMAT
    except (LenetlabError, AttributeError):  # unreadable, not strict JSON, or not an object: not ours
        return False


def _describe(proto, model: dict, class_names: list[str], spec: InputSpec) -> None:
    """Write what serving needs into the ONNX ``proto``'s metadata (model, classes, input spec) and doc string."""
    meta = {
        META_FORMAT: ONNX_FORMAT,
        META_MODEL: dumps(model, indent=None),
        META_CLASSES: dumps(class_names, indent=None),
        META_SPEC: dumps(spec.to_dict(), indent=None),
    }
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    proto.doc_string = (
        f"lenetlab {model['name']}: input float32 [batch, {spec.channels}, {spec.size}, "
        f"{spec.size}] normalised per {META_SPEC}; output scores [batch, {len(class_names)}]"
    )


def _quiet_export(model: torch.nn.Module, example: torch.Tensor, opset: int | None):
    """``torch.onnx.export(dynamo=True)`` of ``model`` on ``example`` with a dynamic batch dimension, its
    narration, warnings and logged tracebacks silenced; returns the ONNX ModelProto."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    kwargs = {} if opset is None else {"opset_version": opset}
    # onnxscript logs a full traceback when its version converter cannot reach --opset
    levels = {lg: lg.level for lg in map(logging.getLogger, ("torch.onnx", "onnxscript"))}
    # the exporter narrates its steps and warns that torchvision's ops are absent: noise for users
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for lg in levels:
            lg.setLevel(logging.CRITICAL)
        try:
            return torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                dynamic_shapes=({0: batch},),
                input_names=["input"],
                output_names=["scores"],
                external_data=False,
                verbose=False,
                **kwargs,
            ).model_proto
        finally:
            for lg, level in levels.items():
                lg.setLevel(level)


def _max_diff(model: torch.nn.Module, path: Path, spec: InputSpec, gen: torch.Generator) -> float:
    """Largest |onnxruntime - PyTorch| score difference of the ONNX file ``path`` on random batches of 1 and 9."""
    ort = require("onnxruntime", "serve", "ONNX export (lenet export --format onnx)")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diff = 0.0
    for n in (1, EXAMPLE_BATCH + 1):
        x = torch.randn(n, spec.channels, spec.size, spec.size, generator=gen)
        with torch.inference_mode():
            ref = model(x).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        diff = max(diff, float(np.abs(got - ref).max()))
    return diff


def default_safetensors_dir(checkpoint: str | os.PathLike) -> Path:
    """``RUN_DIR`` → ``RUN_DIR/pretrained``; ``model.pt`` → the folder ``model`` beside it."""
    p = Path(checkpoint)
    return p / "pretrained" if p.is_dir() else p.with_suffix("")


def export_safetensors(checkpoint: str | os.PathLike, out: str | os.PathLike | None = None) -> dict:
    """Write ``checkpoint`` (file, run directory or shipped model name) as a Hugging Face Hub style
    folder: ``out/model.safetensors``, ``out/config.json`` and a ``out/README.md`` model card, and check
    that the model rebuilt from that folder gives the same outputs, bit for bit.

    ``config.json`` holds the model name and arguments, class names, input spec, lenetlab version,
    dataset and, where known, the step, dev and test accuracy and the training config (see
    :mod:`lenetlab.models.pretrained`), with nothing that names the training machine (no data or run
    folder; a dataset given as a path keeps its last part). Returns a summary dict (``path``, ``files``,
    ``model``, ``bytes``, ``max_abs_diff``).
    """
    checkpoint = Path(checkpoint)
    path = checkpoint_path(checkpoint)
    model, ckpt = load_model(path, map_location="cpu")  # every field checked
    out = Path(out) if out is not None else default_safetensors_dir(checkpoint)
    if out.exists() and not out.is_dir():
        raise LenetlabError(f"--out {out}: exists and is not a folder (the export is a folder: {WEIGHTS} + {CONFIG})")
    if out.is_dir() and not _exported_folder(out):
        raise LenetlabError(
            f"--out {out}: holds a {CONFIG} or {WEIGHTS} that lenet export did not write (a run's "
            "own config?); choose another --out"
        )
    extra = _portable_facts(path, ckpt)
    config = save_pretrained(out, ckpt, **extra)
    spec = InputSpec.from_dict(ckpt["input_spec"])
    x = torch.randn(EXAMPLE_BATCH, spec.channels, spec.size, spec.size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        diff = float((load_pretrained(out)(x) - model(x)).abs().max())
    if diff != 0.0:
        raise LenetlabError(f"{out}: the model rebuilt from the export differs from the checkpoint by {diff:.2e}")
    card = out / MODEL_CARD
    try:
        with atomic_path(card) as tmp:
            tmp.write_text(model_card(config, sum(p.numel() for p in model.parameters())), encoding="utf-8")
    except OSError as e:
        raise LenetlabError(f"--out {out}: cannot write {MODEL_CARD} ({e.strerror or e})") from None
    files = [out / WEIGHTS, out / CONFIG, card]
    return {
        "path": str(out),
        "files": [str(f) for f in files],
        "model": ckpt["model"]["name"],
        "checkpoint": str(checkpoint),
        "format": "safetensors",
        "bytes": sum(f.stat().st_size for f in files),
        "max_abs_diff": diff,
        "test_accuracy": extra.get("test_accuracy"),
    }


def _portable_facts(path: Path, ckpt: dict) -> dict:
    """What ``config.json`` records of the checkpoint at ``path`` besides the model: step, dev and test
    accuracy, the training config and the dataset, without the training machine's folders."""
    extra = {k: ckpt[k] for k in ("step", "dev_accuracy") if isinstance(ckpt.get(k), (int, float))}
    test_accuracy = measured_test_accuracy(path, ckpt)
    if test_accuracy is not None:
        extra["test_accuracy"] = test_accuracy
    train_config = dict(ckpt.get("config") or (ckpt.get("pretrained") or {}).get("train_config") or {})
    if train_config:
        # where the data and runs lived on the training machine means nothing anywhere else
        extra["train_config"] = {
            **train_config,
            "data_dir": None,
            "out_dir": None,
            "dataset": _portable_name(train_config.get("dataset")),
        }
    dataset = ckpt.get("dataset") or checkpoint_data(ckpt).get("dataset")
    if isinstance(dataset, str):
        extra["dataset"] = _portable_name(dataset)
    return extra


def _portable_name(dataset):
    """A dataset name as it means something on another machine: a path keeps only its last part."""
    return Path(dataset).name if isinstance(dataset, str) and ("/" in dataset or "\\" in dataset) else dataset


#: The body of the model card (after its front matter); :func:`model_card` fills the fields.
CARD = """---

# {name} ({dataset})

A lenetlab `{name}` classifier ({parameters:,} parameters, arguments `{kwargs}`) for {classes} classes
({class_names}), exported by `lenet export --format hub` with lenetlab {version}.

## Architecture

`{name}` from lenetlab's model registry (`lenet models`). Input: float32 `[batch, {channels}, {size}, {size}]`,
resized by `{resize}` and normalised with mean {mean} and std {std} (`input_spec` in `config.json`);
output: one score per class.

## Data and training

Trained on `{dataset}`. Recipe: {recipe}.{dev} The whole training config is `train_config` in `config.json`.

## Evaluation

{evaluation}

## Use

```python
import lenetlab.models

model = lenetlab.models.from_pretrained("THIS_FOLDER")
```

or `lenet predict --checkpoint THIS_FOLDER digit.png`, `lenet eval THIS_FOLDER`, `lenet serve THIS_FOLDER`.
`model.safetensors` must match the `checksum` in `config.json`.

## Intended use and limitations

For teaching and experiments: single centred characters of the classes above, in images like the training
data. Not for documents, several characters per image, other scripts, or any decision about people; accuracy
drops on inputs unlike the training set, and the scores are not calibrated probabilities.

## Licence

{licence_text}
"""
#: The licence paragraph of the model card, by licence (``other``: the data's own).
LICENCE_TEXTS = {
    "other": "The licence of the training data applies.",
    "cc-by-sa-3.0": "The weights are derived from `{dataset}` and shared under its licence, `cc-by-sa-3.0` "
    "(Creative Commons Attribution-Share Alike 3.0, as the MNIST database).",
}


def _front_matter(name: str, dataset: str, licence: str, acc: float | None) -> str:
    """The card's YAML front matter as the Hugging Face Hub reads it, with a ``model-index`` holding the
    test accuracy and its split when ``acc`` is known."""
    tags = ["image-classification", "lenet", "pytorch", "safetensors"]
    front = {"license": licence, "library_name": "lenetlab", "pipeline_tag": "image-classification", "tags": tags}
    front |= {"datasets": [dataset], "metrics": ["accuracy"]}
    if acc is not None:
        task, data = {"type": "image-classification"}, {"name": dataset, "type": dataset, "split": "test"}
        result = {"task": task, "dataset": data, "metrics": [{"type": "accuracy", "value": acc}]}
        front["model-index"] = [{"name": name, "results": [result]}]
    return "---\n" + yaml.safe_dump(front, sort_keys=False)


def model_card(config: dict, parameters: int) -> str:
    """The ``README.md`` model card of an exported folder whose ``config.json`` is ``config``: YAML front
    matter as the Hugging Face Hub reads it (``license``, ``library_name``, ``tags``, ``datasets``,
    ``metrics``, ``model-index`` with the test accuracy and its split), then :data:`CARD`."""
    name, dataset, acc = config["model"], config.get("dataset") or "unknown", config.get("test_accuracy")
    licence = DATA_LICENCES.get(dataset, "other")
    train, spec = config.get("train_config") or {}, config["input_spec"]
    keys = ("epochs", "batch_size", "optimizer", "lr", "schedule", "augment", "seed")
    recipe = ", ".join(f"{k} {train[k]}" for k in keys if train.get(k) is not None) or "not recorded"
    dev = (
        f" Best dev accuracy {config['dev_accuracy']} at step {config.get('step')}." if "dev_accuracy" in config else ""
    )
    fields = {"name": name, "dataset": dataset, "licence": licence}
    text = LICENCE_TEXTS.get(
        licence, "The weights are derived from `{dataset}` and shared under its licence, `{licence}`."
    )
    return _front_matter(name, dataset, licence, acc) + CARD.format(
        **fields,
        parameters=parameters,
        classes=len(config["class_names"]),
        kwargs=dumps(config["model_kwargs"], indent=None),
        class_names=", ".join(config["class_names"][:10]),
        version=config.get("lenetlab_version", "?"),
        channels=spec["channels"],
        size=spec["size"],
        resize=spec.get("resize"),
        mean=spec.get("mean"),
        std=spec.get("std"),
        recipe=recipe,
        dev=dev,
        evaluation=f"Accuracy {acc} on the test split of `{dataset}`, as its run measured it."
        if acc is not None
        else "No test accuracy was measured for this checkpoint.",
        licence_text=text.format(**fields),
    )
