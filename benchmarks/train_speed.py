"""Training speed: a typical tutorial's per-sample PIL pipeline vs lenetlab, and time to 99% test accuracy.

The same as ``lenet bench train`` with the same flags (``lenet bench train --help``); what is measured
and how: :mod:`lenetlab.apps.bench_train`, and with ``--profile`` (where a batch-64 step goes):
:mod:`lenetlab.apps.bench_step`. ``--results FILE`` writes the figures, with the machine's
description, as a results file for the docs (see ``benchmarks/results_io.py``)::

    python benchmarks/train_speed.py --data-dir DIR --compile --results results/train-speed.json
    python benchmarks/train_speed.py --profile --data-dir DIR --results results/step-profile.json
"""

from __future__ import annotations

import argparse
import sys

from lenetlab.cli import main

#: results kind and table title, without and with --profile
KINDS = {
    False: ("bench-train", "Training throughput and time to 99% test accuracy"),
    True: ("bench-step-profile", "Where a batch-64 training step goes: data, forward, backward, optimiser"),
}

if __name__ == "__main__":
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--results", metavar="FILE", default=None)
    known, rest = p.parse_known_args(sys.argv[1:])
    if known.results is None:
        sys.exit(main(["bench", "train", *rest]))
    from results_io import command_line, record_cli

    kind, title = KINDS["--profile" in rest]
    record_cli(
        known.results,
        kind,
        title,
        ["bench", "train", *rest],
        regenerate=f"{command_line(rest, 'python benchmarks/train_speed.py')} --results {known.results}",
    )
