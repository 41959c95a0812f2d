"""Train ``lenet5-1998`` with SDLM, the optimiser of LeCun et al. 1998: results/lenet5-1998-sdlm.json.

    python benchmarks/sdlm_1998.py --data-dir MNIST_DIR                    (train, then collect)
    python benchmarks/sdlm_1998.py --data-dir MNIST_DIR --collect-only     (collect finished runs)

Each config of :data:`CONFIGS` is trained once per seed into ``RUNS_DIR/NAME-sSEED`` (about 20 minutes a
run on one thread); the rows are ``collect_runs.py``'s with the paper's figure and the gap to it.
"""

import argparse
import json
import sys
from pathlib import Path

from collect_runs import LOADS, add_run_args, aggregate, finished_runs, run_record, train_all
from results_io import machine_line, make_meta, write_results

#: config -> (label, the paper's test error in %, what the paper did)
CONFIGS = {
    "lenet5-1998-sdlm": (
        "LeNet-5 1998 with SDLM, no distortions (batch 32, mu 2, 20 passes)",
        0.95,
        "LeCun et al. 1998: 0.95% (SDLM, one example per step, 20 passes)",
    ),
    "lenet5-1998-sdlm-distort": (
        "LeNet-5 1998 with SDLM, affine distortions (batch 32, mu 2, 20 passes)",
        0.8,
        "LeCun et al. 1998: 0.8% (SDLM, distortions, 20 passes)",
    ),
}
RESULTS = "results/lenet5-1998-sdlm.json"


def rows_for(runs_dir: Path, meta: dict) -> list[dict]:
    """One row per config of :data:`CONFIGS` with finished runs in ``runs_dir``: collect_runs' figures
    plus the paper's and the gap."""
    runs = [run_record(d) for d in finished_runs(runs_dir, CONFIGS)]
    runs.sort(key=lambda r: list(CONFIGS).index(r["config"]))  # rows in the order of CONFIGS
    rows = aggregate(runs, meta["source"], machine_line(meta), meta["date"], meta.get("load_average"))
    loads = json.loads((runs_dir / LOADS).read_text()) if (runs_dir / LOADS).is_file() else {}
    for r in rows:
        started = [loads[f"{r['id']}-s{seed}"] for seed in r["seeds"] if f"{r['id']}-s{seed}" in loads]
        if started:
            r["load_average"] = max(started)
        label, paper, reference = CONFIGS[r["id"]]
        gap = round(r["test_error_pct"]["mean"] - paper, 2)
        where = f"{gap:.2f} points above" if gap > 0 else "at or below"
        note = f"{where} the paper's {paper}% (mean of {len(r['seeds'])} runs)"
        r.update(label=label, reference=reference, paper_test_error_pct=paper, gap_pct=gap, note=note)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_args(p, "runs/sdlm", [0, 1], RESULTS)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    a = p.parse_args(argv)
    runs_dir = Path(a.runs_dir)
    if not a.collect_only:
        train_all(a.configs, a.seeds, a.data_dir, runs_dir, a.jobs)
    how = "python benchmarks/sdlm_1998.py --data-dir DIR"
    meta = make_meta("mnist-runs", "lenet5-1998 trained with SDLM (LeCun et al. 1998, appendix C)", how, regenerate=how)
    rows = rows_for(runs_dir, meta)
    if not rows:
        raise SystemExit(f"no finished runs of {', '.join(CONFIGS)} under {runs_dir}")
    write_results(a.results, meta, rows=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
