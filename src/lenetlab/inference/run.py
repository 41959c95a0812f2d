"""A run directory, read from its files: :class:`Run` (the read side; ``lenetlab.train.rundir`` writes).

Layout (``runs/<name>/``): ``config.json``, ``metrics.jsonl`` (one JSON object per line, kinds ``train``,
``epoch``, ``dev``, ``test``, ``end``: see :mod:`lenetlab.train.rundir`), ``metrics.csv`` and TensorBoard
files, ``best.pt`` (the model that scored best on the dev split), ``last.pt`` (the full training state)
and ``plots/*.png``; while a process trains in it, ``.lock``.

Every command that reads a run goes through :class:`Run`: which checkpoint it uses (``best.pt``, else
``last.pt``), its metrics, its status, its best dev and test accuracy and the data it was trained on
(:meth:`Run.data`, the checkpoint's data description, see
:func:`lenetlab.models.checkpoint.data_description`; :func:`load_data` builds the splits from it). A
damaged run never raises here: :meth:`Run.info` lists its problems. Status:

- ``finished``: the run wrote its ``end`` (or, before that row existed, ``test``) metrics row;
- ``running``: another process is writing it (it holds the run's lock);
- ``interrupted``: neither (Ctrl-C, a kill, a crash); ``lenet train --resume RUN`` continues it;
- ``damaged``: something is wrong with its files (see ``problems``).

It lives in ``inference`` (not ``train``) so that serving reads runs without training code.
"""

from __future__ import annotations

import errno
import os
import statistics
import zipfile
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from lenetlab import data
from lenetlab.errors import LenetlabError, first_line
from lenetlab.fileio import read_json, read_jsonl
from lenetlab.models.checkpoint import data_description
from lenetlab.models.pretrained import PRETRAINED, pretrained_dir

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock only records the PID there
    fcntl = None

