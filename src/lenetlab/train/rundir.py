"""Writing a run directory (``runs/<name>/``): its lock and the live progress display
(:class:`lenetlab.inference.run.Run` reads it, and owns the file names).

Layout: ``config.json``, ``metrics.jsonl``, ``metrics.csv`` and TensorBoard files (the same rows, see
:mod:`lenetlab.train.loggers`), ``best.pt``, ``last.pt``, ``plots/*.png`` and, while a process trains
in it, ``.lock``. The rows of ``metrics.jsonl`` (``kind``: the keys that follow it):

- ``train``: step, epoch, loss, accuracy (means over the ``log_steps`` window), lr, examples_per_sec, time, train_time;
- ``epoch``: step, epoch, loss, accuracy (means over the epoch), time, train_time;
- ``dev``: step, epoch, loss, accuracy, best, time (each evaluation);
- ``test``: step, epoch, loss, accuracy, n, per_class, checkpoint, time (once, with the best model);
- ``end``: step, epoch, reason (completed, early_stop, max_steps or stopped), best_step, time, train_time.
"""

import errno
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from lenetlab.errors import ConfigError
from lenetlab.fileio import write_error
from lenetlab.inference.evaluate import EvalResult
from lenetlab.inference.run import CONFIG, LAST, LOCK, METRICS, read_pid
from lenetlab.models.checkpoint import load_checkpoint
from lenetlab.train.config import RunConfig, load_config_file

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock only records the PID there
    fcntl = None


class RunLock:
    """An exclusive ``flock`` on ``RUN_DIR/.lock`` (which holds the holder's PID), so two processes never
    train into the same files. The kernel drops it when its process ends, even by SIGKILL.
    :meth:`acquire` never waits: a held lock is a one-line ConfigError naming the holder's PID."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> "RunLock":
        """Take the lock (creating ``.lock``) or raise ConfigError naming the process that holds it."""
        for _ in range(10):  # retried only when a releasing holder removed the file under us
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                err = write_error(e, self.path)
                raise (err or ConfigError(f"{self.path}: cannot create the run lock ({e.strerror or e})")) from None
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    pid = read_pid(fd)
                    os.close(fd)
                    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise ConfigError(f"{self.path}: cannot lock the run directory ({e.strerror or e})") from None
                    who = f"PID {pid}" if pid else "another process"
                    raise ConfigError(
                        f"run directory {self.run_dir} is in use by another lenet process ({who}); "
                        f"wait for it to end or stop it{f' (kill {pid})' if pid else ''}"
                    ) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            try:  # the PID is for the message a second process prints; a full disk must not stop the run
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            except OSError:
                pass
            self._fd = fd
            return self
        raise ConfigError(f"{self.path}: could not take the run lock (the file kept being replaced)")

    def release(self) -> None:
        """Remove ``.lock`` and drop the lock (nothing when not held): an acquirer that opened the
        removed file notices and retries on the new one."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:
            pass


def check_unlocked(run_dir: str | Path) -> None:
    """Raise the one-line ConfigError of :meth:`RunLock.acquire` if a process holds ``run_dir``'s lock."""
    if Path(run_dir).is_dir():
        RunLock(run_dir).acquire().release()


def _contents(path: Path) -> list[Path]:
    """The entries of ``path`` other than its lock file."""
    return [p for p in path.iterdir() if p.name != LOCK]


def refuse_existing(path: Path) -> None:
    """A ConfigError if ``path`` is a non-empty folder: a run directory is never reused silently."""
    if path.exists() and _contents(path):
        raise ConfigError(
            f"run directory {path} already exists: continue it with --resume {path}, "
            "replace it with --overwrite, or choose another --name"
        )


def resume_config(run_dir: str | Path) -> RunConfig:
    """The saved config of the run in ``run_dir``, from its ``last.pt`` (a complete training state)."""
    run_dir = Path(run_dir)
    if not (run_dir / LAST).is_file():
        raise ConfigError(f"--resume {run_dir}: no {LAST} in it (not a run directory, or it never saved)")
    return RunConfig.from_dict(load_checkpoint(run_dir / LAST, training=True)["config"], source=str(run_dir / LAST))


def plan_run(config_file=None, resume=None, overrides: dict | None = None) -> tuple[RunConfig, Path | None]:
    """The config a ``lenet train`` invocation will run and its run directory (None when it gets a
    timestamped name at start): from ``resume``'s saved config, else ``config_file`` plus ``overrides``."""
    if resume is not None:
        if config_file is not None:
            raise ConfigError("--config and --resume cannot be combined: a resumed run keeps its saved config")
        return resume_config(resume), Path(resume)
    base = load_config_file(config_file).to_dict() if config_file is not None else {}
    cfg = RunConfig.from_dict({**base, **(overrides or {})}, source=str(config_file or "command line"))
    return cfg, (Path(cfg.out_dir) / cfg.name if cfg.name else None)


