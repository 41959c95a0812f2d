"""The model registry: every architecture is constructible by name.

Modelled on timm's ``register_model`` / ``create_model``: each architecture module decorates a
builder function ``builder(num_classes=10, in_channels=1, **kwargs) -> nn.Module``; registering a
name twice is an error, and asking for an unknown name is a one-line :class:`LenetlabError`.
``create(name, pretrained=True)`` loads the trained weights shipped for ``name`` (as timm's
``create_model(name, pretrained=True)``; see :mod:`lenetlab.models.pretrained`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

import torch.nn as nn

from lenetlab.errors import CheckpointError, LenetlabError
from lenetlab.models.pretrained import pretrained_dir, read_pretrained


@dataclass(frozen=True)
class ModelInfo:
    """What ``lenet models`` shows of a registered model.

    ``input_size`` is the default ``(C, H, W)`` the model expects for MNIST-like data.
    """

    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]
    description: str


class Registry:
    """A name → :class:`ModelInfo` table that refuses duplicate names."""

    def __init__(self) -> None:
        self._models: dict[str, ModelInfo] = {}

    def register(self, name: str, *, input_size: tuple[int, int, int], description: str):
        """Decorator registering ``builder`` under ``name``; raises ``ValueError`` on a duplicate."""

        def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
            if name in self._models:
                raise ValueError(f"model name {name!r} is already registered")
            self._models[name] = ModelInfo(name, builder, tuple(input_size), description)
            return builder

        return wrap

    def info(self, name: str) -> ModelInfo:
        """The :class:`ModelInfo` of ``name``, or a :class:`LenetlabError` suggesting close names."""
        try:
            return self._models[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._models, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise LenetlabError(
                f"unknown model {name!r}{hint}; known models: {', '.join(sorted(self._models))}"
            ) from None

    def names(self) -> list[str]:
        """All registered names, in registration order."""
        return list(self._models)

    def __contains__(self, name: str) -> bool:
        return name in self._models


MODELS = Registry()
register_model = MODELS.register


def create(name: str, num_classes: int | None = None, in_channels: int | None = None, *, pretrained: bool = False,
           **kwargs) -> nn.Module:
    """Build the model registered as ``name`` for ``num_classes`` outputs (default 10) and ``in_channels``
    inputs (default 1).

    ``pretrained=True`` returns it with the trained weights shipped for ``name``, in eval mode (call
    ``.train()`` to fine-tune); arguments that differ from the ones those weights were trained with
    are a one-line :class:`LenetlabError`, as is a name without shipped weights.
    """
    if not pretrained:
        return MODELS.info(name).builder(num_classes=10 if num_classes is None else num_classes,
                                         in_channels=1 if in_channels is None else in_channels, **kwargs)
    MODELS.info(name)  # an unknown name: the registry's own error
    ckpt = read_pretrained(pretrained_dir(name))
    saved = dict(ckpt["model"]["kwargs"])
    given = {"num_classes": num_classes, "in_channels": in_channels, **kwargs}
    for key, value in given.items():
        if value is not None and saved.get(key, value) != value:
            raise LenetlabError(f"create({name!r}, pretrained=True): the shipped weights have {key}={saved[key]!r}, "
                                f"not {value!r} (leave {key} out, or train your own with lenet train)")
    model = MODELS.info(name).builder(**{**saved, **{k: v for k, v in given.items() if v is not None}})
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{pretrained_dir(name)}: weights do not fit model {name!r} "
                              f"({' '.join(str(e).split())[:200]})") from None
    return model.eval()


def list_models() -> list[ModelInfo]:
    """Every registered model's :class:`ModelInfo`, in registration order."""
    return [MODELS.info(n) for n in MODELS.names()]


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` registered as ``name``."""
    return MODELS.info(name)
