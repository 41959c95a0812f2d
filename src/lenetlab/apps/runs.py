"""``lenet runs [DIR]``: one line per run directory (:meth:`lenetlab.inference.run.Run.info`), sorted and
filtered; a damaged run is listed with what is wrong with it."""

from lenetlab.errors import ConfigError
from lenetlab.inference.run import Run, RunInfo
from lenetlab.textfmt import Output, align

SORTS = ("name", "dev", "test", "time")


def format_seconds(seconds: float | None) -> str:
    """``12.3s``, ``4m05s`` or ``2h07m``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def select_runs(
    runs: list[RunInfo], sort: str = "name", model: str | None = None, dataset: str | None = None
) -> list[RunInfo]:
    """``runs`` filtered by ``model``/``dataset`` (exact names) and sorted: ``name`` (A-Z), ``dev`` or
    ``test`` (best accuracy first), ``time`` (shortest training first); runs without the figure last."""
    if sort not in SORTS:
        raise ConfigError(f"--sort {sort}: expected one of {', '.join(SORTS)}")
    runs = [r for r in runs if (model is None or r.model == model) and (dataset is None or r.dataset == dataset)]
    if sort == "name":
        return sorted(runs, key=lambda r: r.name)
    key = {
        "dev": lambda r: -r.best_dev if r.best_dev is not None else None,
        "test": lambda r: -r.test if r.test is not None else None,
        "time": lambda r: r.train_time,
    }[sort]
    return sorted(runs, key=lambda r: (key(r) is None, key(r) if key(r) is not None else 0, r.name))


def _epochs(r: RunInfo) -> str:
    done = "-" if r.epochs is None else f"{r.epochs:g}"
    return f"{done}/{r.max_epochs}" if r.max_epochs is not None else done


def _notes(r: RunInfo) -> str:
    if r.problems:
        return "; ".join(r.problems)
    if r.status == "interrupted":
        return f"continue: lenet train --resume {r.path}"
    if r.reason and r.reason != "completed":
        return r.reason.replace("_", " ")
    return ""


def format_runs(runs: list[RunInfo]) -> str:
    """The table ``lenet runs`` prints (a header and one line per run)."""
    head = ("run", "model", "dataset", "status", "epochs", "best dev", "test", "train time", "ex/s", "notes")
    table = [
        (
            r.name,
            r.model or "?",
            r.dataset or "?",
            r.status,
            _epochs(r),
            "-" if r.best_dev is None else f"{r.best_dev:.4f}",
            "-" if r.test is None else f"{r.test:.4f}",
            format_seconds(r.train_time),
            "-" if r.examples_per_sec is None else f"{r.examples_per_sec:,.0f}",
            _notes(r),
        )
        for r in runs
    ]
    return "\n".join(align([head, *table], right={4, 5, 6, 7, 8}))


def run_runs(root: str = "runs", sort: str = "name", model: str | None = None, dataset: str | None = None) -> Output:
    """``lenet runs``: the runs in ``root`` (see :func:`select_runs`) as a table."""
    runs = select_runs([r.info() for r in Run.all(root)], sort, model, dataset)
    empty = f"no runs in {root}" + (" matching the filters" if model or dataset else "")
    return Output([r.to_dict() for r in runs], format_runs(runs) if runs else empty)
