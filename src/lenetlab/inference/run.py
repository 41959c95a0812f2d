"""A run directory read from its files (layout: ``docs/runs.md``): :class:`Run`, the one reader of runs for
every command; :mod:`lenetlab.train.rundir` writes them. In ``inference``, so that serving needs no training code.
"""

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
#: The JSON types of the ``config.json`` fields a reader of runs uses: another type makes the run damaged.
CONFIG_TYPES = {
    **dict.fromkeys(("model", "dataset", "normalize", "resize"), (str,)),
    **dict.fromkeys(("data_dir", "image_column", "label_column", "id_column"), (str, type(None))),
    **dict.fromkeys(("epochs", "digit_width"), (int,)),
    **dict.fromkeys(("val_size", "image_size", "num_threads"), (int, type(None))),
}


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The rows of a ``metrics.jsonl`` file (or of ``RUN_DIR/metrics.jsonl``), ``[]`` when there is none;
    a torn last line is skipped, a damaged file is a one-line LenetlabError."""
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
    """The PID of the process holding ``run_dir``'s lock (0 when it wrote none yet), or None when none
    holds it (no ``.lock``, or a stale one left by a killed process)."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None  # we could lock it: nobody holds it
        return read_pid(fd) or 0
    except OSError as e:
        return (read_pid(fd) or 0) if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else None
    finally:
        os.close(fd)


def checkpoint_path(source: str | os.PathLike) -> Path:
    """The checkpoint file ``source`` names: a run directory's :attr:`Run.checkpoint`, the folder of the
    shipped weights of a registered name (``lenet5``) when no such file exists here, else ``source``."""
    source = Path(source)
    if not source.exists() and str(source) in PRETRAINED:
        return pretrained_dir(str(source))
    return (Run(source).checkpoint if Run.is_run(source) else None) or source


def measured_test_accuracy(path: str | os.PathLike, ckpt: dict) -> float | None:
    """The test accuracy measured for the checkpoint at ``path`` (loaded as ``ckpt``): its run's, or what
    an exported folder's config records; None when neither says."""
    path = Path(path)
    run = Run.of(path) if path.is_file() else None
    accuracy = run.test_accuracy(path.name) if run else (ckpt.get("pretrained") or {}).get("test_accuracy")
    return float(accuracy) if _is_number(accuracy) else None


def load_data(
    description: dict, dataset: str | None = None, data_dir: str | None = None, *, download: bool = False
) -> data.Splits:
    """The splits a run was trained on, from its :func:`~lenetlab.models.checkpoint.data_description`;
    ``dataset`` replaces its dataset (and drops its data folder), ``data_dir`` its data folder."""
    own = description.get("dataset")
    name = dataset or own
    if not name:
        raise LenetlabError("the checkpoint does not name its dataset; pass --dataset")
    if data_dir is None and name == own:
        data_dir = description.get("data_dir")
    keys = ("image_size", "image_column", "label_column", "id_column")
    opts = {k: description[k] for k in keys if description.get(k) is not None}
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


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _values(rows: list[dict], key: str, kind: str | None = None) -> list[float]:
    return [r[key] for r in rows if kind in (None, r.get("kind")) and _is_number(r.get(key))]


