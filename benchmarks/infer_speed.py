"""Inference speed of a trained LeNet-5: batch throughput and single-image latency, eager and exported.

The same as ``lenet bench infer`` with the same flags (``lenet bench infer --help``); what is measured
and how: :mod:`lenetlab.apps.bench_infer`. ``--results FILE`` writes the figures, with the machine's
description, as a results file for the docs (see ``benchmarks/results_io.py``)::

    python benchmarks/infer_speed.py --results results/infer-speed.json
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
        sys.exit(main(["bench", "infer", *rest]))
    from results_io import record_cli

    record_cli(
        known.results,
        "bench-infer",
        "Inference: batch throughput and single-image latency",
        ["bench", "infer", *rest],
        regenerate=f"python benchmarks/infer_speed.py --results {known.results}",
    )