def new_run_dir(out_dir: str | Path, name: str | None, model: str, overwrite: bool = False) -> RunLock:
    """Create ``out_dir/name`` (default name ``MODEL-YYYYmmdd-HHMMSS``) and return the held :class:`RunLock`
    on it. A non-empty run directory is refused (:func:`refuse_existing`) unless ``overwrite`` (which
    empties it, if it looks like a run directory)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if name is None:
            base = f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"
            path, i = out / base, 2
            while True:  # mkdir is atomic: two processes started in the same second get different folders
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    path, i = out / f"{base}-{i}", i + 1
        else:
            path = out / name
            path.mkdir(exist_ok=True)
    except OSError as e:
        err = write_error(e, out / (name or model))
        raise (err or ConfigError(f"--out-dir {out}: cannot create the run directory ({e.strerror or e})")) from None
    lock = RunLock(path).acquire()  # before looking inside: a run in progress is neither reused nor deleted
    try:
        if name is not None and _contents(path):
            if not overwrite:
                refuse_existing(path)
            if not ((path / CONFIG).exists() or (path / METRICS).exists()):
                raise ConfigError(f"--overwrite refused: {path} does not look like a lenetlab run directory")
            for p in _contents(path):  # everything but the lock this process holds
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    except BaseException:
        lock.release()
        raise
    return lock


def stdout_say(text: str, err: bool = False) -> None:
    """The Python API's default ``say``: ``text`` on stdout (stderr with ``err``), around any progress bar."""
    out = sys.stderr if err else sys.stdout
    tqdm.write(text, file=out)
    out.flush()


def _in_jupyter_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (an IPython shell with a kernel), not merely beside
    an imported ipykernel or IPython module."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return getattr(shell, "kernel", None) is not None


class Progress:
    """Live feedback: a tqdm bar (``mode`` ``bar``, or ``auto`` on a terminal or in a Jupyter kernel, where
    it is tqdm's widget with ipywidgets installed), one line per log row through ``say`` (``plain``, or
    ``auto`` elsewhere: a log file never fills with bar redraws), or nothing (``none``)."""

    def __init__(self, mode: str, total: int, initial: int = 0, enabled: bool = True, say=stdout_say) -> None:
        self.say = say
        if mode == "auto":
            mode = "bar" if sys.stdout.isatty() or _in_jupyter_kernel() else "plain"
        self.mode = mode if enabled else "none"
        self.bar = None
        if self.mode == "bar":
            sized = shutil.get_terminal_size((0, 0)).columns > 0  # a pty may report 0 columns
            self.bar = tqdm(
                total=total,
                initial=initial,
                unit="step",
                dynamic_ncols=sized,
                ncols=None if sized else 100,
                nrows=None if sized else 24,
                file=sys.stdout,
            )

    def update(self) -> None:
        """Advance the bar by a step (host-only work: no device sync)."""
        if self.bar is not None:
            self.bar.update()

    def train_row(self, row: dict, epochs: int) -> None:
        """Show a train log row."""
        if self.bar is not None:
            self.bar.set_postfix(
                loss=f"{row['loss']:.4f}",
                acc=f"{row['accuracy']:.3f}",
                ex_s=f"{row['examples_per_sec']:.0f}",
                refresh=False,
            )
            self.bar.set_description(f"epoch {int(row['epoch'] - 1e-9) + 1}/{epochs}", refresh=True)
        elif self.mode == "plain":
            self.say(
                f"[train] epoch {row['epoch']:.2f}/{epochs} step {row['step']} loss {row['loss']:.4f} "
                f"acc {row['accuracy']:.4f} lr {row['lr']:.3g} {row['examples_per_sec']:.0f} ex/s"
            )

    def message(self, text: str) -> None:
        """Show a line (around the bar, if any)."""
        if self.bar is not None:
            with self.bar.external_write_mode(file=sys.stdout):
                self.say(text)
        elif self.mode == "plain":
            self.say(text)

    def close(self) -> None:
        """Close the bar (if any)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@dataclass
class RunResult:
    """What a finished run produced: paths, best dev accuracy and the final test evaluation."""

    run_dir: Path
    best_path: Path
    last_path: Path
    dev_accuracy: float | None
    best_step: int
    test: EvalResult | None
    steps: int
    time: float
    train_time: float
    plots: list = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-safe summary (what ``lenet train --json`` prints)."""
        return {
            "run_dir": str(self.run_dir),
            "best": str(self.best_path),
            "last": str(self.last_path),
            "dev_accuracy": self.dev_accuracy,
            "best_step": self.best_step,
            "test_accuracy": None if self.test is None else self.test.accuracy,
            "test_loss": None if self.test is None else self.test.loss,
            "steps": self.steps,
            "time": round(self.time, 3),
            "train_time": round(self.train_time, 3),
            "plots": [str(p) for p in self.plots],
        }
