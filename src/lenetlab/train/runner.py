"""The training runner: NNDL's ``RunnerV3`` / d2l's ``train_ch6``, fast, resumable, self-documenting.

Data stay on the device; losses and accuracies are read back only at log steps, evaluations and
checkpoints. ``last.pt`` stores the position inside the epoch (whose shuffle is seeded by ``(seed,
epoch)``), so a resumed run continues exactly. Faults (Ctrl-C, SIGTERM, run lock, full disk):
docs/faults.md.
"""

import signal
from pathlib import Path

import torch

from lenetlab.device import autocast_dtype, select_device, set_threads
from lenetlab.errors import CheckpointError, ConfigError, DiskFullError, LenetlabError, first_line
from lenetlab.inference.evaluate import EvalResult, evaluate_sharded, model_loss
from lenetlab.inference.run import BEST, CONFIG, LAST
from lenetlab.models.checkpoint import load_checkpoint, save_checkpoint
from lenetlab.signals import StopRequest
from lenetlab.textfmt import quiet
from lenetlab.train import rundir
from lenetlab.train.config import RunConfig, save_config
from lenetlab.train.dist import SingleProcess
from lenetlab.train.loggers import RunLogs
from lenetlab.train.optim import build_optimizer, build_scheduler, check_optimizer_state
from lenetlab.train.rng import rng_state, seed_everything, set_rng_state
from lenetlab.train.rundir import RunResult, stdout_say
from lenetlab.train.sdlm import SDLM, gauss_newton_diagonal
from lenetlab.train.setup import build_spec, init_model, load_splits, train_loader
from lenetlab.train.state import Clock, TrainState
from lenetlab.train.step import make_scaler, train_step

#: The fields ``--resume`` may change: they do not alter the trajectory.
RESUME_SAFE = (
    "progress",
    "plots",
    "num_threads",
    "device",
    "data_dir",
    "log_steps",
    "save_every",
    "download",
    "tensorboard",
)


