"""Loop reference vs from-scratch im2col vs PyTorch on LeNet-5's layer shapes (same as `lenet bench ops`).

Run: ``python benchmarks/ops_speed.py [--quick] [--batches 1 256] [--no-loop] [--threads N] [--json]``.
Prints forward and forward+backward times of C1, S2, C3, S4, C5 and the whole network at each batch
size, as ratios to PyTorch measured in the same run. The logic lives in :mod:`lenetlab.ops.bench`.
"""

from __future__ import annotations

import sys

from lenetlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "ops", *sys.argv[1:]]))
