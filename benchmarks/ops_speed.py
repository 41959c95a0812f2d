"""Loop reference vs from-scratch im2col vs PyTorch on LeNet-5's layer shapes.

``lenet bench ops`` with the same flags (``[--quick] [--batches 1 256] [--no-loop] [--threads N] [--json]``;
what is measured: :mod:`lenetlab.apps.bench_ops`); ``--results FILE`` writes the figures with the
machine's description as a results file for the docs (``results/ops-speed.json``).
"""

from results_io import bench_script

if __name__ == "__main__":
    bench_script("ops", "Operators: loop reference vs im2col vs PyTorch", "ops_speed.py")