class Runner:
    """Train one model per :class:`RunConfig` into ``runs/<name>/`` (see :mod:`.rundir`).

    :meth:`run` trains, evaluates on dev every ``eval_steps`` (or epoch), keeps the best model on
    ``cfg.monitor`` in ``best.pt``, stops at ``max_steps`` or when ``patience`` runs out, tests the best
    model and returns a :class:`RunResult`; :meth:`resume` continues a run from its ``last.pt``.
    ``callbacks``: ``cb(event, runner, row)`` per metrics row (``event``: ``train|epoch|dev|test|end``;
    setting ``runner.stop = True`` ends training). ``splits`` skips loading ``cfg.dataset``; ``dist``
    is the process group (:class:`~lenetlab.train.dist.SingleProcess` by default); ``say(text,
    err=False)`` shows progress lines (default: stdout, stderr with ``err``).

    Its parts: :attr:`state` (:class:`~lenetlab.train.state.TrainState`), :attr:`clock`
    (:class:`~lenetlab.train.state.Clock`), the loop (:meth:`train`), :attr:`interrupt` (Ctrl-C and
    SIGTERM stop at the next step boundary) and the checkpoints (:meth:`save_last`).
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        splits=None,
        callbacks=(),
        dist=None,
        overwrite: bool = False,
        say=stdout_say,
        _resume_dir: Path | None = None,
    ) -> None:
        self.cfg = cfg = config.validate()
        self.dist = dist or SingleProcess()
        self.say = say
        self.callbacks = list(callbacks)
        self.stop = False
        self.interrupt = StopRequest()
        set_threads(cfg.num_threads)
        self.device = select_device(cfg.device)
        self.amp = autocast_dtype(self.device, cfg.amp)
        self.splits = splits if splits is not None else load_splits(cfg, self.dist)
        self.spec = build_spec(cfg, self.splits)
        seed_everything(cfg.seed, cfg.deterministic)
        self._build_model()
        self._build_loader()
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
        self.scaler = make_scaler(self.device, self.amp)
        self.state, self.clock = TrainState(), Clock(self.device)
        self.history: list[dict] = []  # every metrics row, in order (RunnerV3's loss/score lists)
        self._meters = torch.zeros(2, 3, dtype=torch.float64, device=self.device)  # window/epoch: loss, correct, n
        self._bad = torch.full((), -1, dtype=torch.int64, device=self.device)  # first non-finite step
        self._saved_step = None
        self._lock = self.run_dir = self.metrics = None  # rank 0 holds the run directory's lock until run() ends
        self._open_run_dir(overwrite, _resume_dir)

    # ------------------------------------------------------------------ construction
    def _build_model(self) -> None:
        """The model (initialised, on the device), its training wrapper (DDP, compiled) and its loss."""
        cfg = self.cfg
        model, self.model_kwargs = init_model(cfg, self.splits, self.spec, self.say if self.dist.is_main else quiet)
        self.model = model.to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if cfg.sync_bn and self.dist.world_size > 1:  # BatchNorm statistics over the global batch
            self.model = self.dist.sync_batchnorm(self.model, self.device)
        self.train_model = self.dist.wrap_model(self.model, self.device)
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)
        self.criterion = model_loss(self.model, cfg.label_smoothing)

    def _build_loader(self) -> None:
        """This rank's shuffled training loader and the number of steps it makes."""
        cfg, world = self.cfg, self.dist.world_size
        if cfg.batch_size % world:
            raise LenetlabError(f"field 'batch_size': {cfg.batch_size} is not divisible by {world} processes")
        self.loader = train_loader(cfg, self.splits, self.spec, self.device, self.dist.rank, world)
        self.steps_per_epoch = len(self.loader)
        if self.steps_per_epoch == 0:
            raise LenetlabError(
                f"field 'batch_size': {cfg.batch_size} leaves no training batch "
                f"({len(self.splits.train)} examples, drop_last={cfg.drop_last})"
            )
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps:
            self.total_steps = min(self.total_steps, cfg.max_steps)

    def _open_run_dir(self, overwrite: bool, resume_dir: Path | None) -> None:
        """Create (or, resuming, lock and restore) the run directory; its logs. A failure releases the lock."""
        main = self.dist.is_main
        try:
            if resume_dir is None:
                if main:
                    self._lock = rundir.new_run_dir(self.cfg.out_dir, self.cfg.name, self.cfg.model, overwrite)
                self.run_dir = Path(self.dist.broadcast_object(str(self._lock.run_dir) if main else None))
            else:
                self.run_dir = Path(resume_dir)
                if main:
                    self._lock = rundir.RunLock(self.run_dir).acquire()
            self.metrics = RunLogs(self.run_dir, enabled=main, tensorboard=self.cfg.tensorboard, say=self.say)
            if resume_dir is None and main:
                save_config(self.cfg, self.run_dir / CONFIG)
            elif resume_dir is not None:
                last = self.run_dir / LAST
                self._load_resume(load_checkpoint(last, map_location=self.device, training=True), last)
        except DiskFullError as e:
            self.close()
            raise self._with_advice(e) from None
        except BaseException:
            self.close()
            raise

    @classmethod
    def resume(
        cls, run_dir: str | Path, *, splits=None, callbacks=(), dist=None, say=stdout_say, **overrides
    ) -> "Runner":
        """A Runner continuing ``run_dir`` from its ``last.pt`` with the saved config; ``overrides`` may
        change only the fields of :data:`RESUME_SAFE` (anything else is a ConfigError)."""
        run_dir = Path(run_dir)
        cfg = rundir.resume_config(run_dir)
        for key, value in overrides.items():
            if key not in RESUME_SAFE and getattr(cfg, key) != value:
                raise ConfigError(
                    f"--resume: field {key!r} cannot change when resuming (saved {getattr(cfg, key)!r}, "
                    f"given {value!r})"
                )
        return cls(
            cfg.replace(**overrides), splits=splits, callbacks=callbacks, dist=dist, say=say, _resume_dir=run_dir
        )

    @property
    def step(self) -> int:
        """Optimiser steps taken so far."""
        return self.state.step

    @property
    def train_time(self) -> float:
        """Seconds of training so far (see :class:`~lenetlab.train.state.Clock`)."""
        return self.clock.train_time

    # ------------------------------------------------------------------ run
    def run(self) -> RunResult:
        """Train (or continue), test the best model (keeping its predictions when the config asks for
        plots), write the ``end`` row and release the run directory's lock; return the :class:`RunResult`."""
        st, clock = self.state, self.clock
        try:
            self.train()
            test = self.test()
            self._emit(self._row("end", st.step, reason=self.stop_reason(), best_step=st.best_step))
            self.metrics.end()
        except DiskFullError as e:
            raise self._with_advice(e) from None
        finally:
            self.close()
        paths = (self.run_dir, self.run_dir / BEST, self.run_dir / LAST)
        return RunResult(*paths, st.best_accuracy, st.best_step, test, st.step, clock.elapsed, clock.train_time)

    def close(self) -> None:
        """Close the logs and release the run directory's lock (idempotent; :meth:`run` calls it)."""
        if self.metrics is not None:
            self.metrics.close()
        if self._lock is not None:
            self._lock.release()

    def _with_advice(self, e: DiskFullError) -> DiskFullError:
        """``e`` with what to do next: resume from the intact ``last.pt`` once there is space again."""
        if self.run_dir is None:
            return e
        last = self.run_dir / LAST
        nxt = (
            f"free some space, then resume with: {self.resume_command()}"
            if last.is_file()
            else "free some space and start again"
        )
        return DiskFullError(f"{e}; {nxt}")

    def resume_command(self) -> str:
        """The command that continues this run from its ``last.pt`` (with as many processes)."""
        nproc = f"--nproc {self.dist.world_size} " if self.dist.world_size > 1 else ""
        return f"lenet train {nproc}--resume {self.run_dir}"

    def stop_reason(self) -> str:
        """Why training ended: ``max_steps``, ``early_stop`` (patience used up), ``completed`` (every
        epoch) or ``stopped`` (a callback, or not finished yet)."""
        return self.state.stop_reason(self.cfg) or "stopped"

    def _done(self) -> bool:
        """Whether training is over: every epoch ran, ``max_steps`` reached, ``patience`` used up, or a
        callback set ``stop``. Read from saved state, so a resumed run that had stopped stays stopped."""
        return self.stop or self.state.stop_reason(self.cfg) is not None

    # ------------------------------------------------------------------ the loop
    def train(self) -> None:
        """Run the remaining epochs. Ctrl-C (SIGTERM) saves ``last.pt`` at the next step boundary and raises
        KeyboardInterrupt (:class:`~lenetlab.errors.Terminated`, a KeyboardInterrupt with exit status 143)."""
        self._progress = rundir.Progress(
            self.cfg.progress, self.total_steps, self.state.step, enabled=self.dist.is_main, say=self.say
        )
        self.interrupt.signum = 0
        self.metrics.open(self.cfg.to_dict())  # TensorBoard starts with the training (once per Runner)
        self.clock.start()
        try:
            with self.interrupt.installed():
                if self._saved_step is None:
                    self.save_last()  # a good checkpoint exists from step 0 on
                while not self._done():
                    self._train_epoch()
                    if self._stop_requested():
                        self._on_interrupt()
                if self._best_needs_eval():
                    self._eval_dev()
                    self.save_last()
        finally:
            self._progress.close()

    def _train_epoch(self) -> None:
        """Train from the current position to the end of its epoch, or to an earlier stop (a signal,
        ``max_steps``, patience, a callback); evaluating, logging and saving as the config asks."""
        cfg, st = self.cfg, self.state
        self.loader.set_epoch(st.epoch, start_batch=st.batch)
        if st.batch == 0 and isinstance(self.optimizer, SDLM):
            self._estimate_curvature()
        self.train_model.train()
        for xb, yb in self.loader:
            self._train_step(xb, yb)
            st.batch += 1
            st.step += 1
            self._progress.update()
            end = st.batch == self.steps_per_epoch
            if st.step % cfg.log_steps == 0 or end or (cfg.max_steps and st.step >= cfg.max_steps):
                self._log()
            if end:
                break
            if cfg.eval_steps and st.step % cfg.eval_steps == 0:
                self._eval_dev()
                self.save_last()
            elif cfg.save_every and st.step % cfg.save_every == 0:
                self.save_last()
            if self._stop_requested() or self._done():
                break
        if st.batch == self.steps_per_epoch:
            self._end_epoch()

    def _train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """One :func:`~lenetlab.train.step.train_step` and the scheduler's step; the loss and accuracy are
        added to the meters on the device (no host synchronisation)."""
        if self.cfg.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        loss, out = train_step(
            self.train_model,
            self.optimizer,
            xb,
            yb,
            self.criterion,
            self.scaler,
            amp=self.amp,
            grad_clip=self.cfg.grad_clip,
        )
        self.scheduler.step()
        loss, n = loss.double(), yb.shape[0]
        correct = (out.argmax(dim=1) == yb).sum().double()
        self._meters += torch.stack((loss * n, correct, torch.full_like(loss, n)))
        self._bad.masked_fill_(~torch.isfinite(loss) & (self._bad < 0), self.state.step + 1)

    def _estimate_curvature(self) -> None:
        """SDLM: re-estimate the diagonal Hessian on the first ``sdlm_samples`` examples of this epoch's
        order (augmented as trained), averaged over the processes."""
        xb, _ = self.loader.batch(self.loader.indices()[: self.cfg.sdlm_samples])
        h = gauss_newton_diagonal(self.model, xb)
        if self.dist.world_size > 1:
            flat = self.dist.all_reduce_sum(torch.cat([v.flatten() for v in h.values()])) / self.dist.world_size
            h = dict(zip(h, flat.split([v.numel() for v in h.values()])))
            h = {p: v.view_as(p) for p, v in h.items()}
        self.optimizer.set_curvature(h)

    def _check_finite(self) -> None:
        bad = int(self._bad.item())
        if bad >= 0:
            last = f"{self.run_dir / LAST} (step {self._saved_step})" if self._saved_step is not None else "none"
            raise LenetlabError(
                f"non-finite training loss at step {bad} (epoch {(bad - 1) // self.steps_per_epoch + 1}): "
                f"run stopped; try a lower --lr (now {self.cfg.lr:g}) or --grad-clip; "
                f"last good checkpoint: {last}"
            )

    def _drain(self, i: int) -> tuple[float, float, float]:
        """Mean loss, accuracy and example count of meter ``i`` (0: the log window, 1: the epoch) over
        the ranks; the meter starts again from zero."""
        loss, correct, n = self.dist.all_reduce_sum(self._meters[i].clone()).tolist()
        self._meters[i].zero_()
        return loss / max(n, 1), correct / max(n, 1), n

    def _log(self) -> None:
        self._check_finite()
        loss, accuracy, n = self._drain(0)
        window = self.clock.lap()
        lr = self.scheduler.get_last_lr()[0]
        row = self._row("train", self.state.step, loss=loss, accuracy=accuracy, lr=lr, examples_per_sec=n / window)
        self._progress.train_row(row, self.cfg.epochs)
        self._emit(row)

    def _end_epoch(self) -> None:
        st = self.state
        loss, accuracy, _ = self._drain(1)
        self._emit(self._row("epoch", st.step, st.epoch + 1, loss=loss, accuracy=accuracy))
        if not self.cfg.eval_steps or st.epoch + 1 == self.cfg.epochs:
            self._eval_dev()
        st.epoch, st.batch = st.epoch + 1, 0
        self.save_last()

    # ------------------------------------------------------------------ evaluation
    def _best_needs_eval(self) -> bool:
        """After an early stop the last weights have not been evaluated on dev yet."""
        last_dev = next((r for r in reversed(self.history) if r["kind"] == "dev"), None)
        return self.state.step > 0 and (last_dev is None or last_dev["step"] != self.state.step)

    def _eval_dev(self) -> None:
        """Evaluate on dev, keep the best model (``best.pt``) and count evaluations without improvement."""
        self._check_finite()
        st, monitor = self.state, self.cfg.monitor
        with self.clock.paused():
            model = self.dist.unwrap(self.model)
            if len(self.splits.dev) == 0:  # no dev split: the last model is the best one
                st.best_step, st.best_state = st.step, _cpu_state(model)
                self._save_best(None, None)
                return
            res = self._evaluate(model, self.splits.dev)
            self.train_model.train()
            best = st.judge(res.loss if monitor == "dev_loss" else res.accuracy, monitor)
            if best:
                st.best_accuracy, st.best_step, st.best_state = res.accuracy, st.step, _cpu_state(model)
                self._save_best(res.accuracy, res.loss)
        self.clock.tick()
        row = self._row("dev", st.step, train_time=False, loss=res.loss, accuracy=res.accuracy, best=best)
        self._progress.message(
            f"[dev] step {st.step} epoch {row['epoch']:.2f} loss {res.loss:.4f} "
            f"acc {res.accuracy:.4f}" + (" (best)" if best else "")
        )
        self._emit(row)
        if self.cfg.patience and st.bad_evals == self.cfg.patience:
            what = "accuracy" if monitor == "dev_acc" else "loss"
            self._progress.message(
                f"[early stop] dev {what} has not improved for {st.bad_evals} evaluations: "
                f"stopping at step {st.step} (best model: step {st.best_step})"
            )

    def _evaluate(self, model, split, **kwargs) -> EvalResult:
        """:func:`evaluate_sharded` of ``model`` on ``split`` over this run's processes."""
        return evaluate_sharded(
            model,
            split,
            self.spec,
            self.device,
            self.dist.rank,
            self.dist.world_size,
            self.dist.all_reduce_sum,
            self.cfg.eval_batch_size,
            autocast=self.amp,
            channels_last=self.cfg.channels_last,
            **kwargs,
        )

    def test(self) -> EvalResult | None:
        """Evaluate the best model (on dev) on the test split; writes the ``test`` row. Leaves the
        best weights in ``self.model``."""
        st = self.state
        if st.best_state is not None:
            self.model.load_state_dict(st.best_state)
        if len(self.splits.test) == 0 or self.splits.test.y is None:
            return None
        res = self._evaluate(
            self.model, self.splits.test, class_names=self.splits.class_names, keep_predictions=self.cfg.plots
        )
        fields = {"loss": res.loss, "accuracy": res.accuracy, "n": res.n, "per_class": res.per_class}
        self._emit(self._row("test", st.best_step, train_time=False, **fields, checkpoint=BEST))
        return res

    def _row(self, kind: str, step: int, epoch: float | None = None, train_time: bool = True, **fields) -> dict:
        """A metrics row: ``kind``, ``step``, ``epoch`` (default: ``step`` in epochs), ``fields``, the
        clock's ``time`` and (``train_time``) ``train_time``."""
        epoch = step / self.steps_per_epoch if epoch is None else epoch
        row = {"kind": kind, "step": step, "epoch": epoch, **fields, "time": self.clock.elapsed}
        return {**row, "train_time": self.clock.train_time} if train_time else row

    def _emit(self, row: dict) -> None:
        with self.clock.paused():  # callbacks (a test-set check, say) are not training
            self.history.append(row)
            self.metrics.write(row)
            for cb in self.callbacks:
                cb(row["kind"], self, row)
            if self.callbacks and row["kind"] not in ("test", "end"):
                self.train_model.train()  # a callback may have evaluated the model

    # ------------------------------------------------------------------ interrupts
    def _stop_requested(self) -> bool:
        """Whether a signal asked to stop (:attr:`interrupt`). Every rank must stop at the same step (the
        others would wait in the next all-reduce), so the requests are summed over the ranks at every
        step boundary, on the CPU (gloo: the GPU is not synchronised)."""
        signum = self.interrupt.signum
        if self.dist.world_size == 1:
            return bool(signum)
        flags = torch.tensor([signum == signal.SIGINT, signum == signal.SIGTERM], dtype=torch.int32)
        sigint, sigterm = self.dist.all_reduce_sum(flags).tolist()
        if sigterm or sigint:
            self.interrupt.signum = signal.SIGTERM if sigterm else signal.SIGINT
        return bool(sigterm or sigint)

    def _on_interrupt(self) -> None:
        """Save ``last.pt`` at the current step and raise KeyboardInterrupt (SIGINT) or
        :class:`~lenetlab.errors.Terminated` (SIGTERM) with resume advice."""
        self.save_last()  # every rank is here at the same step (see _stop_requested)
        if self.dist.is_main:
            self._progress.close()
            self.say(
                f"{'terminated (SIGTERM)' if self.interrupt.terminated else 'interrupted'} at step "
                f"{self.state.step}: saved {self.run_dir / LAST}; resume with: {self.resume_command()}",
                err=True,
            )
        self.interrupt.raise_()

    # ------------------------------------------------------------------ checkpoints
    def _payload(self, state: dict) -> dict:
        return {
            "model": {"name": self.cfg.model, "kwargs": dict(self.model_kwargs)},
            "state_dict": state,
            "class_names": list(self.splits.class_names),
            "input_spec": self.spec.to_dict(),
            "config": self.cfg.to_dict(),
            "dataset": self.splits.name,
        }

    def _save_best(self, accuracy, loss) -> None:
        st = self.state
        if self.dist.is_main:
            save_checkpoint(
                self.run_dir / BEST,
                {
                    **self._payload(st.best_state),
                    "step": st.step,
                    "epoch": st.step / self.steps_per_epoch,
                    "dev_accuracy": accuracy,
                    "dev_loss": loss,
                },
            )

    def save_last(self) -> Path:
        """Write ``last.pt``: everything needed to continue exactly from here (the meters summed over ranks)."""
        self._check_finite()
        path = self.run_dir / LAST
        with self.clock.paused():
            meters = self.dist.all_reduce_sum(self._meters.clone())
            if self.dist.is_main:
                save_checkpoint(
                    path,
                    {
                        **self._payload(_cpu_state(self.dist.unwrap(self.model))),
                        **self.state.to_checkpoint(),
                        "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict(),
                        "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                        "rng": rng_state(),
                        "meters": meters.cpu(),
                        "elapsed": self.clock.elapsed,
                        "train_time": self.clock.train_time,
                    },
                )
            self._saved_step = self.state.step
        return path

    def _load_resume(self, ck: dict, path: Path) -> None:
        """Restore the training state of ``last.pt``; weights that do not fit the model or a position that
        does not fit the epochs is a one-line CheckpointError naming the file and the field."""
        self.state = TrainState.from_checkpoint(ck, path, self.steps_per_epoch, self.cfg.epochs)
        shapes = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        for field in ("state_dict", "best_state_dict"):
            state = ck.get(field)
            if (state is not None or field == "state_dict") and {k: tuple(v.shape) for k, v in state.items()} != shapes:
                raise CheckpointError(f"{path}: field {field!r} does not fit the run's model {self.cfg.model!r}")
        check_optimizer_state(ck["optimizer"], self.optimizer, path)
        for field, load in (
            ("state_dict", self.model.load_state_dict),
            ("optimizer", self.optimizer.load_state_dict),
            ("scheduler", self.scheduler.load_state_dict),
            ("rng", set_rng_state),
        ):
            try:
                load(ck[field])
            except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
                raise CheckpointError(f"{path}: field {field!r} cannot be restored ({first_line(e, 120)})") from None
        if self.scaler.is_enabled() and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        self._meters = ck["meters"].to(self.device) if self.dist.is_main else torch.zeros_like(self._meters)  # summed
        self.clock = Clock(self.device, ck["elapsed"], ck["train_time"])
        # rows written after this checkpoint (and a finished run's test row) are written again
        rows = self.metrics.truncate_after(self.state.step, drop_kinds=("test", "end")) if self.dist.is_main else []
        self.history = self.dist.broadcast_object(rows)  # every rank needs them (_best_needs_eval)
        self._saved_step = self.state.step


def _cpu_state(model) -> dict:
    """A detached CPU copy of ``model``'s state dict."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
