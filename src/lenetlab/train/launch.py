"""``lenet train`` across processes: the ``--nproc N`` launcher and the per-rank entry under torchrun.

``lenet train --nproc N ARGS`` runs (on this machine)::

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

from lenetlab.errors import ConfigError, LenetlabError
from lenetlab.train.config import RunConfig, config_overrides, load_config_file
from lenetlab.train.dist import DistributedContext, in_torchrun, report_failure


def train_entry(args) -> int:
    """What ``lenet train`` runs for parsed ``args``: launch ``args.nproc`` processes with torchrun,
    train as one rank of a torchrun job (``WORLD_SIZE > 1``), or train in this process."""
    from lenetlab.train.commands import train_command

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
    from lenetlab.train.commands import train_command

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
    overrides = config_overrides(args)
    if args.resume is not None:
        if args.config is not None:
            raise ConfigError("--config and --resume cannot be combined: a resumed run keeps its saved config")
        run_dir = Path(args.resume)
        if not (run_dir / "last.pt").is_file():
            raise ConfigError(f"--resume {run_dir}: no last.pt in it (not a run directory, or it never saved)")
        from lenetlab.models.checkpoint import load_checkpoint

        cfg = RunConfig.from_dict(load_checkpoint(run_dir / "last.pt")["config"], source=str(run_dir / "last.pt"))
    else:
        base = load_config_file(args.config).to_dict() if args.config is not None else {}
        cfg = RunConfig.from_dict({**base, **overrides}, source=str(args.config or "command line"))
        run_dir = Path(cfg.out_dir) / cfg.name if cfg.name else None
        if run_dir is not None and run_dir.exists() and any(run_dir.iterdir()) and not args.overwrite:
            raise ConfigError(f"run directory {run_dir} already exists: continue it with --resume {run_dir}, "
                              "replace it with --overwrite, or choose another --name")
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
