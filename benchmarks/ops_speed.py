"""Loop reference vs from-scratch im2col vs PyTorch on LeNet-5's layer shapes.

The same as ``lenet bench ops``, with the same flags (``lenet bench ops --help``); for example
``python benchmarks/ops_speed.py --quick --results results/ops.json``. What is measured and how:
:mod:`lenetlab.apps.bench_ops`.
"""

import sys

from lenetlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "ops", *sys.argv[1:]]))
