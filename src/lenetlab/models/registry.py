"""The model registry, as timm's ``register_model`` / ``create_model`` / ``list_models``: each architecture
module registers a builder (a function or the model class) ``builder(num_classes=10, in_channels=1, **kwargs)``.
"""

import fnmatch
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from lenetlab.errors import LenetlabError, did_you_mean
from lenetlab.models.pretrained import pretrained_dir, pretrained_names, read_pretrained


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: ``input_size`` is the ``(C, H, W)`` it expects for MNIST-like data."""

    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]
    description: str


_MODELS: dict[str, ModelInfo] = {}


def register_model(name: str, *, input_size: tuple[int, int, int], description: str):
    """Decorator registering a builder under ``name``; raises ``ValueError`` on a duplicate."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is already registered")
        _MODELS[name] = ModelInfo(name, builder, tuple(input_size), description)
        return builder

    return wrap


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` registered as ``name``, or a :class:`LenetlabError` suggesting close names."""
    try:
        return _MODELS[name]
    except KeyError:
        hint = did_you_mean(name, _MODELS)
        raise LenetlabError(f"unknown model {name!r}{hint}; known models: {', '.join(sorted(_MODELS))}") from None


def create(
    name: str, num_classes: int | None = None, in_channels: int | None = None, *, pretrained: bool = False, **kwargs
) -> nn.Module:
    """The model registered as ``name``, for ``num_classes`` outputs (default 10) and ``in_channels`` inputs (1).

    ``pretrained=True``: with the weights shipped for ``name``, in eval mode. As in timm, another
    ``num_classes`` or ``in_channels`` keeps every layer that still fits, with a new head and a first
    convolution adapted to the channel count (its weights summed over the input channels and spread
    evenly over the new ones), and a warning naming them; other differing arguments are an error.
    """
    info = model_info(name)
    if not pretrained:
        classes, channels = 10 if num_classes is None else num_classes, 1 if in_channels is None else in_channels
        return info.builder(num_classes=classes, in_channels=channels, **kwargs)
    ckpt = read_pretrained(pretrained_dir(name))
    saved = dict(ckpt["model"]["kwargs"])
    for key, value in kwargs.items():
        if value is not None and saved.get(key, value) != value:
            raise LenetlabError(
                f"create({name!r}, pretrained=True): the shipped weights have {key}={saved[key]!r}, "
                f"not {value!r} (leave {key} out, or train your own with lenet train)"
            )
    given = {
        k: v for k, v in {"num_classes": num_classes, "in_channels": in_channels, **kwargs}.items() if v is not None
    }
    model = info.builder(**{**saved, **given})
    state, replaced = _fitted_state(model.state_dict(), ckpt["state_dict"])
    model.load_state_dict(state)
    if replaced:
        changed = ", ".join(f"{k}={v}" for k, v in given.items() if saved.get(k) != v)
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
    names = [n for n in _MODELS if not any(patterns) or any(fnmatch.fnmatchcase(n, p) for p in patterns if p)]
    if pretrained:
        names = [n for n in names if n in pretrained_names()]
    return [model_info(n) for n in names]
