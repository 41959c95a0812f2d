"""``lenet train``: from parsed arguments to a finished run, its summary and its plots.

In one process :func:`train_command` builds a :class:`~lenetlab.train.Runner`, trains and draws the
run's plots (also when it stops on Ctrl-C, SIGTERM or a failing step). ``--dry-run`` runs every part
for a few steps into a temporary folder. ``--nproc N`` runs ``python -m torch.distributed.run
--standalone --nproc_per_node N -m lenetlab.cli train ARGS`` and exits with torchrun's status (143
after a SIGTERM, which it forwards to every rank: each saves ``last.pt`` at the same step). Each rank
(also of a user's own ``torchrun``) sees ``WORLD_SIZE > 1`` and trains with a
:class:`~lenetlab.train.dist.DistributedContext`; a failing rank prints its rank and message.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.distributed.elastic.multiprocessing.errors import record

from lenetlab.errors import ConfigError, LenetlabError
from lenetlab.plots.runplots import run_with_plots
from lenetlab.signals import handling
from lenetlab.textfmt import Output, quiet
from lenetlab.train.config import RunConfig, config_overrides
from lenetlab.train.dist import DistributedContext, failure_line, in_torchrun
from lenetlab.train.recipe import describe_notes, plan_config
from lenetlab.train.rundir import RunResult, check_unlocked, plan_run, refuse_existing
from lenetlab.train.runner import Runner
from lenetlab.train.setup import load_splits


def train_entry(args, say=quiet) -> Output | int:
    """``lenet train`` for parsed ``args``: launch ``args.nproc`` processes with torchrun (their exit status),
    train as one rank of a torchrun job, or train in this process; ``say(text, err=False)`` shows progress."""
    nproc = int(getattr(args, "nproc", 1))
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1 (got {nproc})")
    if getattr(args, "dry_run", False) and (nproc > 1 or in_torchrun()):
        raise ConfigError("--dry-run checks a configuration in one process; drop --nproc (or torchrun)")
    world = int(os.environ.get("WORLD_SIZE", "1")) if in_torchrun() else 1
    if nproc > 1:
        if in_torchrun():
            raise ConfigError(f"--nproc {nproc}: already running under torchrun (WORLD_SIZE={world}); drop --nproc")
        return launch_train(args, nproc, say)
    # SIGTERM outside the training loop ends the command as Ctrl-C does; inside, the Runner saves first
    if world > 1:
        return distributed_train(args, say)
    return train_command(args, say=say)


@record
def distributed_train(args, say=quiet) -> Output | int:
    """Train as one rank of a torchrun job. User errors gain a ``[rank R/W]`` prefix; other exceptions print
    one line naming the rank, then propagate (torchrun's ``record`` writes its failure report)."""
    ctx = DistributedContext.from_env()
    try:
        status = train_command(args, dist=ctx, say=say)
    except LenetlabError as e:
        e.args = (f"[rank {ctx.rank}/{ctx.world_size}] {e}",)
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        say(failure_line(ctx, e), err=True)
        raise
    ctx.close()
    return status


def train_argv(args) -> list[str]:
    """The ``lenet train`` arguments that reproduce parsed ``args`` (without ``--nproc``)."""
    argv: list[str] = []
    if args.config is not None:
        argv += ["--config", str(args.config)]
    if args.resume is not None:
        argv += ["--resume", str(args.resume)]
    if args.overwrite:
        argv.append("--overwrite")
    if args.json:
        argv.append("--json")
    for name, value in config_overrides(args).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif value is None:
            argv += [flag, "none"]
        elif isinstance(value, dict):
            argv += [flag, json.dumps(value)]
        else:
            argv += [flag, str(value)]
    return argv


def _precheck(args, nproc: int) -> Path | None:
    """Catch user errors before starting processes; return the run directory when it is known."""
    cfg, run_dir = plan_run(args.config, args.resume, config_overrides(args))
    if run_dir is not None:
        check_unlocked(run_dir)  # a run in progress there: say so before starting any process
    if args.resume is None:
        cfg, _ = plan_config(args.config, config_overrides(args), measure=False)  # the recipe may set batch_size
    if args.resume is None and run_dir is not None and not args.overwrite:
        refuse_existing(run_dir)
    if cfg.batch_size % nproc:
        raise ConfigError(f"field 'batch_size': the global batch {cfg.batch_size} is not divisible by --nproc {nproc}")
    return run_dir


#: ``python -c`` code running torchrun's ``main`` on ``sys.argv[1:]``: what ``python -m torch.distributed.run``
#: does, except that the SIGTERM torchrun forwards to the ranks ends it with status 143 instead of its
#: SignalException traceback (the ranks print what happened and how to resume).
TORCHRUN = (
    "import sys\n"
    "from torch.distributed.elastic.multiprocessing.api import SignalException\n"
    "from torch.distributed.run import main\n"
    "try:\n    main(sys.argv[1:])\n"
    "except SignalException as e:\n    sys.exit(128 + int(e.sigval))\n"
)


def launch_train(args, nproc: int, say=quiet) -> int:
    """Run ``lenet train`` in ``nproc`` local processes with torchrun; return its exit status."""
    run_dir = _precheck(args, nproc)
    torchrun_args = ["--standalone", "--nproc_per_node", str(nproc), "-m", "lenetlab.cli", "train", *train_argv(args)]
    cmd = [sys.executable, "-c", TORCHRUN, *torchrun_args]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default for several processes, without its warning
    say("launching: -m torch.distributed.run " + " ".join(torchrun_args), err=True)
    proc = subprocess.Popen(cmd, env=env)
    interrupted = terminated = False

    def forward(signum, frame):  # `kill PID` reaches this process only: pass it on to torchrun
        nonlocal terminated
        terminated = True
        proc.send_signal(signal.SIGTERM)

    with handling(forward):
        while True:
            try:
                status = proc.wait()
                break
            except KeyboardInterrupt:  # torchrun got the same Ctrl-C and forwards it to the ranks: wait for them
                interrupted = True
    where = str(run_dir) if run_dir is not None else "RUN_DIR (printed at the start)"
    if interrupted or terminated:
        say(
            f"{'terminated (SIGTERM)' if terminated else 'interrupted'}: continue with lenet train --nproc {nproc} "
            f"--resume {where}",
            err=True,
        )
        return 143 if terminated else 130
    if status != 0:
        say(
            f"error: distributed training failed: torchrun exited with status {status} (its report above names "
            f"the failing rank); checkpoints already written are intact: continue with "
            f"lenet train --nproc {nproc} --resume {where}",
            err=True,
        )
    return status


def make_runner(
    config_file=None,
    resume=None,
    overwrite: bool = False,
    overrides: dict | None = None,
    callbacks=(),
    splits=None,
    dist=None,
    say=quiet,
) -> Runner:
    """A Runner from an optional config file and field overrides (over their recipe), or a run directory to
    resume; under ``dist`` rank 0 plans the recipe for every rank; ``say``: the Runner's progress lines."""
    overrides = dict(overrides or {})
    cfg, _ = plan_run(config_file, resume, overrides)
    if resume is not None:
        return Runner.resume(resume, callbacks=callbacks, splits=splits, dist=dist, say=say, **overrides)
    recipe = None
    if dist is None or dist.is_main:
        cfg, recipe = plan_config(config_file, overrides)
    if dist is not None and dist.world_size > 1:  # a measured --budget must give every rank the same epochs
        cfg = RunConfig.from_dict(dist.broadcast_object(cfg.to_dict() if dist.is_main else None), source="rank 0")
    elif splits is None:
        splits = recipe.splits  # loaded by the recipe to time a step for --budget, else None
    return Runner(cfg, overwrite=overwrite, callbacks=callbacks, splits=splits, dist=dist, say=say)


def format_summary(
    result: RunResult, monitor: str = "dev_acc", reason: str | None = None, budget_s: float | None = None
) -> str:
    """The lines ``lenet train`` prints at the end of a run (``monitor`` chose the best model, ``reason``
    why it stopped early, ``budget_s`` the ``--budget``)."""
    dev = "n/a" if result.dev_accuracy is None else f"{result.dev_accuracy:.4f}"
    chosen = {"dev_loss": ", best model chosen on dev loss", "last": ", the final model: --monitor last"}.get(
        monitor, ""
    )
    lines = [f"best dev accuracy {dev} (step {result.best_step}{chosen})"]
    if result.test is not None:
        lines.append(
            f"test accuracy {result.test.accuracy:.4f}  loss {result.test.loss:.4f}  (n={result.test.n}, best model)"
        )
    stopped = {
        "early_stop": " (early stop: --patience used up)",
        "max_steps": " (--max-steps reached)",
        "stopped": " (stopped early)",
    }.get(reason or "", "")
    budget = f"; budget {budget_s:g} s" if budget_s else ""
    lines.append(
        f"trained {result.steps} steps in {result.train_time:.1f} s ({result.time:.1f} s wall{budget}){stopped}"
    )
    lines.append(f"best checkpoint: {result.best_path}")
    lines.append(f"last checkpoint: {result.last_path}")
    tensorboard = (
        f"; TensorBoard: tensorboard --logdir {result.run_dir.parent}"
        if any(result.run_dir.glob("events.out.tfevents.*"))
        else ""
    )  # none written: not installed, or off
    lines.append(f"metrics:         {result.run_dir / 'metrics.jsonl'} (also metrics.csv{tensorboard})")
    if result.plots:
        lines.append(f"plots:           {result.run_dir / 'plots'} ({len(result.plots)} PNG files)")
    return "\n".join(lines)


#: What ``--dry-run`` changes: one epoch of at most this many steps, one dev evaluation at the end.
DRY_RUN_STEPS = 3
#: ``--dry-run`` evaluates and tests on at most this many dev/test examples.
DRY_RUN_EXAMPLES = 256


def dry_run(args, say=quiet) -> Output:
    """``lenet train --dry-run``: the configured run for :data:`DRY_RUN_STEPS` steps, evaluated and tested on
    at most :data:`DRY_RUN_EXAMPLES` examples, with checkpoints and plots, in a new temporary folder (kept,
    never the run directory). The result lists the files written."""
    if args.resume is not None:
        raise ConfigError("--dry-run checks a new run's configuration; it cannot be combined with --resume")
    t0 = time.perf_counter()
    overrides = config_overrides(args)
    cfg, _ = plan_run(args.config, None, overrides)
    out = Path(tempfile.mkdtemp(prefix="lenet-dry-run-"))
    cfg = cfg.replace(
        out_dir=str(out),
        name=cfg.name or "dry-run",
        epochs=1,
        max_steps=DRY_RUN_STEPS,
        eval_steps=0,
        save_every=0,
        patience=0,
    )
    try:
        splits = load_splits(cfg)
        dev, test = (s.take(torch.arange(min(len(s), DRY_RUN_EXAMPLES))) for s in (splits.dev, splits.test))
        splits = replace(splits, dev=dev, test=test)
        runner = Runner(cfg, splits=splits, say=say)
    except BaseException:  # a configuration error: nothing worth keeping was written
        shutil.rmtree(out, ignore_errors=True)
        raise
    result = run_with_plots(runner, say)
    files = sorted(str(p.relative_to(runner.run_dir)) for p in runner.run_dir.rglob("*") if p.is_file())
    summary = {
        "dry_run": "ok",
        "run_dir": str(runner.run_dir),
        "steps": result.steps,
        "dev_evaluations": sum(r["kind"] == "dev" for r in runner.history),
        "test_accuracy": None if result.test is None else result.test.accuracy,
        "seconds": round(time.perf_counter() - t0, 1),
        "files": files,
    }
    return Output(
        summary,
        f"dry run ok: {cfg.model} on {splits.name}, {result.steps} steps, "
        f"{summary['dev_evaluations']} dev evaluation ({len(splits.dev)} examples), checkpoints, "
        f"test ({len(splits.test)} examples) and {len(result.plots)} plots in "
        f"{summary['seconds']:.1f} s\nwritten to a temporary folder (delete it when done): "
        f"{runner.run_dir}\n  " + "\n  ".join(files),
    )


def train_command(args, dist=None, say=quiet) -> Output | int:
    """Run ``lenet train`` for parsed ``args``; ``say`` shows the recipe and the start line. Returns the
    run's summary, or exit status 0 on the other ranks under ``dist``."""
    if getattr(args, "dry_run", False):
        return dry_run(args, say)
    runner = make_runner(args.config, args.resume, args.overwrite, config_overrides(args), dist=dist, say=say)
    main = runner.dist.is_main
    if main:
        notes = runner.cfg.recipe_notes
        if notes.get("choices") and not args.resume:
            say(describe_notes(notes))
        s = runner.splits
        what = "resuming" if args.resume else "training"
        say(
            f"{what} {runner.cfg.model} on {s.name} ({len(s.train)} train / {len(s.dev)} dev / {len(s.test)} test) "
            f"on {runner.device}{', autocast ' + str(runner.amp).replace('torch.', '') if runner.amp else ''}: "
            f"{runner.cfg.epochs} epochs x {runner.steps_per_epoch} steps -> {runner.run_dir}"
            f"{'' if runner.dist.world_size == 1 else ', ' + runner.dist.describe(runner.device)}"
        )
    result = run_with_plots(runner, say)
    if not main:
        return 0
    budget_s = (runner.cfg.recipe_notes or {}).get("budget_s")
    return Output(result.summary(), format_summary(result, runner.cfg.monitor, runner.stop_reason(), budget_s))
