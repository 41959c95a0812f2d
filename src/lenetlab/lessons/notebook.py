"""A lesson as a Jupyter notebook (``lenet lesson NAME --notebook OUT.ipynb``), written as nbformat 4 JSON
directly (no Jupyter package): its idea as markdown, the install cell the repository's notebooks open
with, the lesson's code, and a cell running it as ``lenet lesson NAME`` does and asserting its checks."""

import ast

from lenetlab.lessons import get_lesson

INSTALL = (
    "try:\n    import lenetlab\nexcept ImportError:  # a fresh kernel without lenetlab (a hosted notebook): "
    'install it from a clone\n    clone = "lenetlab"  # the folder holding the clone of the repository\n'
    "    %pip install -q -e {clone}\n    import lenetlab"
)


def _cell(kind: str, source: str) -> dict:
    cell = {"cell_type": kind, "metadata": {}, "source": source.strip("\n")}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _without_docstring(code: str) -> str:
    """``code`` from the line after its module docstring (the notebook shows the docstring as markdown)."""
    docstring = ast.parse(code).body[0]
    return "\n".join(code.splitlines()[docstring.end_lineno :])


def lesson_notebook(name: str, **options) -> dict:
    """Lesson ``name`` as an nbformat-4 notebook dict, ``options`` (defaults for any left out) written
    into the call that runs it."""
    lesson = get_lesson(name)
    values = {o.name: o.default for o in lesson.options} | options
    arguments = "".join(f", {key}={value!r}" for key, value in values.items())
    run = (
        f"import torch\nfrom lenetlab.lessons.report import Report\n\n"
        f"report = Report({name!r})\ntorch.manual_seed(0)\ntorch.set_num_threads(1)\n"
        f"run(report{arguments})\nprint(report.text())\n"
        f"assert report.passed, [check for check, ok in report.checks.items() if not ok]"
    )
    cells = [
        _cell(
            "markdown",
            f"# Lesson `{name}`: {lesson.summary}\n\n{lesson.idea}\n\n**How long:** a few seconds on a "
            f"CPU. Written by `lenet lesson {name} --notebook`; change the code below and run it again.",
        ),
        _cell("code", INSTALL),
        _cell("markdown", f"## The lesson's code (`lenetlab/lessons/{lesson.module}.py`)"),
        _cell("code", _without_docstring(lesson.source())),
        _cell("markdown", "## Run it: what it shows, and its checks"),
        _cell("code", run),
    ]
    return {
        "cells": cells,
        "nbformat": 4,
        "nbformat_minor": 4,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
    }
