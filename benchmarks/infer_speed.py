"""Inference speed of a trained LeNet-5: batch throughput and single-image latency, eager and exported.

    .venv/bin/python benchmarks/infer_speed.py [--checkpoint RUN_DIR_OR_FILE] [--quick] [--threads N]

Same as ``lenet bench infer``; see :mod:`lenetlab.analysis.bench`. Default checkpoint: the
``lenet5`` shipped in ``src/lenetlab/models/assets/``.
"""

from __future__ import annotations

import argparse

from lenetlab.analysis.bench import run_infer_bench


def main(argv=None) -> int:
    """Parse the flags and run :func:`lenetlab.analysis.bench.run_infer_bench`."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="checkpoint or run directory (default: the shipped demo lenet5)")
    p.add_argument("--quick", action="store_true", help="fewer repeats and calls")
    p.add_argument("--threads", type=int, default=1, help="torch / ONNX Runtime threads (0: torch's default)")
    p.add_argument("--batch-size", type=int, default=1000, help="batch size for the throughput figure")
    p.add_argument("--calls", type=int, default=None, help="single-image calls for the latency percentiles")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime variant")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = p.parse_args(argv)
    run_infer_bench(checkpoint=a.checkpoint, quick=a.quick, threads=a.threads or None, batch_size=a.batch_size,
                    calls=a.calls, onnx=not a.no_onnx, as_json=a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
