"""A committee of LeNet-5-style networks (Ciresan et al. 2012) chosen on the dev split: results/committee.json.

    python benchmarks/committee.py --data-dir MNIST_DIR                   (train the members, then choose)
    python benchmarks/committee.py --data-dir MNIST_DIR --collect-only    (choose among finished runs)

Every member of :data:`MEMBERS` (``lenet5-modern-elastic`` on eight preprocessings of the digits, as
Ciresan et al. train their columns) is trained once per seed into ``RUNS_DIR/NAME-sSEED`` (finished runs
are kept); ``lenet ensemble --select`` then chooses the committee on the dev split. The rows: each
member's single-network test errors, then the committee.
"""

import argparse
import sys
from pathlib import Path

from collect_runs import RUN_NAME, Member, add_run_args, aggregate, finished_runs, run_record, train_all
from lenetlab.apps.ensemble import ensemble_select
from results_io import machine_line, make_meta, write_results

BASE = "lenet5-modern-elastic"
#: Ciresan et al. 2012 normalise MNIST digits to these widths (pixels), one preprocessing per column group.
WIDTHS = (10, 12, 14, 16, 18, 20)
MEMBERS = {
    m.name: m
    for m in (
        Member(BASE, BASE),
        Member(f"{BASE}-resized", f"{BASE}-resized"),
        *(Member(f"{BASE}-w{w}", BASE, ("--digit-width", str(w))) for w in WIDTHS),
    )
}
RESULTS = "results/committee.json"
#: Ciresan, Meier & Schmidhuber 2012, "Multi-column deep neural networks for image classification"
REFERENCE = "Ciresan et al. 2012 reached 0.23% with 35 networks (7 preprocessings x 5 networks each)"
TARGET_PCT = 0.25


def _seed_glob(runs: list[Path]) -> str:
    """A shell pattern for exactly the seeds of ``runs``: ``0``, ``[0-3]``, ``{0..11}`` or ``{0,1,3}``."""
    seeds = sorted({int(RUN_NAME.match(r.name)["seed"]) for r in runs})
    if len(seeds) == 1:
        return str(seeds[0])
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"[{seeds[0]}-{seeds[-1]}]" if seeds[-1] < 10 else f"{{{seeds[0]}..{seeds[-1]}}}"
    return "{" + ",".join(str(s) for s in seeds) + "}"


def _runs_glob(runs: list[Path]) -> str:
    """A shell pattern for exactly the members and seeds of ``runs``: ``RUNS_DIR/BASE{,-resized}-s[0-3]``."""
    present = {RUN_NAME.match(r.name)["config"] for r in runs}
    names = [n for n in MEMBERS if n in present]
    suffixes = [n[len(BASE) :] for n in names]
    members = BASE + suffixes[0] if len(names) == 1 else BASE + "{" + ",".join(suffixes) + "}"
    return f"RUNS_DIR/{members}-s{_seed_glob(runs)}"


def committee_row(runs: list[Path], data_dir: str | None, meta: dict, dataset: str = "mnist") -> dict:
    """Choose the committee among ``runs`` on the dev split of ``dataset`` and measure it on the test split."""
    dev, test = ensemble_select([str(r / "best.pt") for r in runs], dataset=dataset, data_dir=data_dir)
    chosen = [Path(m["checkpoint"]).parent.name for m in test.members]
    err = round(100 * (1 - test.accuracy), 2)
    sel = dev.selection
    how = "greedy forward selection" if sel["rule"] == "greedy" else "all, as cross-validation on dev favoured"
    return {
        "id": "committee",
        "label": f"committee of {len(chosen)} chosen on dev among {len(runs)} ({how})",
        "candidates": [r.name for r in runs],
        "chosen": chosen,
        "rule": sel["rule"],
        "held_out_dev_error_pct": {k: round(100 * v, 3) for k, v in sel["held_out_error"].items()},
        "test_error_pct": err,
        "dev_accuracy_pct": round(100 * dev.accuracy, 2),
        "member_test_error_pct": [round(100 * (1 - m["accuracy"]), 2) for m in test.members],
        "command": f"lenet ensemble {_runs_glob(runs)} --select --data-dir DIR",
        "reference": REFERENCE,
        "target_pct": TARGET_PCT,
        "gap_pct": round(err - TARGET_PCT, 2),
        "source": meta["source"],
        "machine": machine_line(meta),
        "date": meta["date"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_run_args(p, "runs/committee", [0, 1, 2, 3], RESULTS)
    a = p.parse_args(argv)
    runs_dir = Path(a.runs_dir)
    if not a.collect_only:
        train_all(list(MEMBERS.values()), a.seeds, a.data_dir, runs_dir, a.jobs, skip_finished=True)
    runs = finished_runs(runs_dir, MEMBERS, a.seeds) if runs_dir.is_dir() else []
    if not runs:
        raise SystemExit(f"no finished runs of {', '.join(MEMBERS)} under {runs_dir}")
    how = "python benchmarks/committee.py --data-dir DIR"
    meta = make_meta("committee", "A committee chosen on the dev split", how, regenerate=how, reference=REFERENCE)
    rows = aggregate([run_record(r) for r in runs], meta["source"], machine_line(meta), meta["date"], members=MEMBERS)
    row = committee_row(runs, a.data_dir, meta)
    print(
        f"committee: {row['test_error_pct']}% test error with {len(row['chosen'])} of {len(runs)} networks "
        f"({row['dev_accuracy_pct']}% dev accuracy); {REFERENCE}"
    )
    write_results(a.results, meta, rows=[*rows, row])
    return 0


if __name__ == "__main__":
    sys.exit(main())
