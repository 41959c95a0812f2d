"""The search behind ``fast-lenet5``: time to 99% MNIST test accuracy of each recipe variant tried, over seeds.

    python benchmarks/fast_recipe_search.py --data-dir MNIST_DIR --results results/time-to-99-search.json

Every variant is ``fast-lenet5`` with a few fields changed (:data:`VARIANTS`), timed by
:func:`lenetlab.apps.bench_train.time_to_accuracy` once per seed (about 10 s), seeds interleaved.
"""

import argparse
import statistics
import sys

import torch

from lenetlab import data
from lenetlab.apps.bench_train import fast_lenet5, time_to_accuracy
from results_io import command_line, make_meta, write_results

#: label -> the fields changed from fast-lenet5 (the first row is fast-lenet5 itself)
VARIANTS = {
    "fast-lenet5 (lenet5-fast 16/32 maps, 1 epoch, batch 256, 2 threads)": {},
    "the same on 1 thread": {"num_threads": 1},
    "C1/C3 8/16 maps": {"model_kwargs": {"c1": 8, "c3": 16}},
    "C1/C3 8/32 maps": {"model_kwargs": {"c1": 8, "c3": 32}},
    "bf16 autocast": {"amp": "bf16"},
    "batch 512, lr 0.03": {"batch_size": 512, "lr": 0.03},
    "no label smoothing": {"label_smoothing": 0.0},
    "2-epoch schedule": {"epochs": 2},
    "NCHW instead of channels-last": {"channels_last": False},
    "the previous fast-lenet5: lenet5-modern width 8 (32x32 input, pooling after ReLU), 2 epochs, 1 thread": {
        "model": "lenet5-modern",
        "model_kwargs": {"width": 8, "dropout": 0.0},
        "epochs": 2,
        "num_threads": 1,
    },
}


def search(splits, variants: dict, seeds: list[int], target: float = 0.99, say=print) -> list[dict]:
    """One row per variant: ``{"label", "changes", "seeds", "reached", "train_time_s": {median, max, per_seed},
    "epoch_median", "test_accuracy_per_seed"}`` from :func:`time_to_accuracy` runs, seeds interleaved."""
    runs = {label: [] for label in variants}
    for seed in seeds:
        for label, changes in variants.items():
            t = time_to_accuracy(splits, fast_lenet5(**changes, seed=seed), target)
            runs[label].append(t)
            say(
                f"  seed {seed}  {'reached' if t.reached else 'NOT reached'} {t.train_time:5.2f} s  "
                f"epoch {t.epoch:.2f}  {label}"
            )
    rows = []
    for label, ts in runs.items():
        times = [t.train_time for t in ts]
        rows.append(
            {
                "label": label,
                "changes": variants[label],
                "seeds": seeds,
                "reached": sum(t.reached for t in ts),
                "train_time_s": {
                    "median": statistics.median(times),
                    "max": max(times),
                    "per_seed": [round(x, 2) for x in times],
                },
                "epoch_median": statistics.median(t.epoch for t in ts),
                "test_accuracy_per_seed": [t.test_accuracy for t in ts],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--data-dir", required=True, help="folder holding the MNIST files")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--variants", nargs="+", type=int, default=None, help="row numbers of VARIANTS (default: all)")
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--results", default=None, metavar="FILE", help="write the rows as a results file")
    args = p.parse_args(argv)
    chosen = {k: v for i, (k, v) in enumerate(VARIANTS.items()) if args.variants is None or i in args.variants}
    splits = data.load("mnist", data_dir=args.data_dir)
    print(
        f"time to {args.target:.1%} MNIST test accuracy, {len(chosen)} variants x seeds {args.seeds}, "
        f"torch {torch.__version__}",
        flush=True,
    )
    rows = search(splits, chosen, args.seeds, args.target, say=lambda *a: print(*a, flush=True))
    for r in rows:
        t = r["train_time_s"]
        reached = f"{r['reached']}/{len(r['seeds'])} reached"
        print(f"{reached}  median {t['median']:5.2f} s  max {t['max']:5.2f} s  {r['label']}")
    if args.results:
        cmd = command_line(sys.argv[1:] if argv is None else argv, "python benchmarks/fast_recipe_search.py")
        title = f"Time to {args.target:.0%} MNIST test accuracy: the variants of fast-lenet5 tried"
        write_results(args.results, make_meta("recipe-search", title, cmd, regenerate=cmd), rows=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
