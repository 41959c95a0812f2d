"""Build a full-size Kaggle "Digit Recognizer" folder from the MNIST IDX files, and score submissions.

Kaggle's layout: ``train.csv`` (42,000 rows ``label,pixel0..pixel783``), ``test.csv`` (28,000 rows),
submissions ``ImageId,Label`` with ids from 1. The 70,000 MNIST digits go in a seeded order (the same
files and ``--seed`` give the same folder, byte for byte), with ``sample_submission.csv`` and the
answers in ``solution.csv`` (which ``lenet`` never reads); ``--train N --test M`` makes it smaller::

    python benchmarks/make_digit_recognizer.py --data-dir DIR --out /tmp/digitrec
    lenet submit --data-dir /tmp/digitrec --out /tmp/digitrec-submission.csv
    python benchmarks/make_digit_recognizer.py --out /tmp/digitrec --score /tmp/digitrec-submission.csv

``--run`` does all three (the default ``lenet submit`` in a fresh process), ``--results FILE`` keeps
the figures for the docs.
"""

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_io beside this script
from results_io import REPO, make_meta, run_lenet, write_results

MNIST = REPO.parent / "shared" / "data" / "mnist"


def write_pixels(path: Path, x: np.ndarray, labels: np.ndarray | None) -> None:
    """Write ``uint8 [N, 28, 28]`` images as Kaggle's CSV (``label,pixel0..`` or ``pixel0..``), fast."""
    n = len(x)
    flat = x.reshape(n, -1).astype(np.int64)
    header = ([] if labels is None else ["label"]) + [f"pixel{i}" for i in range(flat.shape[1])]
    table = flat if labels is None else np.concatenate([labels.reshape(-1, 1).astype(np.int64), flat], axis=1)
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        np.savetxt(f, table, fmt="%d", delimiter=",")
    tmp.replace(path)


def build(data_dir: str, out: Path, n_train: int = 42_000, n_test: int = 28_000, seed: int = 0) -> dict:
    """Write ``train.csv``, ``test.csv``, ``sample_submission.csv`` and ``solution.csv`` into ``out``."""
    from lenetlab.data.download import IDX_DATASETS, locate
    from lenetlab.data.idx import read_images_labels

    paths = locate(IDX_DATASETS["mnist"], data_dir)
    xtr, ytr = read_images_labels(paths[0], paths[1])
    xte, yte = read_images_labels(paths[2], paths[3])
    x, y = np.concatenate([xtr, xte]), np.concatenate([ytr, yte]).astype(np.int64)
    if n_train + n_test > len(x):
        raise SystemExit(f"--train {n_train} + --test {n_test} exceeds the {len(x):,} images")
    order = np.random.default_rng(seed).permutation(len(x))[: n_train + n_test]
    tr, te = order[:n_train], order[n_train:]
    out.mkdir(parents=True, exist_ok=True)
    write_pixels(out / "train.csv", x[tr], y[tr])
    write_pixels(out / "test.csv", x[te], None)
    ids = np.arange(1, len(te) + 1)
    for name, labels in (("sample_submission.csv", np.zeros(len(te), np.int64)), ("solution.csv", y[te])):
        with open(out / name, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["ImageId", "Label"])
            w.writerows(zip(ids.tolist(), labels.tolist()))
    return {"train": len(tr), "test": len(te), "folder": str(out)}


def score(folder: Path, submission: Path) -> tuple[float, int]:
    """Accuracy of a Kaggle submission (``ImageId,Label``) against ``folder/solution.csv``."""

    def read(p: Path) -> dict[int, str]:
        with open(p, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
        if not rows or [c.strip() for c in rows[0]] != ["ImageId", "Label"]:
            raise SystemExit(f"{p}: expected the header ImageId,Label")
        return {int(r[0]): r[1].strip() for r in rows[1:]}

    truth, sub = read(folder / "solution.csv"), read(submission)
    missing = len(set(truth) - set(sub))
    if missing:
        raise SystemExit(f"{submission}: {missing} of the {len(truth)} ImageIds have no row")
    return sum(sub[i] == lab for i, lab in truth.items()) / len(truth), len(truth)


def run_default(args) -> int:
    """``--run``: build (if needed), submit with lenet's defaults, score, print and record."""
    if not (args.out / "train.csv").is_file():
        build(args.data_dir, args.out, args.train, args.test, args.seed)
    sub = args.out.parent / (args.out.name + "-submission.csv")
    runs = args.out.parent / (args.out.name + "-runs")
    argv = ["submit", "--data-dir", str(args.out), "--out", str(sub), "--out-dir", str(runs)]
    argv += ["--progress", "none", "--no-plots", "--json"]
    res, wall = run_lenet(argv + (["--num-threads", str(args.num_threads)] if args.num_threads else []))
    acc, n = score(args.out, sub)
    print(
        f"default lenet submit: test accuracy {100 * acc:.2f}% on {n:,} held-out images, validation "
        f"{100 * (res.get('dev_accuracy') or 0):.2f}%, training {res['train_time']:.1f} s (wall {wall:.1f} s)"
    )
    if args.results:
        row = {
            "task": "digit-recognizer",
            "train_rows": args.train,
            "test_rows": args.test,
            "test_accuracy": acc,
            "n": n,
            "dev_accuracy": res.get("dev_accuracy"),
            "train_time": res.get("train_time"),
            "wall": round(wall, 1),
            "tta": res.get("tta"),
            "members": len(res.get("run_dirs") or []),
            "recipe": res.get("recipe"),
        }
        command = "python benchmarks/make_digit_recognizer.py --data-dir DIR --out FOLDER --run"
        command += f" --num-threads {args.num_threads}" if args.num_threads else ""
        title = "The default lenet submit on a full-size Kaggle Digit Recognizer folder"
        write_results(args.results, make_meta("digit-recognizer", title, command), rows=[row])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Build the folder, or with ``--score`` print a submission's accuracy."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(MNIST), help="folder with the four MNIST IDX files")
    p.add_argument("--out", required=True, type=Path, help="the folder to write (train.csv, test.csv, ...)")
    p.add_argument("--train", type=int, default=42_000, help="labelled rows in train.csv")
    p.add_argument("--test", type=int, default=28_000, help="unlabelled rows in test.csv")
    p.add_argument("--seed", type=int, default=0, help="seed of the order of the 70,000 images")
    p.add_argument("--score", type=Path, metavar="SUBMISSION", help="score it against OUT/solution.csv, build nothing")
    p.add_argument("--run", action="store_true", help="build OUT if needed, run the default lenet submit, score it")
    p.add_argument("--num-threads", type=int, default=None, help="torch CPU threads for --run (default: all)")
    p.add_argument("--results", default=None, metavar="FILE", help="with --run: write the figures as a results file")
    args = p.parse_args(argv)
    if args.run:
        return run_default(args)
    if args.score is not None:
        acc, n = score(args.out, args.score)
        print(f"{args.score}: accuracy {100 * acc:.2f}% on {n:,} test images ({round((1 - acc) * n)} wrong)")
        return 0
    info = build(args.data_dir, args.out, args.train, args.test, args.seed)
    print(
        f"wrote {info['folder']}: train.csv {info['train']:,} rows, test.csv {info['test']:,} rows, "
        f"sample_submission.csv, solution.csv"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
