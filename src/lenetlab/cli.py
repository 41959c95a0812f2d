"""The ``lenet`` command: argument parsing only; every subcommand calls one library function.

Run ``lenet --help`` or ``lenet COMMAND --help``. User errors (:class:`LenetlabError`) print one
line ``error: ...`` and exit with status 2; Ctrl-C exits with 130.
Also runnable as ``python -m lenetlab.cli`` (that is what torchrun launches).
"""

from __future__ import annotations

import argparse
import sys

from lenetlab.errors import LenetlabError

FORMATTER = argparse.ArgumentDefaultsHelpFormatter


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON")


# ----------------------------------------------------------------------------- data
def _add_data(sub) -> None:
    p = sub.add_parser("data", help="summarise a dataset (sizes, shape, classes, mean/std, files)",
                       formatter_class=FORMATTER)
    p.add_argument("--dataset", default="mnist-subset", help="dataset name or path")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files (default: cache dir)")
    p.add_argument("--download", action="store_true", help="download missing files from the public mirrors")
    p.add_argument("--verify", action="store_true", help="verify the files' content checksums")
    _json_flag(p)
    p.set_defaults(func=_run_data)


def _run_data(args) -> int:
    from lenetlab.data.summary import print_summary

    print_summary(args.dataset, data_dir=args.data_dir, download=args.download, verify=args.verify,
                  as_json=args.json)
    return 0


# ----------------------------------------------------------------------------- parser
SECTIONS = [_add_data]


def build_parser() -> argparse.ArgumentParser:
    """The full ``lenet`` argument parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(prog="lenet", description=__doc__.splitlines()[0], formatter_class=FORMATTER)
    from lenetlab import __version__

    parser.add_argument("--version", action="version", version=f"lenetlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SECTIONS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lenet`` console script; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LenetlabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
