"""The import-linter contract in pyproject.toml: every package imports only the layers below it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_layer_contract_holds():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is not installed (pip install -e '.[test]')"
    res = subprocess.run(
        [exe, "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_the_contract_lists_every_package():
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layered = {name.strip() for c in config["contracts"] for layer in c.get("layers", []) for name in layer.split("|")}
    src = REPO / "src" / "lenetlab"
    packages = {f"lenetlab.{p.name}" for p in src.iterdir() if (p / "__init__.py").is_file()}
    modules = {f"lenetlab.{p.stem}" for p in src.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert packages | modules <= layered, f"not placed in a layer: {sorted((packages | modules) - layered)}"
