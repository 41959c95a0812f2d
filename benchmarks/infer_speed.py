"""Inference speed of a trained LeNet-5: batch throughput and single-image latency, eager and exported.

``lenet bench infer`` with the same flags (what is measured: :mod:`lenetlab.apps.bench_infer`);
``--results FILE`` writes the figures with the machine's description as a results file for the docs::

    python benchmarks/infer_speed.py --results results/infer-speed.json
"""

from results_io import bench_script

if __name__ == "__main__":
    bench_script("infer", "Inference: batch throughput and single-image latency", "infer_speed.py")
