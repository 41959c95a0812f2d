"""Run one ``lenet ... --json`` command and keep its output as a results file for the docs.

    python benchmarks/record.py results/compare.json -- compare
    python benchmarks/record.py results/shipped-model.json -- \
        eval src/lenetlab/models/assets/lenet5_mnist --data-dir DIR

The file gets the command's JSON as ``data`` and a ``meta`` block (see ``results_io.py``) of kind
``lenet-COMMAND``, which selects the table renderer in ``docs_tables.py``.
"""

from __future__ import annotations

import argparse
import sys

from results_io import command_line, make_meta, run_cli_json, write_results

TITLES = {
    "compare": "Same weights, same outputs: lenet5 vs lenet5-scratch vs the loop reference",
    "eval": "Evaluation of a checkpoint",
    "export": "ONNX export",
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``FILE [--title T] -- LENET_ARGS...``, run the command, write the file."""
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: record.py FILE [--title TITLE] -- LENET_ARGS...")
    cut = argv.index("--")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file", help="results file to write, e.g. results/compare.json")
    p.add_argument("--title", default=None, help="the table's title (default: by command)")
    a = p.parse_args(argv[:cut])
    lenet_args = argv[cut + 1 :]
    if not lenet_args:
        raise SystemExit("record.py: no lenet command after --")
    data, status = run_cli_json(lenet_args)
    recorded = [x for x in lenet_args if x != "--json"]
    meta = make_meta(
        f"lenet-{lenet_args[0]}",
        a.title or TITLES.get(lenet_args[0], f"lenet {lenet_args[0]}"),
        command_line(recorded, "lenet"),
        exit_status=status,
        regenerate=command_line([a.file, "--", *recorded], "python benchmarks/record.py"),
    )
    write_results(a.file, meta, data=data)
    if status:
        print(f"note: lenet {lenet_args[0]} exited with status {status}; recorded as exit_status", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
