"""Training throughput with 1 process vs 2 DDP processes (torchrun, gloo on CPU) on this machine.

Runs ``lenet train`` for each setting, interleaved over ``--rounds`` rounds (settings see similar
background load), and reports examples/s over rank 0's training steps (DDP's all-reduce waits
included; evaluation and checkpoint writes not), against 1 process x 1 thread in the same run::

    python benchmarks/ddp_speed.py --data-dir DIR --two-threads --results results/ddp-speed.json
    python benchmarks/ddp_speed.py --dataset mnist-subset --epochs 10 --rounds 1
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lenetlab.inference.run import Run
from results_io import REPO, command_line, make_meta, run_lenet, write_results

MNIST = REPO.parent / "shared" / "data" / "mnist"
SETTINGS = [("1 process x 1 thread", 1, 1), ("2 processes x 1 thread (DDP)", 2, 1)]
TWO_THREADS = ("1 process x 2 threads", 1, 2)


def run_once(nproc: int, threads: int, args, out: Path, tag: str) -> dict:
    """One ``lenet train`` run; returns its JSON summary plus examples/sec."""
    argv = ["train", "--nproc", str(nproc), "--num-threads", str(threads), "--dataset", args.dataset]
    argv += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--device", "cpu", "--no-plots"]
    argv += ["--progress", "none", "--log-steps", "1000000", "--json", "--out-dir", str(out), "--name", tag]
    argv += ["--data-dir", args.data_dir] if args.data_dir else []
    summary, wall = run_lenet(argv, env=dict(os.environ, OMP_NUM_THREADS=str(threads)), cwd=REPO)
    examples = args.n_train * sum(r["kind"] == "epoch" for r in Run(out / tag).rows)
    return {
        "examples_per_sec": examples / summary["train_time"],
        "train_time": summary["train_time"],
        "wall": wall,
        "test_accuracy": summary["test_accuracy"],
    }


def measure(settings: list, args) -> dict[str, list[dict]]:
    """Every setting's runs, interleaved over ``args.rounds`` rounds, each printed as it ends."""
    results: dict[str, list[dict]] = {name: [] for name, _, _ in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (name, nproc, threads) in enumerate(settings):
                res = run_once(nproc, threads, args, Path(tmp), f"r{r}-s{i}")
                results[name].append(res)
                print(
                    f"  round {r + 1} {name:30s} {res['examples_per_sec']:8.0f} ex/s  (train {res['train_time']:.1f} "
                    f"s, wall {res['wall']:.1f} s, test acc {res['test_accuracy']:.4f})",
                    flush=True,
                )
    return results


def summarise(settings: list, results: dict) -> list[dict]:
    """One row per setting (median examples/s, every round's, the ratio to 1 process x 1 thread), printed."""
    base = statistics.median(x["examples_per_sec"] for x in results[SETTINGS[0][0]])
    print(f"\n{'setting':32s} {'median ex/s':>12s} {'vs 1x1':>7s}  all rounds")
    rows = []
    for name, nproc, threads in settings:
        v = [x["examples_per_sec"] for x in results[name]]
        median = statistics.median(v)
        print(f"{name:32s} {median:12.0f} {median / base:6.2f}x  " + ", ".join(f"{x:.0f}" for x in v))
        rows.append({"setting": name, "processes": nproc, "threads_per_process": threads, "examples_per_sec": median})
        rows[-1].update(rounds=v, vs_one_process_one_thread=median / base)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--dataset", default="mnist" if (MNIST / "train-images-idx3-ubyte.gz").is_file() else "mnist-subset")
    p.add_argument("--data-dir", default=str(MNIST) if MNIST.is_dir() else None)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=256, help="global batch (128 per process with 2 processes)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved repetitions of every setting")
    p.add_argument("--two-threads", action="store_true", help="also 1 process x 2 threads (slow on a busy machine)")
    p.add_argument("--results", metavar="FILE", default=None, help="write the figures as a results file")
    args = p.parse_args()
    settings = SETTINGS[:1] + [TWO_THREADS] + SETTINGS[1:] if args.two_threads else SETTINGS
    if args.dataset == "mnist-subset":
        args.data_dir = None
    from lenetlab.data import load

    args.n_train = len(load(args.dataset, data_dir=args.data_dir).train)
    print(
        f"{args.dataset}: {args.n_train} train examples x {args.epochs} epoch(s), global batch {args.batch_size}, "
        f"lenet5, CPU; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start; "
        f"{time.strftime('%H:%M UTC', time.gmtime())}"
    )
    rows = summarise(settings, measure(settings, args))
    print(f"load average {os.getloadavg()[0]:.1f} at the end (shared machine: figures are noisy)")
    if args.results:
        regenerate = f"python benchmarks/ddp_speed.py --data-dir DIR --two-threads --results {args.results}"
        meta = make_meta(
            "ddp-speed",
            "Training throughput: one process vs DDP processes",
            command_line(sys.argv[1:], "python benchmarks/ddp_speed.py"),
            regenerate=regenerate,
            dataset=args.dataset,
            train_examples=args.n_train,
            epochs=args.epochs,
            global_batch=args.batch_size,
            model="lenet5",
            rounds=args.rounds,
        )
        write_results(args.results, meta, rows=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
