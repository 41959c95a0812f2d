"""What a training run carries from step to step and across a resume: its :class:`TrainState`
(position, best model, early-stopping count) and its :class:`Clock` (wall and training time).
Both are saved into ``last.pt`` by the :class:`~lenetlab.train.Runner` and restored from it."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
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
        """The ``last.pt`` fields of this state."""
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "best_accuracy": self.best_accuracy,
            "best_step": self.best_step,
            "best_state_dict": self.best_state,
            "best_score": self.best_score,
            "bad_evals": self.bad_evals,
        }

    @classmethod
    def from_checkpoint(cls, ck: dict, path: Path, steps_per_epoch: int, epochs: int) -> TrainState:
        """The state saved in ``ck`` (a ``last.pt`` read from ``path``); a position that does not fit a run of
        ``epochs`` epochs of ``steps_per_epoch`` steps, or a missing field, is a one-line CheckpointError."""
        try:
            state = cls(
                int(ck["epoch"]),
                int(ck["batch"]),
                int(ck["step"]),
                ck["best_accuracy"],
                int(ck["best_step"]),
                ck["best_state_dict"],
                ck["best_score"],
                int(ck["bad_evals"]),
            )
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


class Clock:
    """A run's two times, carried across resumes: ``elapsed`` (wall seconds since the run started) and
    ``train_time`` (seconds of training: the windows between :meth:`lap` calls, less the evaluations,
    saves and callbacks run inside them within :meth:`paused`). ``device``: CUDA work queued before a
    reading is waited for, so that it is counted."""

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
