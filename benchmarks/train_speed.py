"""Training speed: the seeds' per-sample pipeline vs lenetlab's Runner, and time to 99% test accuracy.

    .venv/bin/python benchmarks/train_speed.py --data-dir DIR [--quick] [--threads N]
    .venv/bin/python benchmarks/train_speed.py --data-dir DIR --compile --results results/train-speed.json

Same as ``lenet bench train``; see :mod:`lenetlab.train.bench` for what is measured and how.
Prints examples/s for the baseline (PIL per-sample Dataset + shuffling DataLoader, batch 64,
NNDL lenet5, SGD lr 0.1) and for lenetlab's Runner on the same model and batch (plain,
channels-last, channels-last + bf16), their ratios, then lenetlab's fast recipe trained until
the test accuracy first reaches 99.0% (training wall time, evaluation excluded) and the
baseline recipe's test accuracy after the same training time.
"""

from __future__ import annotations

import argparse

from lenetlab.train.bench import run_train_bench


def main(argv=None) -> int:
    """Parse the flags and run :func:`lenetlab.train.bench.run_train_bench`."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="mnist", help="dataset name or path")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    p.add_argument("--quick", action="store_true", help="fewer timed steps (100 instead of 300)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per throughput figure")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="torch CPU thread counts to measure every variant at (default: 1 and torch's default)")
    p.add_argument("--target", type=float, default=0.99, help="test accuracy for the time-to-accuracy part")
    p.add_argument("--no-levers", action="store_true", help="skip the channels-last / bf16 variants")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (about a minute to compile)")
    p.add_argument("--no-tta", action="store_true", help="skip the time-to-accuracy part")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--results", metavar="FILE", default=None,
                   help="write the figures and the machine's description to this results file (see results_io.py)")
    a = p.parse_args(argv)
    res = run_train_bench(dataset=a.dataset, data_dir=a.data_dir, quick=a.quick, steps=a.steps, threads=a.threads,
                          target=a.target, levers=not a.no_levers, compile=a.compile, tta=not a.no_tta,
                          as_json=a.json)
    if a.results:
        import sys

        from results_io import command_line, make_meta, write_results

        args = sys.argv[1:] if argv is None else argv
        meta = make_meta("bench-train", "Training throughput and time to 99% test accuracy",
                         command_line(args, "python benchmarks/train_speed.py"),
                         regenerate=f"python benchmarks/train_speed.py --data-dir DIR --compile --results {a.results}")
        write_results(a.results, meta, data=res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
