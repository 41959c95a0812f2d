"""The training runner: NNDL's ``RunnerV3`` / d2l's ``train_ch6``, fast, resumable, self-documenting.

Data stay resident on the device as ``uint8`` tensors (:class:`~lenetlab.data.loader.TensorLoader`);
losses and accuracies accumulate on the device and are read back only at log steps, evaluations and
checkpoints. The shuffle of epoch ``e`` is seeded by ``(seed, e)`` and ``last.pt`` stores the
position inside the epoch, so a resumed run continues exactly where the saved one stopped.

Faults (docs/faults.md): Ctrl-C (SIGINT) and SIGTERM save ``last.pt`` at the next step boundary, print
the resume command and end the process (exit 130, resp. 143), on every rank of a torchrun job at the
same step; a run directory is locked (:class:`~lenetlab.train.rundir.RunLock`) while a run writes it;
a full disk is one line naming the file, with the resume command.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lenetlab.data.loader import TensorLoader
from lenetlab.device import autocast_dtype, select_device, set_threads
from lenetlab.errors import CheckpointError, ConfigError, DiskFullError, LenetlabError, Terminated, first_line
from lenetlab.inference.evaluate import EvalResult, evaluate_sharded
from lenetlab.models import create
from lenetlab.models.checkpoint import load_checkpoint, save_checkpoint
from lenetlab.models.init import init_weights
from lenetlab.train import rundir
from lenetlab.train.config import RunConfig, save_config
from lenetlab.train.dist import SingleProcess
from lenetlab.train.loggers import RunLogs
from lenetlab.train.optim import build_optimizer, build_scheduler, check_optimizer_state
from lenetlab.train.rng import rng_state, seed_everything, set_rng_state
from lenetlab.train.rundir import RunResult
from lenetlab.train.sdlm import SDLM, gauss_newton_diagonal
from lenetlab.train.setup import augment_transform, build_spec, load_splits


class Runner:
    """Train one model per :class:`RunConfig`, writing ``runs/<name>/`` (see :mod:`.rundir`).

    ``Runner(cfg).run()`` trains, evaluates on dev every ``eval_steps`` (or epoch), keeps the best
    model on ``cfg.monitor`` (dev accuracy or dev loss; ``last``: the final one), stops early after ``cfg.patience`` evaluations
    without improvement or after ``cfg.max_steps`` steps, tests the best model and returns a
    :class:`RunResult` (``lenet train`` then draws the plots). Rows go to ``metrics.jsonl``,
    ``metrics.csv`` and TensorBoard through :class:`~lenetlab.train.loggers.RunLogs` (``runner.metrics``).
    ``Runner.resume(run_dir)`` continues a saved run from ``last.pt``. ``callbacks`` are callables
    ``cb(event, runner, row)`` with ``event`` in ``train|epoch|dev|test|end`` (``row`` is the metrics row);
    setting ``runner.stop = True`` from one ends training early (the best model is still tested).
    ``splits`` (a :class:`~lenetlab.data.splits.Splits`) skips loading ``cfg.dataset``; ``dist`` is
    the process-group context (:class:`~lenetlab.train.dist.SingleProcess` by default).
    """

    def __init__(self, config: RunConfig, *, splits=None, callbacks=(), dist=None, overwrite: bool = False,
                 _resume_dir: Path | None = None) -> None:
        self.cfg = cfg = config.validate()
        self.dist = dist or SingleProcess()
        self.callbacks = list(callbacks)
        self.stop = False
        set_threads(cfg.num_threads)
        self.device = select_device(cfg.device)
        self.amp = autocast_dtype(self.device, cfg.amp)
        self.splits = splits if splits is not None else load_splits(cfg, self.dist)
        self.spec = build_spec(cfg, self.splits)
        seed_everything(cfg.seed, cfg.deterministic)
        self.model_kwargs = {"num_classes": len(self.splits.class_names), "in_channels": self.spec.channels,
                             **cfg.model_kwargs}
        try:
            model = create(cfg.model, **self.model_kwargs)
        except TypeError as e:
            raise LenetlabError(f"field 'model_kwargs': {cfg.model} does not accept {cfg.model_kwargs} ({e})") from None
        self.model = init_weights(model, cfg.init).to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if cfg.sync_bn and self.dist.world_size > 1:  # BatchNorm statistics over the global batch
            self.model = self.dist.sync_batchnorm(self.model, self.device)
        self.train_model = self.dist.wrap_model(self.model, self.device)
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)
        own_loss = getattr(self.model, "loss", None)
        self.criterion = own_loss if callable(own_loss) else (
            lambda out, y: F.cross_entropy(out, y, label_smoothing=cfg.label_smoothing))
        if cfg.batch_size % self.dist.world_size:
            raise LenetlabError(f"field 'batch_size': {cfg.batch_size} is not divisible by {self.dist.world_size} processes")
        self.loader = TensorLoader(self.splits.train.x, self.splits.train.y, cfg.batch_size // self.dist.world_size,
                                   shuffle=True, seed=cfg.seed, drop_last=cfg.drop_last, device=self.device,
                                   rank=self.dist.rank, world_size=self.dist.world_size,
                                   transform=augment_transform(cfg), spec=self.spec)
        self.steps_per_epoch = len(self.loader)
        if self.steps_per_epoch == 0:
            raise LenetlabError(f"field 'batch_size': {cfg.batch_size} leaves no training batch "
                                f"({len(self.splits.train)} examples, drop_last={cfg.drop_last})")
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
        use_scaler = self.amp is torch.float16 and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        # progress counters: `batch` is the position inside `epoch`; `step` counts optimizer steps
        self.epoch = self.batch = self.step = 0
        self.best_accuracy, self.best_step, self.best_state = None, 0, None
        # early stopping: the best value of cfg.monitor and the evaluations since it last improved
        self.best_score: float | None = None
        self.bad_evals = 0
        self.elapsed = self.train_time = 0.0
        self.history: list[dict] = []  # every metrics row, in order (RunnerV3's loss/score lists)
        self.train_step_losses: list[tuple[int, float]] = []  # (step, loss) of every step
        self._meters = torch.zeros(2, 3, dtype=torch.float64, device=self.device)  # window/epoch: loss, correct, n
        self._bad = torch.full((), -1, dtype=torch.int64, device=self.device)  # first non-finite step
        self._step_losses: list[torch.Tensor] = []
        self._saved_step = None
        self._interrupted = 0  # the signal that asked to stop (SIGINT, SIGTERM), 0 for none
        main = self.dist.is_main
        self._lock, self.run_dir = None, None  # rank 0 holds the run directory's lock from here to the end of run()
        try:
            if _resume_dir is None:
                if main:
                    self._lock = rundir.new_run_dir(cfg.out_dir, cfg.name, cfg.model, overwrite)
                self.run_dir = Path(self.dist.broadcast_object(str(self._lock.run_dir) if main else None))
                self.metrics = RunLogs(self.run_dir, enabled=main, tensorboard=cfg.tensorboard)
                if main:
                    save_config(cfg, self.run_dir / rundir.CONFIG)
            else:
                self.run_dir = Path(_resume_dir)
                if main:
                    self._lock = rundir.RunLock(self.run_dir).acquire()
                self.metrics = RunLogs(self.run_dir, enabled=main, tensorboard=cfg.tensorboard)
                last = self.run_dir / rundir.LAST
                self._load_state(load_checkpoint(last, map_location=self.device, training=True), last)
        except DiskFullError as e:
            self.close()
            raise self._with_advice(e) from None
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def resume(cls, run_dir: str | Path, *, splits=None, callbacks=(), dist=None, **overrides) -> "Runner":
        """A Runner continuing ``run_dir`` from its ``last.pt`` with the saved config.

        ``overrides`` may change only fields that do not alter the trajectory (progress, plots,
        num_threads, device, data_dir, log_steps, save_every); anything else is a ConfigError.
        """
        run_dir = Path(run_dir)
        cfg = rundir.resume_config(run_dir)
        safe = {"progress", "plots", "num_threads", "device", "data_dir", "log_steps", "save_every", "download",
                "tensorboard"}
        for key, value in overrides.items():
            if key not in safe and getattr(cfg, key) != value:
                raise ConfigError(f"--resume: field {key!r} cannot change when resuming (saved {getattr(cfg, key)!r}, "
                                  f"given {value!r})")
        return cls(cfg.replace(**overrides), splits=splits, callbacks=callbacks, dist=dist, _resume_dir=run_dir)

    # ------------------------------------------------------------------ training
    def run(self) -> RunResult:
        """Train (or continue), test the best model; return the :class:`RunResult` (its ``test`` keeps
        the predictions when the config asks for plots, so they can be drawn without evaluating again).
        The last metrics row is ``{"kind": "end", "reason": ...}`` (see :meth:`stop_reason`).
        Releases the run directory's lock when it returns or raises."""
        try:
            self.train()
            test = self.test()
            self._emit({"kind": "end", "step": self.step, "epoch": self.step / self.steps_per_epoch,
                        "reason": self.stop_reason(), "best_step": self.best_step, "time": self.elapsed,
                        "train_time": self.train_time})
            self.metrics.end()
        except DiskFullError as e:
            raise self._with_advice(e) from None
        finally:
            self.close()
        return RunResult(self.run_dir, self.run_dir / rundir.BEST, self.run_dir / rundir.LAST, self.best_accuracy,
                         self.best_step, test, self.step, self.elapsed, self.train_time)

    def close(self) -> None:
        """Close the logs and release the run directory's lock (idempotent; :meth:`run` calls it).
        Another process may then resume or overwrite the run."""
        metrics = getattr(self, "metrics", None)
        if metrics is not None:
            metrics.close()
        if self._lock is not None:
            self._lock.release()

    def _with_advice(self, e: DiskFullError) -> DiskFullError:
        """``e`` with what to do next: resume from the intact ``last.pt`` once there is space again."""
        if getattr(self, "run_dir", None) is None:
            return e
        last = self.run_dir / rundir.LAST
        nxt = (f"free some space, then resume with: {self.resume_command()}" if last.is_file()
               else "free some space and start again")
        return DiskFullError(f"{e}; {nxt}")

    def resume_command(self) -> str:
        """The command that continues this run from its ``last.pt`` (with as many processes)."""
        nproc = f"--nproc {self.dist.world_size} " if self.dist.world_size > 1 else ""
        return f"lenet train {nproc}--resume {self.run_dir}"

    def train(self) -> None:
        """Run the remaining epochs. Ctrl-C (SIGTERM) saves ``last.pt`` at the next step boundary and raises
        KeyboardInterrupt (:class:`~lenetlab.errors.Terminated`, a KeyboardInterrupt with exit status 143)."""
        cfg = self.cfg
        self._progress = rundir.Progress(cfg.progress, self.total_steps, self.step, enabled=self.dist.is_main)
        self._interrupted = 0
        self.metrics.open(cfg.to_dict())  # TensorBoard starts with the training (once per Runner)
        restore = self._install_signals()
        self._t0 = self._tlog = time.perf_counter()
        self._elapsed0, self._excluded = self.elapsed, 0.0  # seconds of eval/saves/callbacks in the window
        try:
            if self._saved_step is None:
                self.save_last()  # a good checkpoint exists from step 0 on
            while not self._done():
                self.loader.set_epoch(self.epoch, start_batch=self.batch)
                if self.batch == 0 and isinstance(self.optimizer, SDLM):
                    self._estimate_curvature()
                self.train_model.train()
                for xb, yb in self.loader:
                    self._train_step(xb, yb)
                    self.batch += 1
                    self.step += 1
                    self._progress.update()
                    end = self.batch == self.steps_per_epoch
                    limit = bool(cfg.max_steps) and self.step >= cfg.max_steps
                    if self.step % cfg.log_steps == 0 or end or limit:
                        self._log()
                    if end:
                        break
                    if cfg.eval_steps and self.step % cfg.eval_steps == 0:
                        self._eval_dev()
                        self.save_last()
                    elif cfg.save_every and self.step % cfg.save_every == 0:
                        self.save_last()
                    if self._stop_requested() or self._done():
                        break
                if self.batch == self.steps_per_epoch:
                    self._end_epoch()
                if self._stop_requested():
                    self._on_interrupt()
            if self._best_needs_eval():
                self._eval_dev()
                self.save_last()
        finally:
            self._progress.close()
            restore()

    def _estimate_curvature(self) -> None:
        """SDLM: re-estimate the diagonal Hessian on the first ``sdlm_samples`` examples of this epoch's
        order (as trained: augmented when the run augments), averaged over the processes so that
        every rank takes the same steps."""
        xb, _ = self.loader.batch(self.loader.indices()[:self.cfg.sdlm_samples])
        h = gauss_newton_diagonal(self.model, xb)
        if self.dist.world_size > 1:
            flat = self.dist.all_reduce_sum(torch.cat([v.flatten() for v in h.values()])) / self.dist.world_size
            h = dict(zip(h, flat.split([v.numel() for v in h.values()])))
            h = {p: v.view_as(p) for p, v in h.items()}
        self.optimizer.set_curvature(h)

    def _done(self) -> bool:
        """Whether training is over: every epoch ran, ``max_steps`` reached, ``patience`` used up, or a
        callback set ``stop``. Read from saved state, so a resumed run that had stopped stays stopped."""
        cfg = self.cfg
        return bool(self.stop or self.epoch >= cfg.epochs or (cfg.max_steps and self.step >= cfg.max_steps)
                    or (cfg.patience and self.bad_evals >= cfg.patience))

    def stop_reason(self) -> str:
        """Why training ended: ``max_steps``, ``early_stop`` (patience used up), ``completed`` (every
        epoch) or ``stopped`` (a callback, or not finished yet)."""
        cfg = self.cfg
        if cfg.max_steps and self.step >= cfg.max_steps:
            return "max_steps"
        if cfg.patience and self.bad_evals >= cfg.patience:
            return "early_stop"
        return "completed" if self.epoch >= cfg.epochs else "stopped"

    def _train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        cfg = self.cfg
        if cfg.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast(self.device.type, dtype=self.amp) if self.amp is not None else contextlib.nullcontext()
        with ctx:
            out = self.train_model(xb)
            loss = self.criterion(out.float(), yb)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if cfg.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
        self.scheduler.step()
        # bookkeeping stays on the device: no host sync here
        loss = loss.detach().double()
        n = yb.shape[0]
        correct = (out.detach().argmax(dim=1) == yb).sum().double()
        self._meters += torch.stack((loss * n, correct, torch.full_like(loss, n)))
        self._bad.masked_fill_(~torch.isfinite(loss) & (self._bad < 0), self.step + 1)
        self._step_losses.append(loss)

    def _check_finite(self) -> None:
        bad = int(self._bad.item())
        if bad >= 0:
            last = f"{self.run_dir / rundir.LAST} (step {self._saved_step})" if self._saved_step is not None else "none"
            raise LenetlabError(f"non-finite training loss at step {bad} (epoch {(bad - 1) // self.steps_per_epoch + 1}): "
                                f"run stopped; try a lower --lr (now {self.cfg.lr:g}) or --grad-clip; "
                                f"last good checkpoint: {last}")

    def _times(self) -> tuple[float, float]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        return now, self._elapsed0 + (now - self._t0)

    def _log(self) -> None:
        self._check_finite()
        first = self.step - len(self._step_losses) + 1
        losses = torch.stack(self._step_losses).tolist() if self._step_losses else []
        self.train_step_losses.extend(zip(range(first, self.step + 1), losses))
        self._step_losses = []
        win = self.dist.all_reduce_sum(self._meters[0].clone()).tolist()
        self._meters[0].zero_()
        now, self.elapsed = self._times()
        window = max(now - self._tlog - self._excluded, 1e-9)
        self.train_time += window
        self._tlog, self._excluded = now, 0.0
        row = {"kind": "train", "step": self.step, "epoch": self.step / self.steps_per_epoch,
               "loss": win[0] / max(win[2], 1), "accuracy": win[1] / max(win[2], 1),
               "lr": self.scheduler.get_last_lr()[0], "examples_per_sec": win[2] / window,
               "time": self.elapsed, "train_time": self.train_time}
        self._progress.train_row(row, self.cfg.epochs)
        self._emit(row)

    def _end_epoch(self) -> None:
        ep = self.dist.all_reduce_sum(self._meters[1].clone()).tolist()
        self._meters[1].zero_()
        row = {"kind": "epoch", "step": self.step, "epoch": self.epoch + 1, "loss": ep[0] / max(ep[2], 1),
               "accuracy": ep[1] / max(ep[2], 1), "time": self.elapsed, "train_time": self.train_time}
        self._emit(row)
        if not self.cfg.eval_steps or self.epoch + 1 == self.cfg.epochs:
            self._eval_dev()
        self.epoch, self.batch = self.epoch + 1, 0
        self.save_last()

    def _best_needs_eval(self) -> bool:
        """After an early stop the last weights have not been evaluated on dev yet."""
        last_dev = next((r for r in reversed(self.history) if r["kind"] == "dev"), None)
        return self.step > 0 and (last_dev is None or last_dev["step"] != self.step)

    def _eval_dev(self) -> None:
        self._check_finite()
        t, _ = self._times()
        model = self.dist.unwrap(self.model)
        if len(self.splits.dev) == 0:  # no dev split: the last model is the best one
            self.best_step, self.best_state = self.step, _cpu_state(model)
            self._save_best(None, None)
            self._excluded += time.perf_counter() - t
            return
        res = self._evaluate(model, self.splits.dev)
        self.train_model.train()
        score = res.loss if self.cfg.monitor == "dev_loss" else res.accuracy
        if self.cfg.monitor == "last" or self.best_score is None:  # last: every evaluation replaces best.pt
            best = True
        else:
            best = score > self.best_score if self.cfg.monitor == "dev_acc" else score < self.best_score
        if best:
            self.best_score, self.bad_evals = score, 0
            self.best_accuracy, self.best_step, self.best_state = res.accuracy, self.step, _cpu_state(model)
            self._save_best(res.accuracy, res.loss)
        else:
            self.bad_evals += 1
        self._excluded += time.perf_counter() - t
        _, self.elapsed = self._times()
        row = {"kind": "dev", "step": self.step, "epoch": self.step / self.steps_per_epoch, "loss": res.loss,
               "accuracy": res.accuracy, "best": best, "time": self.elapsed}
        self._progress.message(f"[dev] step {self.step} epoch {row['epoch']:.2f} loss {res.loss:.4f} "
                               f"acc {res.accuracy:.4f}" + (" (best)" if best else ""))
        self._emit(row)
        if self.cfg.patience and self.bad_evals == self.cfg.patience:
            what = "accuracy" if self.cfg.monitor == "dev_acc" else "loss"
            self._progress.message(f"[early stop] dev {what} has not improved for {self.bad_evals} evaluations: "
                                   f"stopping at step {self.step} (best model: step {self.best_step})")

    def _evaluate(self, model, split, **kwargs) -> EvalResult:
        """:func:`evaluate_sharded` of ``model`` on ``split`` over this run's processes."""
        return evaluate_sharded(model, split, self.spec, self.device, self.dist.rank, self.dist.world_size,
                                self.dist.all_reduce_sum, self.cfg.eval_batch_size, autocast=self.amp,
                                channels_last=self.cfg.channels_last, **kwargs)

    def test(self) -> EvalResult | None:
        """Evaluate the best model (on dev) on the test split; writes the ``test`` row. Leaves the
        best weights in ``self.model``."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        if len(self.splits.test) == 0 or self.splits.test.y is None:
            return None
        res = self._evaluate(self.model, self.splits.test, class_names=self.splits.class_names,
                             keep_predictions=self.cfg.plots)
        row = {"kind": "test", "step": self.best_step, "epoch": self.best_step / self.steps_per_epoch,
               "loss": res.loss, "accuracy": res.accuracy, "n": res.n, "per_class": res.per_class,
               "checkpoint": rundir.BEST, "time": self.elapsed}
        self._emit(row)
        return res

    def _emit(self, row: dict) -> None:
        t = time.perf_counter()
        self.history.append(row)
        self.metrics.write(row)
        for cb in self.callbacks:
            cb(row["kind"], self, row)
        if self.callbacks and row["kind"] not in ("test", "end"):
            self.train_model.train()  # a callback may have evaluated the model
        self._excluded += time.perf_counter() - t  # callbacks (a test-set check, say) are not training

    # ------------------------------------------------------------------ interrupts
    def _install_signals(self):
        """Catch Ctrl-C (SIGINT) and SIGTERM: the first one asks to stop at the next step boundary, a
        second one stops at once. Returns the function restoring the previous handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum, frame):
            if self._interrupted:  # a second signal: stop at once
                raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
            self._interrupted = signum

        for s in previous:
            signal.signal(s, handler)

        def restore():
            for s, h in previous.items():
                signal.signal(s, h)
        return restore

    def _stop_requested(self) -> bool:
        """Whether a signal asked to stop. With several processes every rank must stop at the same step
        (a rank that stops while the others enter the next step's gradient all-reduce would leave them
        waiting, and rank 0 could not save): the flags are summed over the ranks at every step boundary,
        on the CPU (gloo), so the GPU is not synchronised."""
        if self.dist.world_size == 1:
            return bool(self._interrupted)
        flags = torch.tensor([self._interrupted == signal.SIGINT, self._interrupted == signal.SIGTERM],
                             dtype=torch.int32)
        sigint, sigterm = self.dist.all_reduce_sum(flags).tolist()
        if sigterm or sigint:
            self._interrupted = signal.SIGTERM if sigterm else signal.SIGINT
        return bool(sigterm or sigint)

    def _on_interrupt(self) -> None:
        """Save ``last.pt`` at the current step and raise KeyboardInterrupt (SIGINT) or
        :class:`~lenetlab.errors.Terminated` (SIGTERM) with resume advice."""
        self.save_last()  # every rank is here at the same step (see _stop_requested)
        term = self._interrupted == signal.SIGTERM
        if self.dist.is_main:
            self._progress.close()
            print(f"{'terminated (SIGTERM)' if term else 'interrupted'} at step {self.step}: saved "
                  f"{self.run_dir / rundir.LAST}; resume with: {self.resume_command()}", file=sys.stderr, flush=True)
        raise Terminated if term else KeyboardInterrupt

    # ------------------------------------------------------------------ checkpoints
    def _payload(self, state: dict) -> dict:
        return {"model": {"name": self.cfg.model, "kwargs": dict(self.model_kwargs)}, "state_dict": state,
                "class_names": list(self.splits.class_names), "input_spec": self.spec.to_dict(),
                "config": self.cfg.to_dict(), "dataset": self.splits.name}

    def _save_best(self, accuracy, loss) -> None:
        if self.dist.is_main:
            save_checkpoint(self.run_dir / rundir.BEST, {**self._payload(self.best_state), "step": self.step,
                                                         "epoch": self.step / self.steps_per_epoch,
                                                         "dev_accuracy": accuracy, "dev_loss": loss})

    def save_last(self, synced: bool = True) -> Path:
        """Write ``last.pt``: everything needed to continue exactly from here (``synced``: sum meters over ranks)."""
        self._check_finite()
        t, self.elapsed = self._times()
        path = self.run_dir / rundir.LAST
        meters = self.dist.all_reduce_sum(self._meters.clone()) if synced else self._meters
        if self.dist.is_main:
            save_checkpoint(path, {
                **self._payload(_cpu_state(self.dist.unwrap(self.model))),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "rng": rng_state(), "epoch": self.epoch, "batch": self.batch, "step": self.step,
                "best_accuracy": self.best_accuracy, "best_step": self.best_step, "best_state_dict": self.best_state,
                "best_score": self.best_score, "bad_evals": self.bad_evals,
                "meters": meters.cpu(), "elapsed": self.elapsed, "train_time": self.train_time,
            })
        self._saved_step = self.step
        self._excluded += time.perf_counter() - t
        return path

    def _load_state(self, ck: dict, path: Path) -> None:
        """Restore the training state of ``last.pt`` (already checked by ``load_checkpoint(training=True)``);
        what only this run can tell (the weights fit its model, the position fits its epochs) is a one-line
        CheckpointError naming the file and the field."""
        spe, epochs = self.steps_per_epoch, self.cfg.epochs
        epoch, batch, step = ck["epoch"], ck["batch"], ck["step"]
        if batch >= spe or step != epoch * spe + batch or epoch > epochs or (epoch == epochs and batch):
            raise CheckpointError(f"{path}: fields 'epoch', 'batch', 'step' ({epoch}, {batch}, {step}) do not fit "
                                  f"this run ({epochs} epochs of {spe} steps)")
        model_state = self.model.state_dict()
        for field in ("state_dict", "best_state_dict"):
            state = ck.get(field)
            if state is None and field == "best_state_dict":
                continue
            if {k: tuple(v.shape) for k, v in state.items()} != {k: tuple(v.shape) for k, v in model_state.items()}:
                raise CheckpointError(f"{path}: field {field!r} does not fit the run's model {self.cfg.model!r}")
        check_optimizer_state(ck["optimizer"], self.optimizer, path)
        for field, load in (("state_dict", self.model.load_state_dict), ("optimizer", self.optimizer.load_state_dict),
                            ("scheduler", self.scheduler.load_state_dict), ("rng", set_rng_state)):
            try:
                load(ck[field])
            except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
                raise CheckpointError(f"{path}: field {field!r} cannot be restored ({first_line(e, 120)})") from None
        if self.scaler is not None and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        self.epoch, self.batch, self.step = int(ck["epoch"]), int(ck["batch"]), int(ck["step"])
        self.best_accuracy, self.best_step, self.best_state = ck["best_accuracy"], int(ck["best_step"]), ck["best_state_dict"]
        # checkpoints written before early stopping existed chose the best model on dev accuracy
        self.best_score, self.bad_evals = ck.get("best_score", ck["best_accuracy"]), int(ck.get("bad_evals", 0))
        self._meters = ck["meters"].to(self.device) if self.dist.is_main else torch.zeros_like(self._meters)  # summed
        self.elapsed, self.train_time = float(ck["elapsed"]), float(ck["train_time"])
        # rows written after this checkpoint (and a finished run's test row) are written again
        rows = self.metrics.truncate_after(self.step, drop_kinds=("test", "end")) if self.dist.is_main else []
        self.history = self.dist.broadcast_object(rows)  # every rank needs them (_best_needs_eval)
        self._saved_step = self.step


def _cpu_state(model) -> dict:
    """A detached CPU copy of ``model``'s state dict."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
