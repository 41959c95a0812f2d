"""``lenet train``: from parsed arguments to a finished run, its summary and its plots.

In one process, :func:`train_command` builds a :class:`~lenetlab.train.Runner`, trains, and draws
the run's plots from the test evaluation the run already made. ``lenet train --nproc N ARGS`` runs
(on this machine)::

    python -m torch.distributed.run --standalone --nproc_per_node N -m lenetlab.cli train ARGS

and exits with torchrun's status. Each process started by torchrun (or by a user's own
``torchrun ... -m lenetlab.cli train ARGS``, including multi-node rendezvous) sees
``WORLD_SIZE > 1`` and trains with a :class:`~lenetlab.train.dist.DistributedContext`
(DistributedDataParallel, gloo on CPU / NCCL on CUDA). A failure on one rank is printed with its rank
number and recorded for torchrun's failure report; torchrun then stops the other ranks. Checkpoints are
written atomically by rank 0, so the last one stays loadable and ``--resume`` continues from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record

from lenetlab.analysis.plots import save_run_plots
from lenetlab.errors import ConfigError, LenetlabError
from lenetlab.train.config import config_overrides
from lenetlab.train.config import RunConfig
from lenetlab.train.dist import DistributedContext, in_torchrun, report_failure
from lenetlab.train.recipe import describe_notes, plan_config
from lenetlab.train.rundir import RunResult, plan_run, refuse_existing
from lenetlab.train.runner import Runner


def train_entry(args) -> int:
    """What ``lenet train`` runs for parsed ``args``: launch ``args.nproc`` processes with torchrun,
    train as one rank of a torchrun job (``WORLD_SIZE > 1``), or train in this process."""
    nproc = int(getattr(args, "nproc", 1))
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1 (got {nproc})")
    world = int(os.environ.get("WORLD_SIZE", "1")) if in_torchrun() else 1
    if nproc > 1:
        if in_torchrun():
            raise ConfigError(f"--nproc {nproc}: already running under torchrun (WORLD_SIZE={world}); drop --nproc")
        return launch_train(args, nproc)
    if world > 1:
        return distributed_train(args)
    return train_command(args)


@record
def distributed_train(args) -> int:
    """Train as one rank of a torchrun job: join the process group, train, leave it.

    User errors keep their type and gain a ``[rank R/W]`` prefix; other exceptions print one line
    naming the rank, then propagate (torchrun's ``record`` writes them into its failure report).
    """
    ctx = DistributedContext.from_env()
    try:
        status = train_command(args, dist=ctx)
    except LenetlabError as e:
        e.args = (f"[rank {ctx.rank}/{ctx.world_size}] {e}",)
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        report_failure(ctx, e)
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
    if args.resume is None:
        cfg, _ = plan_config(args.config, config_overrides(args), measure=False)  # the recipe may set batch_size
    if args.resume is None and run_dir is not None and not args.overwrite:
        refuse_existing(run_dir)
    if cfg.batch_size % nproc:
        raise ConfigError(f"field 'batch_size': the global batch {cfg.batch_size} is not divisible by --nproc {nproc}")
    return run_dir


def launch_train(args, nproc: int) -> int:
    """Run ``lenet train`` in ``nproc`` local processes with torchrun; return its exit status."""
    run_dir = _precheck(args, nproc)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "lenetlab.cli", "train", *train_argv(args)]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default for several processes, without its warning
    print("launching: " + " ".join(cmd[1:]), file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, env=env)
    interrupted = False
    while True:
        try:
            status = proc.wait()
            break
        except KeyboardInterrupt:  # torchrun got the same Ctrl-C and forwards it to the ranks: wait for them
            interrupted = True
    where = str(run_dir) if run_dir is not None else "RUN_DIR (printed at the start)"
    if interrupted:
        print(f"interrupted: continue with lenet train --nproc {nproc} --resume {where}", file=sys.stderr, flush=True)
        return 130
    if status != 0:
        print(f"error: distributed training failed: torchrun exited with status {status} (its report above names "
              f"the failing rank); checkpoints already written are intact: continue with "
              f"lenet train --nproc {nproc} --resume {where}", file=sys.stderr, flush=True)
    return status


def make_runner(config_file=None, resume=None, overwrite: bool = False, overrides: dict | None = None,
                callbacks=(), splits=None, dist=None) -> Runner:
    """A Runner from an optional config file, field overrides (over the recipe they name, see
    :mod:`lenetlab.train.recipe`), or a run directory to resume (``dist``: the process-group
    context, see :mod:`lenetlab.train.dist`; its rank 0 plans the recipe for every rank)."""
    overrides = dict(overrides or {})
    cfg, _ = plan_run(config_file, resume, overrides)
    if resume is not None:
        return Runner.resume(resume, callbacks=callbacks, splits=splits, dist=dist, **overrides)
    if dist is None or dist.is_main:
        cfg, _ = plan_config(config_file, overrides)
    if dist is not None and dist.world_size > 1:  # a measured --budget must give every rank the same epochs
        cfg = RunConfig.from_dict(dist.broadcast_object(cfg.to_dict() if dist.is_main else None), source="rank 0")
    return Runner(cfg, overwrite=overwrite, callbacks=callbacks, splits=splits, dist=dist)


def run_with_plots(runner: Runner) -> RunResult:
    """``runner.run()``, then (on the main process, when the config asks for them) the run's plots,
    drawn from the test evaluation the run already made; their paths go into ``result.plots``."""
    result = runner.run()
    if runner.dist.is_main and runner.cfg.plots:
        result.plots = save_run_plots(runner.run_dir, runner.history, runner.model, runner.splits, runner.spec,
                                      runner.device, test=result.test)
    return result


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
    :mod:`lenetlab.apps.train`). Returns the exit status."""
    overrides = config_overrides(args)
    if args.json and "progress" not in overrides:
        overrides["progress"] = "none"  # stdout is for the JSON result only
    runner = make_runner(args.config, args.resume, args.overwrite, overrides, dist=dist)
    main = runner.dist.is_main
    if not args.json and main:
        notes = runner.cfg.recipe_notes
        if notes.get("choices") and not args.resume:
            print(describe_notes(notes), flush=True)
        s = runner.splits
        what = "resuming" if args.resume else "training"
        print(f"{what} {runner.cfg.model} on {s.name} ({len(s.train)} train / {len(s.dev)} dev / {len(s.test)} test) "
              f"on {runner.device}{', autocast ' + str(runner.amp).replace('torch.', '') if runner.amp else ''}: "
              f"{runner.cfg.epochs} epochs x {runner.steps_per_epoch} steps -> {runner.run_dir}"
              f"{'' if runner.dist.world_size == 1 else ', ' + runner.dist.describe(runner.device)}", flush=True)
    result = run_with_plots(runner)
    if main:
        print(json.dumps(result.summary(), indent=2) if args.json else format_summary(result))
    return 0
