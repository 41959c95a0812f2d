"""Every optional part fails in one line: with an extra's packages hidden, each command that needs it
prints ``error: WHAT needs the EXTRA extra: pip install "lenetlab[EXTRA]" (...)`` and exits with status 2,
and training without TensorBoard says so once and goes on, without pointing at TensorBoard afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from lenetlab.errors import LenetlabError, MissingExtra, require

SERVE = (
    "anyio",
    "fastapi",
    "orjson",
    "pydantic",
    "starlette",
    "uvicorn",
    "python_multipart",
    "multipart",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "prometheus_client",
)
SERVE_LINE = 'needs the serve extra: pip install "lenetlab[serve]"'

# A meta-path finder that makes importing the hidden top-level packages fail as if they were not installed.
HIDE = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
from lenetlab.cli import main
sys.exit(main(ARGV))
"""


def _lenet(hidden: tuple[str, ...], argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = HIDE.replace("HIDDEN", repr(set(hidden))).replace("ARGV", repr(argv))
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["serve", "--port", "0"], "lenet serve"),
        (["export", "missing.pt", "--out", "m.onnx"], "ONNX export (lenet export --format onnx)"),
        (["predict", "--onnx", "m.onnx", "digit.png"], "running an ONNX model (--onnx)"),
        (["bench", "infer", "--quick"], "lenet bench infer's ONNX Runtime row (--no-onnx skips it)"),
    ],
    ids=["serve", "export-onnx", "predict-onnx", "bench-infer"],
)
def test_a_command_that_needs_the_serve_extra_says_so_in_one_line(argv, what, tmp_path):
    digit = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(digit).line([(14, 5), (14, 22)], fill=255, width=3)
    digit.save(tmp_path / "digit.png")
    out = _lenet(SERVE, argv, tmp_path)
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {what} {SERVE_LINE} (") and line.endswith(" is not installed)"), line
    assert out.returncode == 2 and out.stdout == ""


def test_training_without_tensorboard_says_so_once_and_never_points_at_it(tmp_path):
    out = _lenet(
        ("tensorboard",),
        [
            "train",
            "--epochs",
            "1",
            "--no-plots",
            "--num-threads",
            "1",
            "--progress",
            "none",
            "--name",
            "r",
            "--out-dir",
            str(tmp_path),
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (line,) = [line for line in out.stderr.splitlines() if "tensorboard" in line.lower()]
    assert line == (
        "TensorBoard logs skipped: writing them needs the tensorboard extra: pip install "
        '"lenetlab[tensorboard]" (tensorboard is not installed); metrics.jsonl and metrics.csv are '
        "written as usual"
    )
    assert "tensorboard" not in out.stdout.lower() and "metrics.csv)" in out.stdout
    assert not list((tmp_path / "r").glob("events.*"))


def test_require_returns_the_module_or_raises_one_line_that_is_also_an_import_error():
    assert require(("json", "csv"), "serve", "x").__name__ == "json"
    with pytest.raises(MissingExtra) as info:
        require(("json", "lenetlab_no_such_module"), "serve", "lenet serve")
    assert isinstance(info.value, LenetlabError) and isinstance(info.value, ImportError)
    assert str(info.value) == (
        'lenet serve needs the serve extra: pip install "lenetlab[serve]" (lenetlab_no_such_module is not installed)'
    )
