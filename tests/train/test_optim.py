"""Optimisers, schedules, init and device/precision selection construct and behave as documented."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn as nn

from lenetlab.device import autocast_dtype, select_device
from lenetlab.errors import ConfigError
from lenetlab.models.init import init_weights
from lenetlab.train.config import RunConfig
from lenetlab.train.optim import build_optimizer, build_scheduler
from lenetlab.train.rng import rng_state, set_rng_state


def _lrs(cfg: RunConfig, steps_per_epoch: int = 10) -> list[float]:
    model = nn.Linear(4, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch)
    out = []
    for _ in range(cfg.epochs * steps_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("schedule", ["none", "step", "cosine", "onecycle"])
def test_every_optimizer_and_schedule_constructs_and_checkpoints(optimizer, schedule):
    cfg = RunConfig(optimizer=optimizer, schedule=schedule, epochs=2, lr=0.1, nesterov=optimizer == "sgd")
    model = nn.Linear(4, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, 5)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    sched.step()
    buf = io.BytesIO()
    torch.save({"o": opt.state_dict(), "s": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)  # checkpoint-safe
    sched2 = build_scheduler(build_optimizer(nn.Linear(4, 2), cfg), cfg, 5)
    sched2.load_state_dict(state["s"])
    assert sched2.last_epoch == 1


def test_schedule_shapes():
    assert set(_lrs(RunConfig(schedule="none", epochs=2, lr=0.1))) == {0.1}
    step = _lrs(RunConfig(schedule="step", epochs=3, lr=0.1, step_size=1, gamma=0.5))
    assert step[0] == 0.1 and math.isclose(step[10], 0.05) and math.isclose(step[29], 0.025)
    cos = _lrs(RunConfig(schedule="cosine", epochs=2, lr=0.1, warmup=0.5))
    assert cos[0] < cos[4] and math.isclose(max(cos), 0.1) and cos[-1] < 0.002
    one = _lrs(RunConfig(schedule="onecycle", epochs=2, lr=0.1))
    assert one[0] < 0.01 and math.isclose(max(one), 0.1, rel_tol=1e-3) and one[-1] < 1e-4


def test_xavier_init_changes_weights_only():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(3, 2))
    bias = m[0].bias.clone()
    w = m[0].weight.clone()
    init_weights(m, "xavier")
    assert not torch.equal(w, m[0].weight) and torch.equal(bias, m[0].bias)
    with pytest.raises(ConfigError, match="init"):
        init_weights(m, "he")


def test_device_and_amp_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "auto") is None and autocast_dtype(cpu, "off") is None
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16
    with pytest.raises(ConfigError, match="fp16"):
        autocast_dtype(cpu, "fp16")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="cuda"):
            select_device("cuda")


def test_rng_state_round_trip_is_checkpoint_safe():
    import random

    import numpy as np

    state = rng_state()
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    a = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_state(loaded)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == a


@pytest.mark.parametrize(
    "epochs, steps_per_epoch, warmup", [(2, 4, 0.25), (1, 4, 0.0), (1, 3, 0.0), (1, 1, 0.0), (2, 2, 1.0)]
)
def test_onecycle_on_a_few_steps_runs_to_the_end(epochs, steps_per_epoch, warmup):
    # fast-lenet5 (batch 256, 2 epochs, warm-up 0.25) on a 1,000-image set is 8 steps: each phase
    # of the one-cycle must still span steps, and the rate stays finite and positive to the end
    lrs = _lrs(RunConfig(schedule="onecycle", epochs=epochs, lr=0.1, warmup=warmup), steps_per_epoch)
    assert len(lrs) == epochs * steps_per_epoch
    assert all(math.isfinite(v) and 0 < v <= 0.1 + 1e-12 for v in lrs)
    if len(lrs) >= 4:
        assert max(lrs) == pytest.approx(0.1) and lrs[-1] < lrs[0]
