"""What a run directory says about its run, read from its files only (no model, no dataset): the
summary ``lenet runs`` lists and ``lenet plot`` names.

:func:`read_run` never raises for a damaged run: bad JSON, a missing file or an unreadable checkpoint
goes into :attr:`RunInfo.problems` and the status ``damaged``. Status:

- ``finished``: the run wrote its ``end`` (or, before that row existed, ``test``) metrics row;
- ``running``: another process is writing it (:func:`is_running`);
- ``interrupted``: neither (Ctrl-C, a kill, a crash); ``lenet train --resume RUN`` continues it;
- ``damaged``: something is wrong with its files (see ``problems``).
"""

from __future__ import annotations

import os
import statistics
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lenetlab.errors import LenetlabError, first_line
from lenetlab.fileio import read_json
from lenetlab.train.config import config_types
from lenetlab.train.rundir import BEST, CONFIG, LAST, METRICS, lock_holder, read_metrics

MARKERS = (CONFIG, METRICS, LAST, BEST)


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


def is_running(run_dir: str | os.PathLike) -> bool:
    """Whether a lenet process is training in ``run_dir`` now: it holds the run directory's lock
    (:func:`lenetlab.train.rundir.lock_holder`; a killed process's stale lock does not count)."""
    return lock_holder(run_dir) is not None


def looks_like_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding any of a run's files (config, metrics, checkpoints)."""
    path = Path(path)
    return path.is_dir() and any((path / m).exists() for m in MARKERS)


def _checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a readable checkpoint, or None. Cheap: reads the zip directory only
    (torch.save writes a zip archive; a truncated or foreign file has no valid directory)."""
    try:
        with zipfile.ZipFile(path) as z:
            z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        return f"{path.name}: unreadable ({first_line(e, 80)})"
    return None


def read_run(run_dir: str | os.PathLike, now: float | None = None) -> RunInfo:
    """Summarise the run in ``run_dir`` from its files (never raises for a damaged run)."""
    run_dir = Path(run_dir)
    info = RunInfo(path=run_dir, name=run_dir.name, status="interrupted")
    problems = info.problems
    files = [run_dir / m for m in MARKERS if (run_dir / m).exists()]
    info.modified = max((f.stat().st_mtime for f in files), default=0.0)
    config: dict = {}
    if (run_dir / CONFIG).is_file():
        try:
            config = read_json(run_dir / CONFIG, config_types())
        except LenetlabError as e:
            problems.append(str(e).replace(str(run_dir / CONFIG), CONFIG))
            config = {}
    else:
        problems.append(f"no {CONFIG}")
    info.model, info.dataset = config.get("model"), config.get("dataset")
    info.max_epochs = config.get("epochs") if isinstance(config.get("epochs"), int) else None
    try:
        rows = read_metrics(run_dir)
    except LenetlabError as e:
        problems.append(str(e).replace(str(run_dir / METRICS), METRICS))
        rows = []
    _from_rows(info, rows)
    finished = any(r.get("kind") in ("end", "test") for r in rows)
    for name in (LAST, BEST):
        if (run_dir / name).is_file():
            bad = _checkpoint_problem(run_dir / name)
            if bad:
                problems.append(bad)
    if not (run_dir / LAST).is_file():
        problems.append(f"no {LAST}")
    if finished and not (run_dir / BEST).is_file():
        problems.append(f"no {BEST}")
    if is_running(run_dir):
        info.status = "running"
        info.problems = [p for p in problems if not p.startswith("no ")]  # files not written yet
        if info.problems:
            info.status = "damaged"
    elif problems:
        info.status = "damaged"
    elif finished:
        info.status = "finished"
    return info


def _from_rows(info: RunInfo, rows: list[dict]) -> None:
    """Fill the progress and figures of ``info`` from metrics ``rows``."""
    def num(r: dict, key: str):
        v = r.get(key)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    epochs = [num(r, "epoch") for r in rows if num(r, "epoch") is not None]
    steps = [num(r, "step") for r in rows if num(r, "step") is not None]
    info.epochs = round(max(epochs), 2) if epochs else 0.0
    info.steps = int(max(steps)) if steps else 0
    best = [r for r in rows if r.get("kind") == "dev" and r.get("best") and num(r, "accuracy") is not None]
    info.best_dev = best[-1]["accuracy"] if best else None
    tests = [r for r in rows if r.get("kind") == "test" and num(r, "accuracy") is not None]
    info.test = tests[-1]["accuracy"] if tests else None
    times = [num(r, "train_time") for r in rows if num(r, "train_time") is not None]
    info.train_time = max(times) if times else None
    speeds = [num(r, "examples_per_sec") for r in rows if r.get("kind") == "train" and num(r, "examples_per_sec")]
    info.examples_per_sec = statistics.median(speeds) if speeds else None
    ends = [r for r in rows if r.get("kind") == "end"]
    info.reason = ends[-1].get("reason") if ends else None


def find_runs(root: str | os.PathLike = "runs", now: float | None = None) -> list[RunInfo]:
    """Every run directory directly inside ``root`` (or ``root`` itself when it is one), summarised,
    in name order. A missing ``root`` is a one-line :class:`LenetlabError`."""
    root = Path(root)
    if not root.is_dir():
        raise LenetlabError(f"{root}: no such folder of runs (train one with lenet train, or name the folder "
                            "holding your run directories)")
    if looks_like_run(root):
        return [read_run(root, now)]
    return [read_run(p, now) for p in sorted(root.iterdir()) if looks_like_run(p)]
