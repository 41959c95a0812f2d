"""What a training run carries from step to step and across a resume (in ``last.pt``): its
:class:`TrainState` (position, best model, early stopping) and its :class:`Clock`."""

import contextlib
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from lenetlab.errors import CheckpointError


@dataclass
class TrainState:
    """Where a run is and what it keeps: ``batch`` is the position inside ``epoch`` and ``step`` counts
    optimiser steps; the best model so far on the monitor (``best_score``; ``best_accuracy`` its dev
    accuracy, ``best_state`` its CPU weights, taken at ``best_step``) and the evaluations since it last
    improved (``bad_evals``, for early stopping)."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    best_accuracy: float | None = None
    best_step: int = 0
    best_state: dict | None = None
    best_score: float | None = None
    bad_evals: int = 0

    def to_checkpoint(self) -> dict:
        """The ``last.pt`` fields of this state (named like its fields; ``best_state_dict``: the weights)."""
        return {_KEYS.get(f.name, f.name): getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_checkpoint(cls, ck: dict, path: Path, steps_per_epoch: int, epochs: int) -> "TrainState":
        """The state saved in ``ck`` (a ``last.pt`` read from ``path``); a position that does not fit a run of
        ``epochs`` epochs of ``steps_per_epoch`` steps, or a missing field, is a one-line CheckpointError."""
        try:
            state = cls(**{f.name: ck[_KEYS.get(f.name, f.name)] for f in fields(cls)})
            for name in ("epoch", "batch", "step", "best_step", "bad_evals"):
                setattr(state, name, int(getattr(state, name)))
        except KeyError as e:
            raise CheckpointError(f"{path}: field {e.args[0]!r} is missing (an incomplete last.pt)") from None
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: the training position cannot be read ({e})") from None
        epoch, batch, step, spe = state.epoch, state.batch, state.step, steps_per_epoch
        if batch >= spe or step != epoch * spe + batch or epoch > epochs or (epoch == epochs and batch):
            raise CheckpointError(
                f"{path}: fields 'epoch', 'batch', 'step' ({epoch}, {batch}, {step}) do not fit "
                f"this run ({epochs} epochs of {spe} steps)"
            )
        return state

    def judge(self, score: float, monitor: str) -> bool:
        """Record a dev evaluation's ``score`` on ``monitor`` (``dev_acc``, ``dev_loss`` or ``last``: every
        evaluation replaces the best); return whether it is the new best."""
        if monitor == "last" or self.best_score is None:
            best = True
        else:
            best = score > self.best_score if monitor == "dev_acc" else score < self.best_score
        if best:
            self.best_score, self.bad_evals = score, 0
        else:
            self.bad_evals += 1
        return best

    def stop_reason(self, cfg) -> str | None:
        """Why training is over for ``cfg`` (a RunConfig): ``max_steps``, ``early_stop`` (patience used up),
        ``completed`` (every epoch ran); None while it goes on."""
        if cfg.max_steps and self.step >= cfg.max_steps:
            return "max_steps"
        if cfg.patience and self.bad_evals >= cfg.patience:
            return "early_stop"
        return "completed" if self.epoch >= cfg.epochs else None


_KEYS = {"best_state": "best_state_dict"}


class Clock:
    """A run's ``elapsed`` wall seconds and ``train_time`` (the windows between :meth:`lap` calls, less
    what ran within :meth:`paused`), carried across resumes. Readings wait for queued CUDA work."""

    def __init__(self, device: torch.device, elapsed: float = 0.0, train_time: float = 0.0) -> None:
        self.device, self.elapsed, self.train_time = device, float(elapsed), float(train_time)
        self.start()

    def start(self) -> None:
        """Count from now on (training starts or continues)."""
        self._t0 = self._mark = time.perf_counter()
        self._elapsed0, self._paused = self.elapsed, 0.0

    def tick(self) -> float:
        """Bring ``elapsed`` up to date; return the ``time.perf_counter()`` reading."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.elapsed = self._elapsed0 + (now - self._t0)
        return now

    def lap(self) -> float:
        """End the training window opened by the previous lap: add its training seconds to ``train_time``
        and return them."""
        now = self.tick()
        window = max(now - self._mark - self._paused, 1e-9)
        self.train_time += window
        self._mark, self._paused = now, 0.0
        return window

    @contextlib.contextmanager
    def paused(self):
        """Time spent in the block is not training time (``elapsed`` is brought up to date on entry)."""
        t = self.tick()
        try:
            yield
        finally:
            self._paused += time.perf_counter() - t