CONFIG, METRICS, BEST, LAST, PLOTS, LOCK = "config.json", "metrics.jsonl", "best.pt", "last.pt", "plots", ".lock"
#: The files that make a folder a run directory.
MARKERS = (CONFIG, METRICS, LAST, BEST)
_NAME, _COUNT = (str, type(None)), (int, type(None))
#: The JSON types of the ``config.json`` fields a reader of runs uses (a RunConfig as a dict; the training
#: side checks every field when it loads one): a field of another type makes the run ``damaged``.
CONFIG_TYPES = {
    "model": (str,),
    "dataset": (str,),
    "data_dir": _NAME,
    "epochs": (int,),
    "val_size": _COUNT,
    "image_size": _COUNT,
    "image_column": _NAME,
    "label_column": _NAME,
    "id_column": _NAME,
    "normalize": (str,),
    "resize": (str,),
    "digit_width": (int,),
    "num_threads": _COUNT,
}


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """Rows of a ``metrics.jsonl`` file (or of ``RUN_DIR/metrics.jsonl``); ``[]`` when there is none yet.
    A torn last line (a crash mid-write) is skipped; a damaged file is a one-line LenetlabError."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS
    return read_jsonl(path) if path.is_file() else []


def read_pid(fd: int) -> int | None:
    """The PID written in the open lock file ``fd``, or None."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def lock_holder(run_dir: str | os.PathLike) -> int | None:
    """The PID of the process holding ``run_dir``'s lock (0 when it wrote none yet), or None when no
    process holds it (no ``.lock``, or a stale one left by a killed process)."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        if fcntl is None:
            return read_pid(fd) or 0
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return read_pid(fd) or 0
            return None
        return None  # we could lock it: nobody holds it
    finally:
        os.close(fd)


def checkpoint_path(source: str | os.PathLike) -> Path:
    """The checkpoint file ``source`` names: for a run directory its :attr:`Run.checkpoint` (``best.pt``,
    else ``last.pt``); for a registered name with shipped weights and no such file here (``lenet5``) the
    folder of those weights; otherwise ``source`` itself (a file or an exported model folder)."""
    source = Path(source)
    if not source.exists() and str(source) in PRETRAINED:
        return pretrained_dir(str(source))
    found = Run(source).checkpoint if Run.is_run(source) else None
    return found or source


def measured_test_accuracy(path: str | os.PathLike, ckpt: dict) -> float | None:
    """The test accuracy measured for the checkpoint at ``path`` (already loaded as ``ckpt``): its run's
    (:meth:`Run.test_accuracy` of that file), or what an exported folder's ``config.json`` records; None
    when neither says."""
    path = Path(path)
    run = Run.of(path) if path.is_file() else None
    accuracy = run.test_accuracy(path.name) if run else (ckpt.get("pretrained") or {}).get("test_accuracy")
    return float(accuracy) if isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool) else None


def load_data(
    description: dict, dataset: str | None = None, data_dir: str | None = None, *, download: bool = False
) -> data.Splits:
    """The splits a run was trained on, from its data description (what
    :func:`lenetlab.models.checkpoint.data_description` returns): the same dataset, dev split (size and
    seed), image size and CSV columns.

    ``dataset`` replaces the description's (its dev size, seed, image size and columns still apply;
    its data folder only when it names the same dataset); ``data_dir`` replaces its data folder."""
    own = description.get("dataset")
    name = dataset or own
    if not name:
        raise LenetlabError("the checkpoint does not name its dataset; pass --dataset")
    if data_dir is None and name == own:
        data_dir = description.get("data_dir")
    opts = {
        k: description[k]
        for k in ("image_size", "image_column", "label_column", "id_column")
        if description.get(k) is not None
    }
    if description.get("dev_size") is not None:
        opts["val_size"] = description["dev_size"]
    return data.load(name, data_dir=data_dir, seed=int(description.get("split_seed") or 0), download=download, **opts)


@dataclass
class RunInfo:
    """One run directory, summarised from its files (``to_dict`` is what ``lenet runs --json`` prints)."""

    path: Path
    name: str
    status: str  # finished | running | interrupted | damaged
    model: str | None = None
    dataset: str | None = None
    epochs: float | None = None  # progress in epochs (fractional when it stopped mid-epoch)
    max_epochs: int | None = None
    steps: int | None = None
    best_dev: float | None = None  # dev accuracy of the best model (best.pt)
    test: float | None = None  # test accuracy of the best model
    train_time: float | None = None  # seconds spent in training steps
    examples_per_sec: float | None = None  # median over the logged training windows
    reason: str | None = None  # why a finished run stopped: completed | early_stop | max_steps | stopped
    modified: float = 0.0  # newest modification time of its files (seconds since the epoch)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return {**asdict(self), "path": str(self.path)}


def _num(r: dict, key: str):
    v = r.get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class Run:
    """The run in folder ``path``, read from its files; nothing is read until asked.

    ``config`` and ``rows`` are cached on first use. :meth:`info` never raises for a damaged run."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.name = self.path.name

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # ------------------------------------------------------------------ finding runs
    @staticmethod
    def is_run(path: str | os.PathLike) -> bool:
        """Whether ``path`` is a folder holding any of a run's files (config, metrics, checkpoints)."""
        path = Path(path)
        return path.is_dir() and any((path / m).exists() for m in MARKERS)

    @classmethod
    def of(cls, source: str | os.PathLike) -> Run | None:
        """The run ``source`` is (a run directory) or belongs to (a checkpoint file inside one); None otherwise."""
        source = Path(source)
        if cls.is_run(source):
            return cls(source)
        if source.is_file() and cls.is_run(source.parent):
            return cls(source.parent)
        return None

    @classmethod
    def find(cls, name: str | os.PathLike, root: str | os.PathLike = "runs") -> Run:
        """The run directory ``name`` (a path, or a run name inside ``root``); a one-line error if neither."""
        path = Path(name)
        for candidate in (path, Path(root) / path):
            if cls.is_run(candidate):
                return cls(candidate)
        raise LenetlabError(
            f"{name}: not a run directory (no config.json, metrics.jsonl or checkpoint in it"
            f"{'' if path.is_absolute() else f', nor in {Path(root) / path}'})"
        )

    @classmethod
    def all(cls, root: str | os.PathLike = "runs") -> list[Run]:
        """Every run directory directly inside ``root`` (or ``root`` itself when it is one), in name order.
        A missing ``root`` is a one-line :class:`LenetlabError`."""
        root = Path(root)
        if not root.is_dir():
            raise LenetlabError(
                f"{root}: no such folder of runs (train one with lenet train, or name the folder "
                "holding your run directories)"
            )
        if cls.is_run(root):
            return [cls(root)]
        return [cls(p) for p in sorted(root.iterdir()) if cls.is_run(p)]

    # ------------------------------------------------------------------ files
    @property
    def checkpoints(self) -> list[Path]:
        """The run's checkpoint files in the order a command prefers them: ``best.pt``, then ``last.pt``."""
        return [self.path / n for n in (BEST, LAST) if (self.path / n).is_file()]

    @property
    def checkpoint(self) -> Path | None:
        """The checkpoint a command uses: ``best.pt``, else ``last.pt``; None when there is neither."""
        return next(iter(self.checkpoints), None)

    @cached_property
    def config(self) -> dict:
        """The run's saved config (``config.json``); ``{}`` when it is missing or unreadable."""
        return self.read_config()[0]

    def read_config(self) -> tuple[dict, str | None]:
        """The config and what is wrong with ``config.json`` (None when nothing): strict JSON, an object,
        the fields a reader uses (:data:`CONFIG_TYPES`) of their types."""
        if not (self.path / CONFIG).is_file():
            return {}, f"no {CONFIG}"
        try:
            return read_json(self.path / CONFIG, CONFIG_TYPES), None
        except LenetlabError as e:
            return {}, str(e).replace(str(self.path / CONFIG), CONFIG)

    @cached_property
    def rows(self) -> list[dict]:
        """The rows of ``metrics.jsonl`` (``[]`` before the first); a damaged file is a LenetlabError."""
        return read_metrics(self.path)

    @property
    def data(self) -> dict:
        """The data the run was trained on (its data description, from ``config.json``)."""
        return data_description(self.config)

    @property
    def running(self) -> bool:
        """Whether a lenet process is training in this run now (holds its lock; a stale lock does not count)."""
        return lock_holder(self.path) is not None

    # ------------------------------------------------------------------ figures
    def test_accuracy(self, checkpoint: str | None = None) -> float | None:
        """The test accuracy in the run's metrics (the last ``test`` row; ``checkpoint``: only a row that
        measured that file, ``best.pt`` or ``last.pt``); None when it was not measured or the file is damaged."""
        try:
            rows = self.rows
        except LenetlabError:
            return None
        tests = [
            r
            for r in rows
            if r.get("kind") == "test"
            and _num(r, "accuracy") is not None
            and (checkpoint is None or r.get("checkpoint", BEST) == checkpoint)
        ]
        return tests[-1]["accuracy"] if tests else None

    def best_dev(self) -> float | None:
        """The dev accuracy of the best model: the last ``dev`` row marked ``best`` (the row that saved
        ``best.pt``, whatever ``--monitor`` chose it by); None when there is none."""
        try:
            rows = self.rows
        except LenetlabError:
            return None
        best = [r for r in rows if r.get("kind") == "dev" and r.get("best") and _num(r, "accuracy") is not None]
        return best[-1]["accuracy"] if best else None

    def info(self) -> RunInfo:
        """The run summarised from its files, with its status (never raises for a damaged run)."""
        path = self.path
        info = RunInfo(path=path, name=self.name, status="interrupted")
        files = [path / m for m in MARKERS if (path / m).exists()]
        info.modified = max((f.stat().st_mtime for f in files), default=0.0)
        config, bad = self.read_config()
        problems = [bad] if bad else []
        info.model, info.dataset = config.get("model"), config.get("dataset")
        info.max_epochs = config.get("epochs") if isinstance(config.get("epochs"), int) else None
        try:
            rows = self.rows
        except LenetlabError as e:
            problems.append(str(e).replace(str(path / METRICS), METRICS))
            rows = []
        self._figures(info, rows)
        finished = any(r.get("kind") in ("end", "test") for r in rows)
        problems += [p for p in (_checkpoint_problem(path / n) for n in (LAST, BEST) if (path / n).is_file()) if p]
        # a finished run needs only the model it kept (best.pt); an unfinished one, last.pt to resume from
        needed = BEST if finished else LAST
        if not (path / needed).is_file():
            problems.append(f"no {needed}")
        if self.running:
            info.status = "running"
            problems = [p for p in problems if not p.startswith("no ")]  # files not written yet
            if problems:
                info.status = "damaged"
        elif problems:
            info.status = "damaged"
        elif finished:
            info.status = "finished"
        info.problems = problems
        return info

    def _figures(self, info: RunInfo, rows: list[dict]) -> None:
        """Fill the progress and figures of ``info`` from metrics ``rows``."""
        epochs = [_num(r, "epoch") for r in rows if _num(r, "epoch") is not None]
        steps = [_num(r, "step") for r in rows if _num(r, "step") is not None]
        info.epochs = round(max(epochs), 2) if epochs else 0.0
        info.steps = int(max(steps)) if steps else 0
        info.best_dev, info.test = self.best_dev(), self.test_accuracy()
        times = [_num(r, "train_time") for r in rows if _num(r, "train_time") is not None]
        info.train_time = max(times) if times else None
        speeds = [_num(r, "examples_per_sec") for r in rows if r.get("kind") == "train" and _num(r, "examples_per_sec")]
        info.examples_per_sec = statistics.median(speeds) if speeds else None
        ends = [r for r in rows if r.get("kind") == "end"]
        info.reason = ends[-1].get("reason") if ends else None


def _checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a readable checkpoint, or None. Cheap: reads the zip directory only
    (torch.save writes a zip archive; a truncated or foreign file has no valid directory)."""
    try:
        with zipfile.ZipFile(path) as z:
            z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        return f"{path.name}: unreadable ({first_line(e, 80)})"
    return None
