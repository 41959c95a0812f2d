"""Optimisers, learning-rate schedules (stepped every batch) and weight initialisation."""

from __future__ import annotations

import math

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
    """SGD (momentum, Nesterov), Adam, AdamW or SDLM (:mod:`.sdlm`; ``h`` is estimated by the runner
    before each epoch) over ``model``'s parameters, from a RunConfig."""
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
    if cfg.optimizer == "sdlm":
        if cfg.sdlm_mu <= 0:
            raise ConfigError(f"field 'sdlm_mu' must be > 0 (got {cfg.sdlm_mu})")
        if cfg.weight_decay:
            raise ConfigError("field 'weight_decay': sdlm has no weight decay (the paper used none)")
        check_supported(model, cfg.model)
        return SDLM(params, lr=cfg.lr, mu=cfg.sdlm_mu, batch_size=cfg.batch_size)
    raise ConfigError(f"field 'optimizer' must be one of sgd, adam, adamw, sdlm (got {cfg.optimizer!r})")


class _Multiplier:
    """The learning-rate multiplier of step ``t`` (a picklable callable for ``LambdaLR``).

    Linear warm-up from 0 over ``warmup`` steps, then constant, step decay (``gamma`` every
    ``step_size`` steps), cosine annealing to 0 at ``total`` steps, or ``lecun1998``: the paper's
    per-pass values (:data:`LECUN1998_SCHEDULE`) relative to the first (``step_size`` = one pass).
    """

    def __init__(self, kind: str, total: int, warmup: int, step_size: int, gamma: float) -> None:
        self.kind, self.total, self.warmup = kind, max(total, 1), warmup
        self.step_size, self.gamma = max(step_size, 1), gamma

    def __call__(self, t: int) -> float:
        if t < self.warmup:
            return (t + 1) / self.warmup
        if self.kind == "step":
            return self.gamma ** (t // self.step_size)
        if self.kind == "lecun1998":
            epoch, start = t // self.step_size, 0
            for passes, eta in LECUN1998_SCHEDULE:
                if passes is None or epoch < start + passes:
                    return eta / LECUN1998_SCHEDULE[0][1]
                start += passes
        if self.kind == "cosine":
            span = max(self.total - self.warmup, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(t - self.warmup, span) / span))
        return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, cfg, steps_per_epoch: int):
    """The per-batch schedule of a RunConfig: none, step, cosine (with linear warm-up), onecycle, or
    lecun1998 (the paper's SDLM schedule, one value per epoch, peak ``lr``).

    ``step_size`` and ``warmup`` are in epochs and converted with ``steps_per_epoch``. One-cycle is
    PyTorch's ``OneCycleLR`` with peak ``lr`` (it also cycles momentum / Adam's beta1); its rise
    is ``warmup`` epochs when given, else 30% of the run, and each of its two phases at least 2
    steps (a run of fewer than 4 steps keeps ``lr`` constant).
    """
    total = cfg.epochs * steps_per_epoch
    warmup = int(round(cfg.warmup * steps_per_epoch))
    if cfg.schedule == "onecycle" and total >= 4:
        # OneCycleLR divides by the length of each phase in steps: keep both at least 2 steps long
        # (a short run on a small dataset would otherwise stop with a ZeroDivisionError)
        rise = warmup if warmup else 0.3 * total
        pct = min(max(rise, 2), total - 2) / total
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=pct)
    if cfg.schedule not in ("none", "step", "cosine", "lecun1998", "onecycle"):
        raise ConfigError(
            f"field 'schedule' must be one of none, step, cosine, onecycle, lecun1998 (got {cfg.schedule!r})"
        )
    step_size = steps_per_epoch if cfg.schedule == "lecun1998" else int(round(cfg.step_size * steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _Multiplier(cfg.schedule, total, warmup, step_size, cfg.gamma))


def check_optimizer_state(saved: dict, optimizer: torch.optim.Optimizer, source) -> dict:
    """Check a saved ``optimizer.state_dict()`` (``last.pt``'s ``optimizer``) against the run's
    ``optimizer`` before loading it: the same groups with the same number of parameters, finite
    hyper-parameters, and every per-parameter state tensor finite and, unless a scalar (``step``), of
    its parameter's shape. Returns ``saved``; a one-line CheckpointError naming ``source`` otherwise."""

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
