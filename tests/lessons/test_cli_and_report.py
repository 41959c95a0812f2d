"""`lenet lesson` on the command line, and the Report's text formatting."""

from __future__ import annotations

import json

import pytest
import torch

from lenetlab.cli import main
from lenetlab.lessons import LESSONS
from lenetlab.lessons.report import Report, format_number, format_tensor


def test_cli_lists_the_lessons(capsys):
    assert main(["lesson"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in LESSONS)
    assert main(["lesson", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(LESSONS)


def test_cli_runs_a_lesson_with_options(capsys):
    assert main(["lesson", "learn-kernel", "--steps", "12", "--every", "4", "--impl", "loop"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("learn-kernel: ")
    assert "Learning a kernel" in out  # the module docstring: the idea
    assert "[ok] the learned kernel" in out
    assert "code: lenetlab/lessons/learn_kernel.py" in out


@pytest.mark.parametrize("argv", [["lesson", "pooling", "--json"], ["lesson", "--json", "pooling"]])
def test_cli_json(argv, capsys):
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["lesson"] == "pooling" and d["passed"] and d["data"]["max"] == [[4, 5], [7, 8]]


def test_cli_source_prints_the_module(capsys):
    assert main(["lesson", "channels", "--source"]) == 0
    out = capsys.readouterr().out
    assert "def corr2d_multi_in(" in out and "def run(" in out


def test_cli_failed_check_exits_1(capsys):
    assert main(["lesson", "learn-kernel", "--lr", "1"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "lesson learn-kernel: 1 check(s) failed: learned"


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["lesson", "edge-detection", "--kernel", "1,a"], "--kernel"),
        (["lesson", "learn-kernel", "--steps", "0"], "--steps"),
        (["lesson", "padding-stride", "--size", "100000"], "--size"),
        (["lesson", "shapes", "nosuchnet"], "unknown model 'nosuchnet'"),
    ],
)
def test_cli_user_errors_exit_2_with_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err


def test_cli_unknown_lesson_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["lesson", "convolution"])
    assert e.value.code == 2
    assert "invalid choice: 'convolution'" in capsys.readouterr().err


def test_format_tensor():
    assert format_tensor(torch.tensor([[1.0, -1.0], [0.0, 10.0]]), indent="") == " 1 -1\n 0 10"
    assert format_tensor(torch.tensor([0.5, -0.00001]), decimals=2, indent="") == "[0.50, 0.00]"  # no "-0.00"
    assert format_tensor(torch.arange(8.0).reshape(2, 2, 2), indent="") == "[0]\n0 1\n2 3\n[1]\n4 5\n6 7"
    assert format_number(3.2e17) == "3.2000e+17" and format_number(float("nan")) == "nan"


def test_report_records_what_it_shows():
    r = Report("demo")
    r.show("k", "a kernel", torch.tensor([[1.0, -1.0]]))
    r.show("tiny", "a tiny difference", 2.5e-8)
    r.check("c", "a claim", True)
    assert r.data == {"k": [[1.0, -1.0]], "tiny": 2.5e-8}
    assert "a tiny difference: < 1e-05" in r.text() and "[ok] a claim" in r.text()  # the exact value is in .data
    assert r.to_dict()["passed"]
    assert str(r) == r.text()
    with pytest.raises(ValueError, match="used twice"):
        r.show("k", "again", 1)
    r.check("d", "a false claim", False)
    assert not r.passed and "[FAILED] a false claim" in r.text()
    r.show("diverged", "a loss that blew up", float("inf"))
    assert json.loads(json.dumps(r.to_dict(), allow_nan=False))["data"]["diverged"] == "inf"  # valid JSON
