"""Optimisers, learning-rate schedules (stepped every batch) and weight initialisation."""

import math
from functools import partial

import torch
import torch.nn as nn

from lenetlab.errors import CheckpointError, ConfigError
from lenetlab.train.sdlm import SDLM, check_supported

#: The global learning rate of LeCun et al. 1998 (appendix C) per pass over the data: (passes, eta);
#: the last value holds for every later pass. ``--schedule lecun1998`` scales it to peak ``lr``.
LECUN1998_SCHEDULE = ((2, 5e-4), (3, 2e-4), (3, 1e-4), (4, 5e-5), (None, 1e-5))
#: Fields an optimiser sets when neither a flag nor a config file gives them (see
#: :func:`lenetlab.train.recipe.apply_recipe`): SDLM's eta and schedule are the paper's.
OPTIMIZER_DEFAULTS = {"sdlm": {"lr": LECUN1998_SCHEDULE[0][1], "schedule": "lecun1998"}}


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    """SGD, Adam, AdamW or SDLM (:mod:`.sdlm`) over ``model``'s trainable parameters, from a RunConfig."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        if cfg.nesterov and cfg.momentum <= 0:
            raise ConfigError("field 'nesterov' needs momentum > 0")
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.sdlm_mu <= 0:
        raise ConfigError(f"field 'sdlm_mu' must be > 0 (got {cfg.sdlm_mu})")
    if cfg.weight_decay:
        raise ConfigError("field 'weight_decay': sdlm has no weight decay (the paper used none)")
    check_supported(model, cfg.model)
    return SDLM(params, lr=cfg.lr, mu=cfg.sdlm_mu, batch_size=cfg.batch_size)


def _multiplier(kind: str, total: int, warmup: int, step_size: int, gamma: float, t: int) -> float:
    """The learning-rate multiplier of step ``t`` (``LambdaLR``): linear warm-up over ``warmup`` steps,
    then constant, ``step`` decay (``gamma`` every ``step_size`` steps), ``cosine`` to 0 at ``total``, or
    ``lecun1998`` (:data:`LECUN1998_SCHEDULE` relative to its first value, ``step_size``: one pass)."""
    if t < warmup:
        return (t + 1) / warmup
    if kind == "step":
        return gamma ** (t // step_size)
    if kind == "lecun1998":
        epoch, start = t // step_size, 0
        for passes, eta in LECUN1998_SCHEDULE:
            if passes is None or epoch < start + passes:
                return eta / LECUN1998_SCHEDULE[0][1]
            start += passes
    if kind == "cosine":
        span = max(total - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(t - warmup, span) / span))
    return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, cfg, steps_per_epoch: int):
    """The per-batch schedule of a RunConfig (``step_size`` and ``warmup`` in epochs): :func:`_multiplier`,
    or PyTorch's ``OneCycleLR`` peaking at ``lr`` after ``warmup`` epochs (default 30% of the run), each
    phase at least 2 steps (a run of fewer than 4 steps keeps ``lr`` constant)."""
    total = cfg.epochs * steps_per_epoch
    warmup = int(round(cfg.warmup * steps_per_epoch))
    if cfg.schedule == "onecycle" and total >= 4:
        # OneCycleLR divides by the length of each phase in steps: keep both at least 2 steps long
        # (a short run on a small dataset would otherwise stop with a ZeroDivisionError)
        rise = warmup if warmup else 0.3 * total
        pct = min(max(rise, 2), total - 2) / total
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=pct)
    step_size = steps_per_epoch if cfg.schedule == "lecun1998" else int(round(cfg.step_size * steps_per_epoch))
    step_size = max(step_size, 1)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(_multiplier, cfg.schedule, max(total, 1), warmup, step_size, cfg.gamma)
    )


def check_optimizer_state(saved: dict, optimizer: torch.optim.Optimizer, source) -> dict:
    """``saved`` (``last.pt``'s ``optimizer``) if it fits ``optimizer``: its groups and parameter counts,
    finite hyper-parameters, finite state tensors shaped like their parameters (or scalars); else a
    one-line CheckpointError naming ``source``."""

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{source}: field 'optimizer' cannot be restored ({what})")

    groups, state = saved.get("param_groups"), saved.get("state")
    if not isinstance(groups, list) or not isinstance(state, dict) or len(groups) != len(optimizer.param_groups):
        raise bad(f"does not have the run's {len(optimizer.param_groups)} parameter group(s)")
    shapes = {}
    for i, (group, live) in enumerate(zip(groups, optimizer.param_groups)):
        if (
            not isinstance(group, dict)
            or not isinstance(group.get("params"), list)
            or len(group["params"]) != len(live["params"])
        ):
            raise bad(f"group {i} does not hold the run's {len(live['params'])} parameters")
        for key, value in group.items():
            numbers = value if isinstance(value, (list, tuple)) and key != "params" else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
                raise bad(f"group {i}: {key!r} is {value!r}, not a finite number")
        shapes.update(zip(group["params"], (tuple(p.shape) for p in live["params"])))
    for pid, entries in state.items():
        if pid not in shapes or not isinstance(entries, dict):
            raise bad(f"holds state for parameter {pid!r}, which the run's model does not have")
        for key, t in entries.items():
            if not isinstance(t, torch.Tensor):
                continue
            if t.dim() and tuple(t.shape) != shapes[pid]:
                raise bad(f"state {key!r} of parameter {pid} is {list(t.shape)}, the parameter is {list(shapes[pid])}")
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise bad(f"state {key!r} of parameter {pid} holds NaN or infinite values")
    return saved
