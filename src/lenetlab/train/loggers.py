"""A run's logs, all written from the same metrics rows (:mod:`lenetlab.train.rundir` lists them), so
they always agree: ``metrics.jsonl`` (the record), ``metrics.csv`` (flat: lists and dicts become
``key.0``... columns; rewritten whole when a column appears or a resume drops rows) and TensorBoard
event files (the scalars of :data:`SCALARS` and ``dev/best_accuracy`` against the step, the config,
the HParams tab and the plots; optional: ``pip install "lenetlab[tensorboard]"``). Only the main
process writes (``enabled``).
"""

import csv
import io
from pathlib import Path

import numpy as np

from lenetlab.data.images import open_image
from lenetlab.errors import first_line, missing_extra
from lenetlab.fileio import append_text, atomic_path, dumps
from lenetlab.inference.run import METRICS, read_metrics
from lenetlab.train.rundir import stdout_say

CSV = "metrics.csv"
#: The TensorBoard scalars of each row kind: tag -> row key.
SCALARS = {
    "train": {
        "train/loss": "loss",
        "train/accuracy": "accuracy",
        "train/lr": "lr",
        "train/examples_per_sec": "examples_per_sec",
    },
    "epoch": {"epoch/train_loss": "loss", "epoch/train_accuracy": "accuracy"},
    "dev": {"dev/loss": "loss", "dev/accuracy": "accuracy"},
    "test": {"test/loss": "loss", "test/accuracy": "accuracy"},
}
#: The metrics of TensorBoard's HParams tab (scalar tags written by this module).
HPARAM_METRICS = ("test/accuracy", "test/loss", "dev/best_accuracy")
_warned = False


def flatten(row: dict, prefix: str = "") -> dict:
    """``row`` with nested lists/dicts spread into ``key.0``/``key.name`` entries (one CSV column each)."""
    flat: dict = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (list, tuple)):
            flat.update(flatten({str(i): v for i, v in enumerate(value)}, name + "."))
        else:
            flat[name] = value
    return flat


def _columns(flat_rows: list[dict]) -> list[str]:
    """The union of the rows' keys, in first-seen order."""
    columns: dict = {}
    for r in flat_rows:
        columns.update(dict.fromkeys(r))
    return list(columns)


def csv_text(rows: list[dict]) -> str:
    """``rows`` as CSV text: a header with the union of their flattened keys (first-seen order), one
    line per row, empty cells where a row lacks a column."""
    flat = [flatten(r) for r in rows]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(flat), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()


class CsvLog:
    """``metrics.csv``: the rows of ``metrics.jsonl``, flat, one per line (see :func:`csv_text`)."""

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path, self.enabled = Path(path), enabled
        self.rows: list[dict] = []
        self.header: list[str] = []

    def rebuild(self, rows: list[dict]) -> None:
        """Rewrite the whole file (atomically) from ``rows``."""
        self.rows = list(rows)
        self.header = _columns([flatten(r) for r in self.rows])
        if self.enabled:
            with atomic_path(self.path) as tmp:
                tmp.write_text(csv_text(self.rows), encoding="utf-8")

    def write(self, row: dict) -> None:
        """Append one row; a row bringing a new column rewrites the file with the wider header."""
        flat = flatten(row)
        if not self.rows or not set(self.header).issuperset(flat):
            self.rebuild([*self.rows, row])
            return
        self.rows.append(row)
        if self.enabled:
            with self.path.open("a", encoding="utf-8", newline="") as f:
                csv.DictWriter(f, fieldnames=self.header, lineterminator="\n").writerow(flat)


def summary_writer_class(say=stdout_say):
    """``torch.utils.tensorboard.SummaryWriter``, or None (after saying so in one line, once per
    process) when the tensorboard package is missing or its import fails in any other way."""
    global _warned
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional extra: lenetlab[tensorboard]
        from torch.utils.tensorboard.summary import hparams  # noqa: F401  (used by RunLogs)
    except Exception as e:  # missing, or an install broken in any other way: training goes on without it
        if not _warned:
            why = (
                missing_extra(e, "tensorboard", "writing them")
                if isinstance(e, ImportError)
                else f"importing tensorboard failed ({type(e).__name__}: {first_line(e, 100)})"
            )
            say(f"TensorBoard logs skipped: {why}; metrics.jsonl and metrics.csv are written as usual", err=True)
            _warned = True
        return None
    return SummaryWriter


