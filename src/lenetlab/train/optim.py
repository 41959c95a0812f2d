"""Optimisers, learning-rate schedules (stepped every batch) and weight initialisation."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from lenetlab.errors import ConfigError


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW over ``model``'s parameters, from a RunConfig."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        if cfg.nesterov and cfg.momentum <= 0:
            raise ConfigError("field 'nesterov' needs momentum > 0")
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"field 'optimizer' must be one of sgd, adam, adamw (got {cfg.optimizer!r})")


class _Multiplier:
    """The learning-rate multiplier of step ``t`` (a picklable callable for ``LambdaLR``).

    Linear warm-up from 0 over ``warmup`` steps, then constant, step decay (``gamma`` every
    ``step_size`` steps) or cosine annealing to 0 at ``total`` steps.
    """

    def __init__(self, kind: str, total: int, warmup: int, step_size: int, gamma: float) -> None:
        self.kind, self.total, self.warmup = kind, max(total, 1), warmup
        self.step_size, self.gamma = max(step_size, 1), gamma

    def __call__(self, t: int) -> float:
        if t < self.warmup:
            return (t + 1) / self.warmup
        if self.kind == "step":
            return self.gamma ** (t // self.step_size)
        if self.kind == "cosine":
            span = max(self.total - self.warmup, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(t - self.warmup, span) / span))
        return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, cfg, steps_per_epoch: int):
    """The per-batch schedule of a RunConfig: none, step, cosine (with linear warm-up) or onecycle.

    ``step_size`` and ``warmup`` are in epochs and converted with ``steps_per_epoch``. One-cycle is
    PyTorch's ``OneCycleLR`` with peak ``lr`` (it also cycles momentum / Adam's beta1); its rise
    is ``warmup`` epochs when given, else 30% of the run.
    """
    total = cfg.epochs * steps_per_epoch
    warmup = int(round(cfg.warmup * steps_per_epoch))
    if cfg.schedule == "onecycle":
        pct = min(max(warmup / total, 0.01), 0.99) if warmup else 0.3
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total,
                                                   pct_start=pct)
    if cfg.schedule not in ("none", "step", "cosine"):
        raise ConfigError(f"field 'schedule' must be one of none, step, cosine, onecycle (got {cfg.schedule!r})")
    step_size = int(round(cfg.step_size * steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _Multiplier(cfg.schedule, total, warmup, step_size,
                                                                    cfg.gamma))
