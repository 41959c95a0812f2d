"""Training speed: a typical tutorial's per-sample PIL pipeline vs lenetlab, and time to 99% test accuracy.

``lenet bench train`` with the same flags (what is measured: :mod:`lenetlab.apps.bench_train`, and
with ``--profile`` :mod:`lenetlab.apps.bench_step`); ``--results FILE`` writes the figures with the
machine's description as a results file for the docs::

    python benchmarks/train_speed.py --data-dir DIR --compile --results results/train-speed.json
    python benchmarks/train_speed.py --profile --data-dir DIR --results results/step-profile.json
"""

import sys

from results_io import bench_script

if __name__ == "__main__":
    if "--profile" in sys.argv:
        kind, title = "bench-step-profile", "Where a batch-64 training step goes: data, forward, backward, optimiser"
    else:
        kind, title = "bench-train", "Training throughput and time to 99% test accuracy"
    bench_script("train", title, "train_speed.py", kind=kind, flags_in_regenerate=True)