class Run:
    """The run in folder ``path``, read from its files when asked (``config`` and ``rows`` are cached)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.name = self.path.name

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @staticmethod
    def is_run(path: str | os.PathLike) -> bool:
        """Whether ``path`` is a folder holding any of a run's files (config, metrics, checkpoints)."""
        path = Path(path)
        return path.is_dir() and any((path / m).exists() for m in MARKERS)

    @classmethod
    def of(cls, source: str | os.PathLike) -> "Run | None":
        """The run ``source`` is (a run directory) or belongs to (a checkpoint file inside one), or None."""
        source = Path(source)
        if cls.is_run(source):
            return cls(source)
        return cls(source.parent) if source.is_file() and cls.is_run(source.parent) else None

    @classmethod
    def find(cls, name: str | os.PathLike, root: str | os.PathLike = "runs") -> "Run":
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
    def all(cls, root: str | os.PathLike = "runs") -> "list[Run]":
        """Every run directory directly inside ``root`` (or ``root`` itself when it is one), in name order."""
        root = Path(root)
        if not root.is_dir():
            raise LenetlabError(
                f"{root}: no such folder of runs (train one with lenet train, or name the folder "
                "holding your run directories)"
            )
        if cls.is_run(root):
            return [cls(root)]
        return [cls(p) for p in sorted(root.iterdir()) if cls.is_run(p)]

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
        """The config, and what is wrong with ``config.json`` (None when nothing): strict JSON, an object,
        the fields of :data:`CONFIG_TYPES` of their types."""
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
        """Whether a lenet process trains in this run now (holds its lock; a stale lock does not count)."""
        return lock_holder(self.path) is not None

    def _scored(self, kind: str) -> list[dict]:
        """The metrics rows of ``kind`` with an accuracy; ``[]`` when the file is damaged."""
        try:
            return [r for r in self.rows if r.get("kind") == kind and _is_number(r.get("accuracy"))]
        except LenetlabError:
            return []

    def test_accuracy(self, checkpoint: str | None = None) -> float | None:
        """The last test accuracy in the run's metrics (``checkpoint``: measured on that file, ``best.pt``
        or ``last.pt``); None when there is none."""
        tests = [r for r in self._scored("test") if checkpoint in (None, r.get("checkpoint", BEST))]
        return tests[-1]["accuracy"] if tests else None

    def best_dev(self) -> float | None:
        """The dev accuracy of the best model: the last ``dev`` row marked ``best`` (the one that saved
        ``best.pt``, whatever ``--monitor`` chose it by); None when there is none."""
        best = [r for r in self._scored("dev") if r.get("best")]
        return best[-1]["accuracy"] if best else None

    def info(self) -> RunInfo:
        """The run summarised from its files; never raises. Status: ``finished`` (an ``end`` or ``test`` row),
        ``running`` (a process holds its lock), ``interrupted`` (neither) or ``damaged`` (see ``problems``)."""
        config, bad = self.read_config()
        problems = [bad] if bad else []
        try:
            rows = self.rows
        except LenetlabError as e:
            problems.append(str(e).replace(str(self.path / METRICS), METRICS))
            rows = []
        finished = any(r.get("kind") in ("end", "test") for r in rows)
        problems += [p for p in map(_checkpoint_problem, self.checkpoints) if p]
        # a finished run needs only the model it kept (best.pt); an unfinished one, last.pt to resume from
        needed = BEST if finished else LAST
        if not (self.path / needed).is_file():
            problems.append(f"no {needed}")
        running = self.running
        if running:
            problems = [p for p in problems if not p.startswith("no ")]  # files not written yet
        epochs, steps, times = _values(rows, "epoch"), _values(rows, "step"), _values(rows, "train_time")
        speeds = [v for v in _values(rows, "examples_per_sec", "train") if v]
        ends = [r for r in rows if r.get("kind") == "end"]
        files = [self.path / m for m in MARKERS if (self.path / m).exists()]
        return RunInfo(
            path=self.path,
            name=self.name,
            status="damaged" if problems else "running" if running else "finished" if finished else "interrupted",
            model=config.get("model"),
            dataset=config.get("dataset"),
            epochs=round(max(epochs), 2) if epochs else 0.0,
            max_epochs=config.get("epochs"),
            steps=int(max(steps)) if steps else 0,
            best_dev=self.best_dev(),
            test=self.test_accuracy(),
            train_time=max(times) if times else None,
            examples_per_sec=statistics.median(speeds) if speeds else None,
            reason=ends[-1].get("reason") if ends else None,
            modified=max((f.stat().st_mtime for f in files), default=0.0),
            problems=problems,
        )


def _checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a readable checkpoint, or None; reads only the zip directory (torch.save
    writes a zip archive: a truncated or foreign file has none)."""
    try:
        with zipfile.ZipFile(path) as z:
            z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        return f"{path.name}: unreadable ({first_line(e, 80)})"
    return None
