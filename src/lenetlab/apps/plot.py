"""``lenet plot RUN [RUN ...]``: redraw a run's plots from its files, or overlay several runs' curves.

One run (finished, interrupted or running): its curves, and the confusion matrix, misclassified
grid, kernels and feature maps of its checkpoint on its test split, into ``RUN/plots/`` (or ``--out``);
what cannot be drawn is skipped with a one-line note. Several runs: their curves in one figure
(``--out FILE``, default ``compare.png``).
"""

from pathlib import Path

from lenetlab.data.transforms import InputSpec
from lenetlab.device import select_device
from lenetlab.errors import LenetlabError
from lenetlab.inference.run import PLOTS, Run, load_data
from lenetlab.models.checkpoint import build_model, checkpoint_data, load_checkpoint
from lenetlab.plots import plot_overlay, save_curve_plots, save_model_plots
from lenetlab.textfmt import Output

DEFAULT_OVERLAY = "compare.png"


def _rows(run: Run, notes: list[str]) -> list[dict]:
    try:
        return run.rows
    except LenetlabError as e:
        notes.append(f"curves skipped: {e}")
        return []


def redraw_run(
    run_dir: str | Path, out: str | Path | None = None, device: str = "auto"
) -> tuple[list[Path], list[str]]:
    """Draw every plot of ``run_dir`` that its files allow into ``out`` (default ``RUN/plots``).

    Returns ``(paths written, notes)``: a note says what was skipped and why."""
    run = Run(run_dir)
    out = Path(out) if out is not None else run.path / PLOTS
    if out.exists() and not out.is_dir():
        raise LenetlabError(f"--out {out}: is a file, not a folder (one run's plots are several PNG files)")
    notes: list[str] = []
    written = save_curve_plots(out, _rows(run, notes))
    ckpt = None
    for path in run.checkpoints:  # best.pt, else last.pt; an unreadable one is skipped
        try:
            ckpt = load_checkpoint(path, map_location="cpu")
            break
        except LenetlabError as e:
            notes.append(f"{path.name} skipped: {e}")
    if ckpt is None:
        notes.append("confusion matrix, misclassified images, kernels and feature maps skipped: no loadable checkpoint")
        return written, notes
    try:
        dev = select_device(device)
        model = build_model(ckpt, map_location=dev)
        spec = InputSpec.from_dict(ckpt["input_spec"])
        splits = load_data(checkpoint_data(ckpt))
        written += save_model_plots(out, model, splits, spec, dev)
    except LenetlabError as e:
        notes.append(f"confusion matrix, misclassified images, kernels and feature maps skipped: {e}")
    return written, notes


def overlay_runs(run_dirs: list[str | Path], out: str | Path = DEFAULT_OVERLAY) -> Path:
    """Several runs' curves in one figure at ``out`` (legend: the run names, or their paths when two
    runs share a name)."""
    run_dirs = [Path(p) for p in run_dirs]
    names = [p.name for p in run_dirs]
    if len(set(names)) < len(names):
        names = [str(p) for p in run_dirs]
    runs = []
    for name, path in zip(names, run_dirs):
        runs.append((name, Run(path).rows))
    out = Path(out)
    if out.suffix.lower() != ".png" or out.is_dir():
        raise LenetlabError(f"--out {out}: the overlay is a PNG file (name ending in .png, not a folder)")
    return plot_overlay(runs, out)


def run_plot(runs: list[str], out: str | None = None, device: str = "auto") -> Output:
    """``lenet plot``: redraw one run's plots, or overlay several runs' curves; says what was written."""
    run_dirs = [Run.find(r).path for r in runs]
    if len(run_dirs) > 1:
        path = overlay_runs(run_dirs, out or DEFAULT_OVERLAY)
        return Output(
            {"runs": [str(p) for p in run_dirs], "plots": [str(path)], "notes": []},
            f"wrote {path} ({len(run_dirs)} runs: {', '.join(p.name for p in run_dirs)})",
        )
    written, notes = redraw_run(run_dirs[0], out, device)
    where = Path(out) if out is not None else run_dirs[0] / PLOTS
    return Output(
        {"run": str(run_dirs[0]), "plots": [str(p) for p in written], "notes": notes},
        f"wrote {len(written)} plots to {where}: {', '.join(p.name for p in written) or 'none'}",
        [f"note: {n}" for n in notes],
    )
