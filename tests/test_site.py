"""The documentation site (mkdocs.yml): docs/ and the API reference drawn from the docstrings build
offline with warnings as errors, and the reference shows no reST markup."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_site_builds_strict_offline(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    pages = {p: p.read_text(encoding="utf-8") for p in site.rglob("*.html")}
    assert not [p for p, text in pages.items() if "fonts.googleapis" in text]  # nothing fetched when read
    for name in ("models", "train", "inference", "data", "plots", "ops"):
        text = re.sub(r"<[^>]+>", "", pages[site / "reference" / name / "index.html"])
        assert not re.search(r":(func|class|mod|data|meth|attr):|``", text), name
    assert 'id="lenetlab.models.create"' in pages[site / "reference" / "models" / "index.html"]
    assert (site / "repo" / "results" / "mnist.json").is_file()  # linked from results.md, copied along
