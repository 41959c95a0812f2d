"""Loop reference vs from-scratch im2col vs PyTorch on LeNet-5's layer shapes (same as `lenet bench ops`).

Run: ``python benchmarks/ops_speed.py [--quick] [--batches 1 256] [--no-loop] [--threads N] [--json]``.
Prints forward and forward+backward times of C1, S2, C3, S4, C5 and the whole network at each batch
size, as ratios to PyTorch measured in the same run. The logic lives in :mod:`lenetlab.apps.bench_ops`.
``--results FILE`` writes the figures, with the machine's description, as a results file for the
docs (``results/ops-speed.json``; see ``benchmarks/results_io.py``) instead of printing them.
"""

from __future__ import annotations

import argparse
import sys

from lenetlab.cli import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--results", metavar="FILE", default=None)
    known, rest = p.parse_known_args(sys.argv[1:])
    if known.results is None:
        sys.exit(main(["bench", "ops", *rest]))
    from results_io import record_cli

    record_cli(
        known.results,
        "bench-ops",
        "Operators: loop reference vs im2col vs PyTorch",
        ["bench", "ops", *rest],
        regenerate=f"python benchmarks/ops_speed.py --results {known.results}",
    )
