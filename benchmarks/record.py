"""Run one ``lenet ... --json`` command and keep its output as a results file for the docs.

    python benchmarks/record.py results/compare.json -- compare
    python benchmarks/record.py results/shipped-model.json -- \
        eval src/lenetlab/models/assets/lenet5_mnist --data-dir DIR

The file's kind is ``lenet-COMMAND``, which picks the table renderer in ``docs_tables.py``.
"""

import argparse
import sys

from results_io import command_line, record_cli

TITLES = {
    "compare": "Same weights, same outputs: lenet5 vs lenet5-scratch vs the loop reference",
    "eval": "Evaluation of a checkpoint",
    "export": "ONNX export",
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``FILE [--title T] -- LENET_ARGS...``, run the command, write the file."""
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv or argv[-1] == "--":
        raise SystemExit("usage: record.py FILE [--title TITLE] -- LENET_ARGS...")
    cut = argv.index("--")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file", help="results file to write, e.g. results/compare.json")
    p.add_argument("--title", default=None, help="the table's title (default: by command)")
    a = p.parse_args(argv[:cut])
    lenet = [x for x in argv[cut + 1 :] if x != "--json"]
    title = a.title or TITLES.get(lenet[0], f"lenet {lenet[0]}")
    regenerate = command_line([a.file, "--", *lenet], "python benchmarks/record.py")
    record_cli(a.file, f"lenet-{lenet[0]}", title, lenet, regenerate=regenerate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
