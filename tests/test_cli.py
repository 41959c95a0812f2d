"""The ``lenet`` command line as a whole: ``python -m lenetlab`` and the help text of every sub-command."""

from __future__ import annotations

import argparse
import subprocess
import sys

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
