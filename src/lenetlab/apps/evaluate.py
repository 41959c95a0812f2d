"""``lenet eval``: rebuild a checkpoint's model and evaluate it on a split of its dataset."""

from __future__ import annotations

import torch

from lenetlab import data
from lenetlab.data.transforms import InputSpec
from lenetlab.device import autocast_dtype, select_device
from lenetlab.errors import DataError, LenetlabError
from lenetlab.inference.evaluate import EvalResult, evaluate, format_result
from lenetlab.models.checkpoint import load_model
from lenetlab.textfmt import Output
from lenetlab.train.config import RUN_DATA_FIELDS


def evaluate_checkpoint(checkpoint, dataset: str | None = None, data_dir: str | None = None, split: str | None = "test",
                        device: str = "auto", batch_size: int = 1000) -> EvalResult:
    """Rebuild a checkpoint's model and :func:`evaluate` it on ``split`` (``test`` or ``dev``; None:
    test when it is labelled, else dev) of ``dataset`` (default: the dataset, data folder, dev size,
    image size and CSV columns it was trained with)."""
    return _evaluate_checkpoint(checkpoint, dataset, data_dir, split, device, batch_size)[0]


def _evaluate_checkpoint(checkpoint, dataset, data_dir, split, device, batch_size) -> tuple[EvalResult, str]:
    """:func:`evaluate_checkpoint` and the split it used."""
    dev = select_device(device)
    model, ckpt = load_model(checkpoint, map_location=dev)  # refuses damaged or inconsistent checkpoints
    cfg = ckpt.get("config") or {}
    name = dataset or cfg.get("dataset") or ckpt.get("dataset")  # the config keeps the path the run was given
    if not name:
        raise DataError(f"{checkpoint}: the checkpoint does not name its dataset; pass --dataset")
    kwargs = {"data_dir": data_dir if data_dir is not None else (cfg.get("data_dir") if dataset is None else None)}
    for key in RUN_DATA_FIELDS:  # the split, image size and columns the run was trained on
        if cfg.get(key) is not None:
            kwargs[key] = cfg[key]
    splits = data.load(name, **kwargs)
    if split is None:  # a Kaggle test.csv has no labels: its dev split is what can be scored
        split = "test" if splits.test.y is not None and len(splits.test) else "dev"
    part = getattr(splits, split)
    if part.y is None:  # a Kaggle test.csv has no labels
        raise DataError(f"{name}: the {split} split has no labels (an unlabelled test.csv?); evaluate with --split dev")
    if len(part) == 0:
        raise DataError(f"{name}: the {split} split is empty")
    if len(ckpt["class_names"]) != len(splits.class_names):
        raise DataError(f"{checkpoint}: model has {len(ckpt['class_names'])} classes but {name} has "
                        f"{len(splits.class_names)}")
    if [str(c) for c in ckpt["class_names"]] != [str(c) for c in splits.class_names]:
        # same count, other classes (a digit model on Fashion-MNIST, say): the accuracy would be meaningless
        raise DataError(f"{checkpoint}: model classes ({_brief(ckpt['class_names'])}) differ from {name}'s "
                        f"({_brief(splits.class_names)})")
    spec = InputSpec.from_dict(ckpt["input_spec"])
    channels_last = bool(cfg.get("channels_last", False))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    try:  # the precision it was trained with, where this device supports it
        autocast = autocast_dtype(dev, cfg.get("amp", "off"))
    except LenetlabError:
        autocast = None
    res = evaluate(model, part, spec, dev, batch_size, class_names=ckpt["class_names"],
                   autocast=autocast, channels_last=channels_last)
    return res, split


def _brief(names, k: int = 4) -> str:
    """The first ``k`` class names, comma-separated, for one-line messages."""
    names = [str(n) for n in names]
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


def eval_command(checkpoint, dataset=None, data_dir=None, split=None, device="auto", batch_size=1000) -> Output:
    """``lenet eval``: evaluate ``checkpoint``; ``split`` None: test when it is labelled, else dev (a
    Kaggle test set)."""
    res, used = _evaluate_checkpoint(checkpoint, dataset, data_dir, split, device, batch_size)
    note = " (the test split is unlabelled)" if split is None and used == "dev" else ""
    return Output({"checkpoint": str(checkpoint), "split": used, **res.to_dict()},
                  f"{checkpoint} on {used}{note}:\n{format_result(res)}")
