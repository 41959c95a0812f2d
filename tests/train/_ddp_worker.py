"""Test helper run by torchrun (one copy per rank): ``lenet train`` through the real CLI path, plus
test-only hooks injected as runner callbacks.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/train/_ddp_worker.py \
        [--hash-dir DIR] [--fail-rank R --fail-step S --fail-how raise|kill] -- TRAIN_ARGS...

``--hash-dir``: every rank appends ``EVENT STEP SHA256`` of its model's weights to DIR/rank{R}.txt at
each epoch end (the weights being trained) and after the test (the best weights).
``--fail-*``: rank R raises a RuntimeError or SIGKILLs itself once it has logged step >= S.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
from pathlib import Path


def _digest(model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser()
    p.add_argument("--hash-dir", default=None)
    p.add_argument("--fail-rank", type=int, default=None)
    p.add_argument("--fail-step", type=int, default=0)
    p.add_argument("--fail-how", choices=("raise", "kill"), default="raise")
    opts = p.parse_args(argv[:split])
    train_args = argv[split + 1 :]
    rank = int(os.environ.get("RANK", "0"))

    def hook(event, runner, row):
        if opts.hash_dir and event in ("epoch", "test"):
            with open(Path(opts.hash_dir) / f"rank{rank}.txt", "a", encoding="utf-8") as f:
                f.write(f"{event} {row['step']} {_digest(runner.dist.unwrap(runner.model))}\n")
        if opts.fail_rank == rank and event == "train" and row["step"] >= opts.fail_step:
            if opts.fail_how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"injected failure at step {row['step']}")

    from lenetlab import cli
    from lenetlab.apps import train as commands

    make_runner = commands.make_runner
    commands.make_runner = lambda *a, **kw: make_runner(*a, **{**kw, "callbacks": [hook]})
    return cli.main(["train", *train_args])


if __name__ == "__main__":
    sys.exit(main())
