"""A run's logs, all written from the same metrics rows: ``metrics.jsonl`` (the record), ``metrics.csv``
and TensorBoard event files, so the three always agree.

:class:`RunLogs` is what the :class:`~lenetlab.train.runner.Runner` writes its rows through (see
:mod:`lenetlab.train.rundir` for the rows). Only the main process writes (``enabled``).

- ``metrics.csv``: one line per row, flat (lists and dicts become ``key.0``, ``key.1``... columns), the
  union of every row's columns in first-seen order; rewritten whole when a new column appears, and
  regenerated from ``metrics.jsonl`` when a resumed run drops the rows written after its checkpoint.
- TensorBoard (``tensorboard --logdir runs`` shows every run): scalars ``train/loss``,
  ``train/accuracy``, ``train/lr``, ``train/examples_per_sec``, ``epoch/train_loss``,
  ``epoch/train_accuracy``, ``dev/loss``, ``dev/accuracy``, ``dev/best_accuracy``, ``test/loss``,
  ``test/accuracy`` against the optimizer step; the config as text (``config``); the hyper-parameters
  for the HParams tab with ``test/accuracy``, ``test/loss`` and ``dev/best_accuracy`` as its metrics;
  the run's plots as images at the end (:meth:`RunLogs.add_figures`). A resumed run opens its writer
  with ``purge_step`` at the checkpoint's step, so TensorBoard hides the events written after it.
  TensorBoard is optional (``pip install "lenetlab[tensorboard]"``): without it one line says so and the
  run continues with the other logs.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np

from lenetlab.data.images import open_image
from lenetlab.errors import first_line, missing_extra
from lenetlab.fileio import atomic_path, dumps
from lenetlab.train.rundir import METRICS, MetricsLog

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


def summary_writer_class():
    """``torch.utils.tensorboard.SummaryWriter``, or None (after printing one line, once per process)
    when the tensorboard package is missing or its import fails in any other way."""
    global _warned
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional extra: lenetlab[tensorboard]
        from torch.utils.tensorboard.summary import hparams  # noqa: F401  (used by TensorBoardLog)
    except Exception as e:  # missing, or an install broken in any other way: training goes on without it
        if not _warned:
            why = (
                missing_extra(e, "tensorboard", "writing them")
                if isinstance(e, ImportError)
                else f"importing tensorboard failed ({type(e).__name__}: {first_line(e, 100)})"
            )
            print(
                f"TensorBoard logs skipped: {why}; metrics.jsonl and metrics.csv are written as usual",
                file=sys.stderr,
                flush=True,
            )
            _warned = True
        return None
    return SummaryWriter


def _hparam_value(value):
    """A config value as TensorBoard's HParams tab accepts it (numbers, strings and booleans)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return dumps(value, indent=None)


class TensorBoardLog:
    """TensorBoard event files in the run directory, fed from metrics rows (see the module doc)."""

    def __init__(self, run_dir: str | Path, enabled: bool = True) -> None:
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.writer = None
        self.last_step = 0
        self.best_dev: float | None = None

    def open(self, config: dict, step: int = 0, rows: list[dict] = ()) -> None:
        """Start writing at ``step``: a fresh run (``step`` 0) writes its config and hyper-parameters;
        a resumed one purges the events at or after ``step`` and writes the kept ``rows`` of that step
        again (they were written before the checkpoint, but their events are purged too)."""
        for row in rows:  # the state a resumed run continues from
            self._track(row)
        if not self.enabled:
            return
        cls = summary_writer_class()
        if cls is None:
            self.enabled = False
            return
        self.writer = cls(log_dir=str(self.run_dir), purge_step=step if step > 0 else None, flush_secs=10)
        if step == 0:
            from torch.utils.tensorboard.summary import hparams  # optional extra: lenetlab[tensorboard]

            text = dumps(config)
            self.writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)  # a Markdown code block
            exp, ssi, _ = hparams({k: _hparam_value(v) for k, v in config.items()}, dict.fromkeys(HPARAM_METRICS, 0.0))
            self.writer.file_writer.add_summary(exp)
            self.writer.file_writer.add_summary(ssi)
        for row in rows:
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
        """Add the scalars of one metrics row (flushed at evaluations, epoch ends and the test)."""
        self._track(row)
        if self.writer is None:
            return
        self._scalars(row)
        if row.get("kind") != "train":
            self.writer.flush()

    def add_figures(self, paths, step: int | None = None) -> None:
        """Add PNG files as images (tag: the file's stem, e.g. ``plots/confusion``) at ``step``
        (default: the last step logged); opens a writer again if the run's one was closed."""
        if not self.enabled:
            return
        if self.writer is None:
            cls = summary_writer_class()
            if cls is None:
                return
            self.writer = cls(log_dir=str(self.run_dir), flush_secs=10)
        for path in paths:
            pixels = np.asarray(open_image(path).convert("RGB"))
            self.writer.add_image(
                f"plots/{Path(path).stem}", pixels, self.last_step if step is None else step, dataformats="HWC"
            )
        self.writer.flush()

    def end(self) -> None:
        """Mark the run's HParams session as finished (an interrupted run's stays open)."""
        if self.writer is None:
            return
        from torch.utils.tensorboard.summary import hparams  # optional extra: lenetlab[tensorboard]

        self.writer.file_writer.add_summary(hparams({}, {})[2])  # session_end_info, status success
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file (a later :meth:`add_figures` opens a new one)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class RunLogs:
    """Every log of one run directory, fed the same rows: ``metrics.jsonl``, ``metrics.csv``, TensorBoard.

    The Runner calls :meth:`open` when training starts (after a resume's :meth:`truncate_after`),
    :meth:`write` per row, :meth:`end` and :meth:`close` at the end; ``lenet train`` adds the plots
    with :meth:`add_figures`.
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.jsonl = MetricsLog(self.run_dir / METRICS, enabled=enabled)
        self.csv = CsvLog(self.run_dir / CSV, enabled=enabled)
        self.tensorboard = TensorBoardLog(self.run_dir, enabled=enabled and tensorboard)
        self._kept: list[dict] = []
        self._start = 0
        self._opened = False

    @property
    def path(self) -> Path:
        """The ``metrics.jsonl`` file (the record the other logs are derived from)."""
        return self.jsonl.path

    def open(self, config: dict) -> None:
        """Start the TensorBoard writer (at the step a resumed run continues from); later calls do nothing."""
        if not self._opened:
            self._opened = True
            self.tensorboard.open(config, self._start, self._kept)

    def write(self, row: dict) -> None:
        """Write one metrics row to every log."""
        self.jsonl.write(row)
        self.csv.write(row)
        self.tensorboard.write(row)

    def read(self) -> list[dict]:
        """The rows of ``metrics.jsonl``."""
        return self.jsonl.read()

    def truncate_after(self, step: int, drop_kinds: tuple = ()) -> list[dict]:
        """Drop the rows after ``step`` and of ``drop_kinds`` (see :meth:`MetricsLog.truncate_after`),
        regenerate ``metrics.csv`` from the rows kept and make TensorBoard purge from ``step`` on
        when :meth:`open` is called; returns the rows kept."""
        rows = self.jsonl.truncate_after(step, drop_kinds)
        self.csv.rebuild(rows)
        self._kept, self._start = rows, step
        return rows

    def add_figures(self, paths, step: int | None = None) -> None:
        """Add the run's PNG plots to TensorBoard as images."""
        self.tensorboard.add_figures(paths, step)

    def end(self) -> None:
        """Record the end of a finished run in TensorBoard's HParams tab."""
        self.tensorboard.end()

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        self.tensorboard.close()
