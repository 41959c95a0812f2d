"""``lenet train``: from parsed command-line arguments to a finished run and its summary."""

from __future__ import annotations

import json

from lenetlab.errors import ConfigError
from lenetlab.train.config import RunConfig, config_overrides, load_config_file
from lenetlab.train.runner import Runner, RunResult


def make_runner(config_file=None, resume=None, overwrite: bool = False, overrides: dict | None = None,
                callbacks=(), splits=None, dist=None) -> Runner:
    """A Runner from an optional config file, field overrides, or a run directory to resume
    (``dist``: the process-group context, see :mod:`lenetlab.train.dist`)."""
    overrides = dict(overrides or {})
    if resume is not None:
        if config_file is not None:
            raise ConfigError("--config and --resume cannot be combined: a resumed run keeps its saved config")
        return Runner.resume(resume, callbacks=callbacks, splits=splits, dist=dist, **overrides)
    base = load_config_file(config_file).to_dict() if config_file is not None else {}
    cfg = RunConfig.from_dict({**base, **overrides}, source="command line" if not config_file else str(config_file))
    return Runner(cfg, overwrite=overwrite, callbacks=callbacks, splits=splits, dist=dist)


def format_summary(result: RunResult) -> str:
    """The lines ``lenet train`` prints at the end of a run."""
    dev = "n/a" if result.dev_accuracy is None else f"{result.dev_accuracy:.4f}"
    lines = [f"best dev accuracy {dev} (step {result.best_step})"]
    if result.test is not None:
        lines.append(f"test accuracy {result.test.accuracy:.4f}  loss {result.test.loss:.4f}  "
                     f"(n={result.test.n}, best model)")
    lines.append(f"trained {result.steps} steps in {result.train_time:.1f} s ({result.time:.1f} s wall)")
    lines.append(f"best checkpoint: {result.best_path}")
    lines.append(f"last checkpoint: {result.last_path}")
    lines.append(f"metrics:         {result.run_dir / 'metrics.jsonl'}")
    if result.plots:
        lines.append(f"plots:           {result.run_dir / 'plots'} ({len(result.plots)} PNG files)")
    return "\n".join(lines)


def train_command(args, dist=None) -> int:
    """Run ``lenet train`` for parsed ``args`` (RunConfig flags, ``config``, ``resume``,
    ``overwrite``, ``json``); prints progress and the summary (rank 0 only under ``dist``, see
    :mod:`lenetlab.train.launch`). Returns the exit status."""
    overrides = config_overrides(args)
    if args.json and "progress" not in overrides:
        overrides["progress"] = "none"  # stdout is for the JSON result only
    runner = make_runner(args.config, args.resume, args.overwrite, overrides, dist=dist)
    main = runner.dist.is_main
    if not args.json and main:
        s = runner.splits
        what = "resuming" if args.resume else "training"
        print(f"{what} {runner.cfg.model} on {s.name} ({len(s.train)} train / {len(s.dev)} dev / {len(s.test)} test) "
              f"on {runner.device}{', autocast ' + str(runner.amp).replace('torch.', '') if runner.amp else ''}: "
              f"{runner.cfg.epochs} epochs x {runner.steps_per_epoch} steps -> {runner.run_dir}"
              f"{'' if runner.dist.world_size == 1 else ', ' + runner.dist.describe(runner.device)}", flush=True)
    result = runner.run()
    if main:
        print(json.dumps(result.summary(), indent=2) if args.json else format_summary(result))
    return 0
