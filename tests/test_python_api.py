"""docs/python-api.md's examples run: every ```python block, in order, in one namespace, in an empty folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

PAGE = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a Markdown page, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.slow
def test_every_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    namespace: dict = {"__name__": "python_api"}
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"{PAGE.name} block {i + 1}", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "60000" in out and "torch.Size([1, 10])" in out
    assert (tmp_path / "runs" / "first" / "best.pt").is_file()
