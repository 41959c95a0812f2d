"""``lenet eval``: rebuild a checkpoint's model and evaluate it on a split of its dataset."""

import torch

from lenetlab.data.transforms import InputSpec
from lenetlab.device import autocast_dtype, select_device
from lenetlab.errors import DataError, LenetlabError
from lenetlab.inference.evaluate import evaluate, format_result
from lenetlab.inference.run import checkpoint_path, load_data
from lenetlab.models.checkpoint import checkpoint_data, load_model
from lenetlab.textfmt import Output


def eval_command(checkpoint, dataset=None, data_dir=None, split=None, device="auto", batch_size=1000) -> Output:
    """``lenet eval``: evaluate ``checkpoint``'s model on ``split`` (None: test when it is labelled, else dev,
    as for a Kaggle test set) of the data it was trained on (:func:`load_data`) or of ``dataset``/``data_dir``."""
    dev, asked = select_device(device), split
    # refuses damaged or inconsistent checkpoints
    model, ckpt = load_model(checkpoint_path(checkpoint), map_location=dev)
    cfg = ckpt.get("config") or {}
    described = checkpoint_data(ckpt)
    name = dataset or described.get("dataset")  # the path the run was given, for a folder or file
    if not name:
        raise DataError(f"{checkpoint}: the checkpoint does not name its dataset; pass --dataset")
    splits = load_data(described, dataset, data_dir)
    if split is None:  # a Kaggle test.csv has no labels: its dev split is what can be scored
        split = "test" if splits.test.y is not None and len(splits.test) else "dev"
    part = getattr(splits, split)
    if part.y is None:  # a Kaggle test.csv has no labels
        raise DataError(f"{name}: the {split} split has no labels (an unlabelled test.csv?); evaluate with --split dev")
    if len(part) == 0:
        raise DataError(f"{name}: the {split} split is empty")
    if len(ckpt["class_names"]) != len(splits.class_names):
        raise DataError(
            f"{checkpoint}: model has {len(ckpt['class_names'])} classes but {name} has {len(splits.class_names)}"
        )
    if [str(c) for c in ckpt["class_names"]] != [str(c) for c in splits.class_names]:
        # same count, other classes (a digit model on Fashion-MNIST, say): the accuracy would be meaningless
        raise DataError(
            f"{checkpoint}: model classes ({_brief(ckpt['class_names'])}) differ from {name}'s "
            f"({_brief(splits.class_names)})"
        )
    spec = InputSpec.from_dict(ckpt["input_spec"])
    channels_last = bool(cfg.get("channels_last", False))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    try:  # the precision it was trained with, where this device supports it
        autocast = autocast_dtype(dev, cfg.get("amp", "off"))
    except LenetlabError:
        autocast = None
    res = evaluate(
        model,
        part,
        spec,
        dev,
        batch_size,
        class_names=ckpt["class_names"],
        autocast=autocast,
        channels_last=channels_last,
    )
    note = " (the test split is unlabelled)" if asked is None and split == "dev" else ""
    return Output(
        {"checkpoint": str(checkpoint), "split": split, **res.to_dict()},
        f"{checkpoint} on {split}{note}:\n{format_result(res)}",
    )


def _brief(names, k: int = 4) -> str:
    """The first ``k`` class names, comma-separated, for one-line messages."""
    names = [str(n) for n in names]
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")
