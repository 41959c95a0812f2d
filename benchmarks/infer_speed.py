"""Inference speed of a trained LeNet-5: batch throughput and single-image latency, eager and exported.

    .venv/bin/python benchmarks/infer_speed.py [--checkpoint RUN_DIR_OR_FILE] [--quick] [--threads N]
    .venv/bin/python benchmarks/infer_speed.py --results results/infer-speed.json   # the docs' results file

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
    p.add_argument("--results", metavar="FILE", default=None,
                   help="write the figures and the machine's description to this results file (see results_io.py)")
    a = p.parse_args(argv)
    res = run_infer_bench(checkpoint=a.checkpoint, quick=a.quick, threads=a.threads or None,
                          batch_size=a.batch_size, calls=a.calls, onnx=not a.no_onnx, as_json=a.json)
    if a.results:
        import sys

        from results_io import command_line, make_meta, relative_to_repo, write_results

        args = sys.argv[1:] if argv is None else argv
        meta = make_meta("bench-infer", "Inference: batch throughput and single-image latency",
                         command_line(args, "python benchmarks/infer_speed.py"),
                         regenerate=f"python benchmarks/infer_speed.py --results {a.results}")
        write_results(a.results, meta, data=dict(res, checkpoint=relative_to_repo(res["checkpoint"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
