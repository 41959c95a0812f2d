"""From a RunConfig to the run's data, input spec, model and training loader."""

import warnings
from dataclasses import replace

from lenetlab.data.augment import build_augment
from lenetlab.data.common import normalization
from lenetlab.data.loader import TensorLoader
from lenetlab.data.transforms import InputSpec, pad_or_resize
from lenetlab.errors import ConfigError, LenetlabError
from lenetlab.inference.run import load_data
from lenetlab.models import create, model_info
from lenetlab.models.checkpoint import data_description
from lenetlab.models.init import init_weights
from lenetlab.textfmt import quiet


def load_splits(cfg, dist=None):
    """The splits of the config's data description (:func:`lenetlab.inference.run.load_data`, as every
    command re-reading a run's data); under ``dist`` rank 0 loads (and downloads) first."""
    if dist is not None and not dist.is_main:
        dist.barrier()
    splits = load_data(data_description(cfg.to_dict()), download=cfg.download)
    if dist is not None and dist.is_main:
        dist.barrier()
    return splits


def build_spec(cfg, splits) -> InputSpec:
    """The model input spec: the data's channels, the model's input size, and the config's resize (``auto``:
    :func:`~lenetlab.data.transforms.pad_or_resize`), digit width and normalisation."""
    size = int(model_info(cfg.model).input_size[-1])
    x = splits.train.x
    c, h = int(x.shape[1]), int(x.shape[-1])
    resize = cfg.resize
    if resize == "auto":
        resize = pad_or_resize(h, size)
    if cfg.digit_width > int(x.shape[-1]):
        raise ConfigError(
            f"field 'digit_width': {cfg.digit_width} pixels is wider than the {cfg.dataset} images "
            f"({int(x.shape[-1])} pixels)"
        )
    spec = replace(splits.input_spec, channels=c, size=size, resize=resize, digit_width=cfg.digit_width)
    if cfg.normalize == "default":
        if len(spec.mean) != c:
            spec = replace(spec, mean=(spec.mean[0],) * c, std=(spec.std[0],) * c)
        return spec
    mean, std = normalization(cfg.normalize, x)
    return replace(spec, mean=mean, std=std)


def init_model(cfg, splits, spec: InputSpec, say=quiet):
    """``cfg.model`` for the classes of ``splits`` and the channels of ``spec``, initialised by ``cfg.init``
    (``pretrained``: the shipped weights, a new head where the classes differ) on the CPU; returns
    ``(model, kwargs)``, the kwargs a checkpoint records. ``say(text, err=True)`` receives ``create``'s
    warning naming the pretrained layers it replaced, as one ``note:`` line."""
    kwargs = {"num_classes": len(splits.class_names), "in_channels": spec.channels, **cfg.model_kwargs}
    pretrained = cfg.init == "pretrained"
    try:
        with warnings.catch_warnings(record=True) as replaced:
            warnings.simplefilter("always")
            model = create(cfg.model, pretrained=pretrained, **kwargs)
    except TypeError as e:
        raise LenetlabError(f"field 'model_kwargs': {cfg.model} does not accept {cfg.model_kwargs} ({e})") from None
    for w in replaced:
        say(f"note: {w.message}", err=True)
    return (model.train() if pretrained else init_weights(model, cfg.init)), kwargs


def augment_transform(cfg):
    """The train-only batch transform of ``cfg.augment`` (float ``[B, C, H, W]`` in and out), or None."""
    if cfg.augment == "none":
        return None
    try:
        return build_augment(cfg.augment, **cfg.augment_kwargs)
    except TypeError as e:
        raise ConfigError(f"field 'augment_kwargs': {e}") from None


def train_loader(cfg, splits, spec: InputSpec, device, rank: int = 0, world_size: int = 1) -> TensorLoader:
    """The shuffled, augmented loader of this rank's share of ``splits.train`` (batches of
    ``cfg.batch_size // world_size``) on ``device``."""
    return TensorLoader(
        splits.train.x,
        splits.train.y,
        cfg.batch_size // world_size,
        seed=cfg.seed,
        drop_last=cfg.drop_last,
        device=device,
        rank=rank,
        world_size=world_size,
        transform=augment_transform(cfg),
        spec=spec,
    )
