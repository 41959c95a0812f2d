"""The :class:`Splits` every dataset loader returns, and the one dev-split rule (:func:`dev_size`)."""

from dataclasses import dataclass, field

import torch

from lenetlab.data.transforms import InputSpec

#: The most images :func:`dev_size` carves for the dev split by default.
DEV_MAX = 5000


def dev_size(n_train: int, val_size: int | None = None) -> int:
    """The dev split carved from ``n_train`` labelled training images: ``val_size`` when given, else a
    tenth of them, at most :data:`DEV_MAX` (5,000 of MNIST's 60,000). The one rule of every loader."""
    return min(DEV_MAX, n_train // 10) if val_size is None else int(val_size)


@dataclass
class Split:
    """One split: ``x`` is ``uint8 [N, C, H, W]``; ``y`` is ``int64 [N]`` or ``None`` when unlabelled;
    ``ids`` optionally names each example (the image names of a Kaggle test set)."""

    x: torch.Tensor
    y: torch.Tensor | None
    ids: list[str] | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, i: torch.Tensor) -> "Split":
        """The examples at indices ``i`` (int64)."""
        ids = None if self.ids is None else [self.ids[j] for j in i.tolist()]
        return Split(self.x[i], None if self.y is None else self.y[i], ids)


@dataclass
class Splits:
    """Train/dev/test splits of one dataset, its class names and default input spec. ``source`` says where
    the files were read from; ``submission`` is a submission file's header (id column, label column)."""

    name: str
    train: Split
    dev: Split
    test: Split
    class_names: list[str]
    input_spec: InputSpec = field(default_factory=InputSpec)
    source: str = ""
    submission: tuple[str, str] = ("image", "label")