def _hparam_value(value):
    """A config value as TensorBoard's HParams tab accepts it (numbers, strings and booleans)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return dumps(value, indent=None)


class RunLogs:
    """Every log of one run directory, fed the same rows: ``metrics.jsonl``, ``metrics.csv``, TensorBoard.

    The Runner calls :meth:`truncate_after` when it resumes, :meth:`open` when training starts,
    :meth:`write` per row, :meth:`end` and :meth:`close` at the end; ``lenet train`` adds the plots with
    :meth:`add_figures`. ``say`` shows the line about a missing tensorboard package.
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True, tensorboard: bool = True, say=stdout_say) -> None:
        self.run_dir, self.enabled, self.say = Path(run_dir), enabled, say
        self.path = self.run_dir / METRICS
        self.csv = CsvLog(self.run_dir / CSV, enabled=enabled)
        self.tensorboard = enabled and tensorboard
        self.writer = None
        self.last_step = 0
        self.best_dev: float | None = None
        self._kept: list[dict] = []
        self._start = 0
        self._opened = False

    def _writer(self, **kw) -> bool:
        """Open the TensorBoard writer unless it is open, off or missing; whether one is open."""
        if self.writer is None and self.tensorboard:
            cls = summary_writer_class(self.say)
            self.tensorboard = cls is not None
            if cls is not None:
                self.writer = cls(log_dir=str(self.run_dir), flush_secs=10, **kw)
        return self.writer is not None

    def open(self, config: dict) -> None:
        """Start TensorBoard (once): a fresh run writes its config and hyper-parameters; a resumed one
        purges the events from its checkpoint's step on and writes the kept rows of that step again."""
        if self._opened:
            return
        self._opened = True
        step = self._start
        for row in self._kept:  # the state a resumed run continues from
            self._track(row)
        if not self._writer(purge_step=step if step > 0 else None):
            return
        if step == 0:
            from torch.utils.tensorboard.summary import hparams  # optional extra: lenetlab[tensorboard]

            text = dumps(config)
            self.writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)  # a Markdown code block
            exp, ssi, _ = hparams({k: _hparam_value(v) for k, v in config.items()}, dict.fromkeys(HPARAM_METRICS, 0.0))
            self.writer.file_writer.add_summary(exp)
            self.writer.file_writer.add_summary(ssi)
        for row in self._kept:
            if row.get("step") == step:
                self._scalars(row)
        self.writer.flush()

    def _track(self, row: dict) -> None:
        self.last_step = max(self.last_step, int(row.get("step", 0)))
        if row.get("kind") == "dev" and row.get("best"):
            self.best_dev = row.get("accuracy")

    def _scalars(self, row: dict) -> None:
        kind, step = row.get("kind"), int(row.get("step", 0))
        if kind == "test":
            step = self.last_step  # the test row names the best model's step; show it at the end of the run
        for tag, key in SCALARS.get(kind, {}).items():
            if isinstance(row.get(key), (int, float)):
                self.writer.add_scalar(tag, row[key], step)
        if kind == "dev" and self.best_dev is not None:
            self.writer.add_scalar("dev/best_accuracy", self.best_dev, step)

    def write(self, row: dict) -> None:
        """Write one metrics row to every log (TensorBoard flushed at all but train rows)."""
        if self.enabled:
            append_text(self.path, dumps(row, indent=None) + "\n")
        self.csv.write(row)
        self._track(row)
        if self.writer is not None:
            self._scalars(row)
            if row.get("kind") != "train":
                self.writer.flush()

    def truncate_after(self, step: int, drop_kinds: tuple = ()) -> list[dict]:
        """Drop the rows logged after ``step`` (after the checkpoint a resume starts from) and those of
        ``drop_kinds``, regenerate ``metrics.csv``, and make :meth:`open` purge TensorBoard from
        ``step`` on; returns the rows kept."""
        rows = [r for r in read_metrics(self.path) if r.get("step", 0) <= step and r.get("kind") not in drop_kinds]
        if self.enabled:
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(dumps(r, indent=None) + "\n" for r in rows), encoding="utf-8")
        self.csv.rebuild(rows)
        self._kept, self._start = rows, step
        return rows

    def add_figures(self, paths) -> None:
        """Add PNG files to TensorBoard as images (tag ``plots/STEM``) at the last step logged, opening a
        writer again if the run's one was closed."""
        if not self._writer():
            return
        for path in paths:
            pixels = np.asarray(open_image(path).convert("RGB"))
            self.writer.add_image(f"plots/{Path(path).stem}", pixels, self.last_step, dataformats="HWC")
        self.writer.flush()

    def end(self) -> None:
        """Mark the run's HParams session as finished (an interrupted run's stays open)."""
        if self.writer is None:
            return
        from torch.utils.tensorboard.summary import hparams  # optional extra: lenetlab[tensorboard]

        self.writer.file_writer.add_summary(hparams({}, {})[2])  # session_end_info, status success
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the TensorBoard writer (a later :meth:`add_figures` opens a new one)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
