"""The model registry: every architecture is constructible by name.

Modelled on timm's ``register_model`` / ``create_model``: each architecture module decorates a
builder function ``builder(num_classes=10, in_channels=1, **kwargs) -> nn.Module``; registering a
name twice is an error, and asking for an unknown name is a one-line :class:`LenetlabError`.
``create(name, pretrained=True)`` loads the trained weights shipped for ``name`` (as timm's
``create_model(name, pretrained=True)``; see :mod:`lenetlab.models.pretrained`), with a new head or an
adapted first convolution for another ``num_classes`` or ``in_channels``; ``list_models("lenet5*",
pretrained=True)`` filters the names as timm's ``list_models`` does.
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from lenetlab.errors import CheckpointError, LenetlabError
from lenetlab.models.pretrained import pretrained_dir, pretrained_names, read_pretrained


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


def create(
    name: str, num_classes: int | None = None, in_channels: int | None = None, *, pretrained: bool = False, **kwargs
) -> nn.Module:
    """Build the model registered as ``name`` for ``num_classes`` outputs (default 10) and ``in_channels``
    inputs (default 1).

    ``pretrained=True`` returns it with the trained weights shipped for ``name``, in eval mode (call
    ``.train()`` to fine-tune). As timm does, a ``num_classes`` or ``in_channels`` other than the
    weights' keeps every layer that still fits and replaces the rest: a new classifier head (freshly
    initialised), a first convolution adapted to the channel count (its weights summed over the input
    channels and spread evenly over the new ones, so a grey image copied into every channel gives the
    old outputs); a warning names the layers replaced. Other arguments that differ from the weights', and a name
    without shipped weights, are a one-line :class:`LenetlabError`.
    """
    if not pretrained:
        return MODELS.info(name).builder(
            num_classes=10 if num_classes is None else num_classes,
            in_channels=1 if in_channels is None else in_channels,
            **kwargs,
        )
    MODELS.info(name)  # an unknown name: the registry's own error
    ckpt = read_pretrained(pretrained_dir(name))
    saved = dict(ckpt["model"]["kwargs"])
    for key, value in kwargs.items():
        if value is not None and saved.get(key, value) != value:
            raise LenetlabError(
                f"create({name!r}, pretrained=True): the shipped weights have {key}={saved[key]!r}, "
                f"not {value!r} (leave {key} out, or train your own with lenet train)"
            )
    given = {"num_classes": num_classes, "in_channels": in_channels, **kwargs}
    model = MODELS.info(name).builder(**{**saved, **{k: v for k, v in given.items() if v is not None}})
    state, replaced = _fitted_state(model.state_dict(), ckpt["state_dict"])
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(
            f"{pretrained_dir(name)}: weights do not fit model {name!r} ({' '.join(str(e).split())[:200]})"
        ) from None
    if replaced:
        changed = ", ".join(f"{k}={v}" for k, v in given.items() if v is not None and saved.get(k) != v)
        warnings.warn(
            f"create({name!r}, pretrained=True, {changed}): kept the pretrained weights except "
            f"{'; '.join(replaced)} (fine-tune before use)",
            stacklevel=2,
        )
    return model.eval()


def _fitted_state(fresh: dict, pretrained: dict) -> tuple[dict, list[str]]:
    """``fresh`` (a new model's state dict) with every pretrained tensor of the same name and shape, and
    the first convolution's weights adapted to another input-channel count; and what was not kept, one
    entry per layer (``"output: new, 26 outputs"``)."""
    state, replaced = dict(fresh), {}
    for key, new in fresh.items():
        old = pretrained.get(key)
        layer = key.rpartition(".")[0] or key
        if old is not None and old.shape == new.shape:
            state[key] = old
        elif old is not None and old.dim() == 4 and old.shape[0] == new.shape[0] and old.shape[2:] == new.shape[2:]:
            state[key] = (old.sum(dim=1, keepdim=True) / new.shape[1]).repeat(1, new.shape[1], 1, 1).to(new.dtype)
            replaced[layer] = f"{layer}: adapted from {old.shape[1]} to {new.shape[1]} input channels"
        else:
            replaced.setdefault(layer, f"{layer}: new, initialised afresh, shape {tuple(new.shape)}")
    return state, list(replaced.values())


def list_models(filter: str | list[str] = "", pretrained: bool = False) -> list[ModelInfo]:
    """Every registered model's :class:`ModelInfo`, in registration order; ``filter``: only the names
    matching a shell-style pattern (``"lenet5*"``, or a list of them, as :func:`fnmatch.fnmatch` reads
    them); ``pretrained``: only the names that ship with trained weights."""
    patterns = [filter] if isinstance(filter, str) else list(filter)
    names = [n for n in MODELS.names() if not any(patterns) or any(fnmatch.fnmatchcase(n, p) for p in patterns if p)]
    if pretrained:
        names = [n for n in names if n in pretrained_names()]
    return [MODELS.info(n) for n in names]


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` registered as ``name``."""
    return MODELS.info(name)
