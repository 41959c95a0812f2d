"""Inference speed of a trained LeNet-5: batch throughput and single-image latency, eager and exported.

The same as ``lenet bench infer``, with the same flags (``lenet bench infer --help``); for example
``python benchmarks/infer_speed.py --quick --results results/infer.json``. What is measured and how:
:mod:`lenetlab.apps.bench_infer`.
"""

import sys

from lenetlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "infer", *sys.argv[1:]]))
