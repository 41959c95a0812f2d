"""The ``lenet`` command line as a whole: ``python -m lenetlab`` and the help text of every sub-command."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from lenetlab.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, path=("lenet",)):
    """``(command path, parser)`` for ``parser`` and every sub-parser below it (``lenet bench train`` too)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def test_python_m_lenetlab_is_the_lenet_command():
    proc = subprocess.run([sys.executable, "-m", "lenetlab", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == build_parser().format_help()
    assert proc.stdout.startswith("usage: lenet ") and "lenetlab: LeNet-5" in proc.stdout


def test_no_help_text_shows_an_empty_default():
    """Unset values and switches say nothing; real defaults (0 included) are shown."""
    parsers = dict(_parsers(build_parser()))
    assert ("lenet", "bench", "train") in parsers and ("lenet", "train") in parsers and len(parsers) >= 20
    for path, parser in parsers.items():
        text = " ".join(parser.format_help().split())
        for empty in ("(default: None)", "(default: False)", "(default: ==SUPPRESS==)"):
            assert empty not in text, f"{' '.join(path)} --help shows {empty}"
    data = " ".join(parsers[("lenet", "data")].format_help().split())
    assert "seed of the train/dev split (default: 0)" in data
    train = " ".join(parsers[("lenet", "train")].format_help().split())
    assert "--nesterov, --no-nesterov Nesterov momentum (SGD) --weight-decay" in train
    assert "learning rate (default: 0.002)" in train and "(init, shuffling, augmentation) (default: 0)" in train


#: Runs ``lenet ARGS`` in this process and fails (exit 9) if torch got imported by the time it ends.
NO_TORCH = (
    "import sys\nfrom lenetlab.cli import main\n"
    "try:\n    status = main(sys.argv[1:])\nexcept SystemExit as e:\n    status = e.code\n"
    "sys.exit(9 if 'torch' in sys.modules else status)\n"
)


def test_importing_the_cli_loads_no_torch():
    code = "import sys, lenetlab.cli; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["train", "--help"],
        ["predict", "--help"],
        ["lesson"],
        ["lesson", "--json"],
        ["lesson", "pooling", "--help"],
    ],
)
def test_help_version_and_the_lesson_list_load_no_torch(argv):
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"lenet {' '.join(argv)}: exit {proc.returncode} (9: torch imported) {proc.stderr}"
    assert proc.stdout


def test_options_may_come_among_file_arguments(tmp_path):
    """Every command with variadic file arguments takes its options anywhere among them."""
    p = build_parser()
    args = p.parse_args(["predict", "a.png", "--json", "b.png", "--top-k", "1", "c.png"])
    assert args.images == ["a.png", "b.png", "c.png"] and args.json and args.top_k == 1
    args = p.parse_args(["plot", "r1", "--out", "x.png", "r2"])
    assert args.runs == ["r1", "r2"] and args.out == "x.png"
    args = p.parse_args(["ensemble", "a.pt", "--split", "dev", "b.pt", "--json"])
    assert args.checkpoints == ["a.pt", "b.pt"] and args.split == "dev" and args.json
    args = p.parse_args(["serve", "r1", "--port", "0", "r2"])
    assert args.checkpoint == ["r1", "r2"] and args.port == 0
    assert p.parse_args(["serve"]).checkpoint == []
    with pytest.raises(SystemExit):
        p.parse_args(["predict", "--json"])  # still at least one image
