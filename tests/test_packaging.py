"""The wheel: a non-editable install carries the shipped configs, the embedded MNIST subset with its
licence beside it, and the project's licence in its metadata (built offline with the installed setuptools)."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (the build leaves build/ and *.egg-info behind)."""
    tmp = tmp_path_factory.mktemp("wheel")
    tree = tmp / "tree"
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, tree / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(tmp / "dist")], cwd=tree, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (whl,) = (tmp / "dist").glob("lenetlab-*.whl")
    return whl


@pytest.mark.timeout(30)
def test_wheel_ships_configs_subset_licences_and_metadata(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {n.removeprefix("lenetlab/configs/").removesuffix(".yaml") for n in names
               if n.startswith("lenetlab/configs/")}
    shipped = {p.stem for p in (REPO / "src" / "lenetlab" / "configs").glob("*.yaml")}
    assert configs == shipped and {"fast-lenet5", "lenet5", "nndl-subset-quirk"} <= configs
    assert {"lenetlab/data/assets/mnist_subset.npz", "lenetlab/data/assets/MNIST-SUBSET-LICENSE.txt",
            "lenetlab/models/assets/lenet5_mnist/best.pt", "lenetlab/models/assets/lenet5_mnist/metrics.jsonl",
            "lenetlab/models/assets/lenet5_mnist/pretrained/model.safetensors",
            "lenetlab/serve/static/index.html"} <= names
    subset_licence = zipfile.ZipFile(wheel).read("lenetlab/data/assets/MNIST-SUBSET-LICENSE.txt").decode()
    assert "CC BY-SA 3.0" in subset_licence and "Yann LeCun" in subset_licence and "Corinna Cortes" in subset_licence
    (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    meta = email.message_from_bytes(zipfile.ZipFile(wheel).read(meta_name))
    assert meta["License"] == "MIT" and meta["License-File"] == "LICENSE"
    (licence,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")]
    assert zipfile.ZipFile(wheel).read(licence) == (REPO / "LICENSE").read_bytes()
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "configs/"))]


@pytest.mark.timeout(30)
def test_installed_wheel_loads_a_shipped_config_by_name(wheel, tmp_path):
    """After a non-editable install, ``--config NAME`` finds the config inside the installed package."""
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                           str(target), str(wheel)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    code = ("import lenetlab, lenetlab.train.config as c; print(lenetlab.__file__); "
            "print(c.load_config_file('fast-lenet5').model, c.config_path('nndl-subset-quirk'))")
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    module, line = out.stdout.splitlines()
    assert Path(module).is_relative_to(target)
    assert line == f"lenet5-fast {target / 'lenetlab' / 'configs' / 'nndl-subset-quirk.yaml'}"
