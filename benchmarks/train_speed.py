"""Training speed: a typical tutorial's per-sample PIL pipeline vs lenetlab, and time to 99% test accuracy.

The same as ``lenet bench train``, with the same flags (``lenet bench train --help``); for example
``python benchmarks/train_speed.py --quick --results results/train.json``. What is measured and how:
:mod:`lenetlab.apps.bench_train`.
"""

import sys

from lenetlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "train", *sys.argv[1:]]))
