"""A training run with its plots, drawn when it ends or from what it left when it stops early (the Runner
is taken as given: this package never imports ``lenetlab.train``)."""

from pathlib import Path

from lenetlab.plots import save_curve_plots, save_model_plots, save_run_plots
from lenetlab.textfmt import quiet

#: The plots also added to TensorBoard as images (the curves are there as scalars already).
TENSORBOARD_FIGURES = ("confusion", "misclassified", "kernels")


def run_with_plots(runner, say=quiet):
    """``runner.run()`` (a :class:`lenetlab.train.Runner`; returns its RunResult), then, on the main process
    when the config asks for them, the run's plots (into ``result.plots``, and :data:`TENSORBOARD_FIGURES`
    into TensorBoard). When the run stops with an exception (Ctrl-C, SIGTERM, a failing step), the plots
    its state allows are drawn, then the exception goes on."""
    try:
        result = runner.run()
    except BaseException:
        if runner.dist.is_main and runner.cfg.plots:
            plots_of_stopped_run(runner, say)
        raise
    if runner.dist.is_main and runner.cfg.plots:
        result.plots = save_run_plots(
            runner.run_dir, runner.history, runner.model, runner.splits, runner.spec, runner.device, test=result.test
        )
        runner.metrics.add_figures([p for p in result.plots if p.stem in TENSORBOARD_FIGURES])
        runner.metrics.close()
    return result


def plots_of_stopped_run(runner, say=quiet) -> list[Path]:
    """The plots of a run that stopped early: the curves of its rows so far, and those of its best model when
    a dev evaluation chose one. Never raises (a failure is one line), so the run's own error is the one shown."""
    out = Path(runner.run_dir) / "plots"
    written: list[Path] = []
    try:
        written = save_curve_plots(out, runner.history)
        if runner.state.best_state is not None:  # the current weights may be mid-step or non-finite
            model = runner.dist.unwrap(runner.model)
            model.load_state_dict(runner.state.best_state)
            written += save_model_plots(out, model, runner.splits, runner.spec, runner.device)
            runner.metrics.add_figures([p for p in written if p.stem in TENSORBOARD_FIGURES])
            runner.metrics.close()
    except Exception as e:
        say(f"plots of the stopped run: {type(e).__name__}: {e}".splitlines()[0], err=True)
    if written:
        say(f"plots of the run so far: {out} ({len(written)} PNG files)", err=True)
    return written
