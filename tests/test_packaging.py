"""The wheel: a non-editable install carries the shipped configs, the embedded MNIST subset with its
licence beside it, and the project's licence in its metadata (built offline with the installed setuptools);
installed into a fresh virtual environment it trains, predicts, exports and serves; ``python -m build``
makes an sdist and a wheel that ``twine check`` passes."""

from __future__ import annotations

import ast
import email
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]


def _version() -> str:
    """``lenetlab.__version__`` as written in the source, the one place the version is defined."""
    tree = ast.parse((REPO / "src" / "lenetlab" / "__init__.py").read_text(encoding="utf-8"))
    (value,) = [n.value.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "__version__"]
    return value


def _copy_tree(dest: Path) -> Path:
    """What a build needs: the sources, pyproject.toml, README.md and LICENSE (the build leaves build/ and
    *.egg-info behind, so it never runs in the repository)."""
    shutil.copytree(REPO / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (the build leaves build/ and *.egg-info behind)."""
    tmp = tmp_path_factory.mktemp("wheel")
    tree = _copy_tree(tmp / "tree")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ".",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp / "dist"),
        ],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (whl,) = (tmp / "dist").glob("lenetlab-*.whl")
    return whl


@pytest.mark.timeout(30)
def test_wheel_ships_configs_subset_licences_and_metadata(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {
        n.removeprefix("lenetlab/configs/").removesuffix(".yaml") for n in names if n.startswith("lenetlab/configs/")
    }
    shipped = {p.stem for p in (REPO / "src" / "lenetlab" / "configs").glob("*.yaml")}
    assert configs == shipped and {"fast-lenet5", "lenet5", "nndl-subset-quirk"} <= configs
    assert {
        "lenetlab/data/assets/mnist_subset.npz",
        "lenetlab/data/assets/MNIST-SUBSET-LICENSE.txt",
        "lenetlab/models/assets/lenet5_mnist/best.pt",
        "lenetlab/models/assets/lenet5_mnist/metrics.jsonl",
        "lenetlab/models/assets/lenet5_mnist/pretrained/model.safetensors",
        "lenetlab/serve/static/index.html",
    } <= names
    subset_licence = zipfile.ZipFile(wheel).read("lenetlab/data/assets/MNIST-SUBSET-LICENSE.txt").decode()
    assert "CC BY-SA 3.0" in subset_licence and "Yann LeCun" in subset_licence and "Corinna Cortes" in subset_licence
    (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    meta = email.message_from_bytes(zipfile.ZipFile(wheel).read(meta_name))
    assert meta["License-Expression"] == "MIT AND CC-BY-SA-3.0"
    assert meta.get_all("License-File") == ["LICENSE", "src/lenetlab/data/assets/MNIST-SUBSET-LICENSE.txt"]
    assert meta["Version"] == _version() and meta["Keywords"] and len(meta.get_all("Classifier")) >= 10
    (licence,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")]
    assert zipfile.ZipFile(wheel).read(licence) == (REPO / "LICENSE").read_bytes()
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "configs/"))]


@pytest.mark.timeout(30)
def test_installed_wheel_loads_a_shipped_config_by_name(wheel, tmp_path):
    """After a non-editable install, ``--config NAME`` finds the config inside the installed package."""
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    code = (
        "import lenetlab, lenetlab.train.config as c; print(lenetlab.__file__); "
        "print(c.load_config_file('fast-lenet5').model, c.config_path('nndl-subset-quirk'))"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    module, line = out.stdout.splitlines()
    assert Path(module).is_relative_to(target)
    assert line == f"lenet5-fast {target / 'lenetlab' / 'configs' / 'nndl-subset-quirk.yaml'}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int, proc: subprocess.Popen, timeout: float = 60) -> dict:
    """``GET /health`` of the server ``proc`` once it answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.2)
    raise AssertionError("lenet serve did not answer /health in time")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_wheel_installed_in_a_fresh_venv_trains_predicts_exports_and_serves(wheel, tmp_path):
    """A non-editable install: lenetlab comes from the wheel, torch and the rest from this environment
    (the new venv reads this one's site-packages through a .pth file, so nothing is downloaded)."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    bin_dir = env_dir / "bin"
    python = bin_dir / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    here = [p for p in sys.path if p.endswith("site-packages")]
    (site / "zz-lenetlab-test-deps.pth").write_text("\n".join(here) + "\n")  # after the venv's own packages
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"

    def lenet(*args: str) -> str:
        out = subprocess.run(
            [bin_dir / "lenet", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90
        )
        assert out.returncode == 0, (args, out.stderr[-2000:])
        return out.stdout

    where = subprocess.run(
        [python, "-c", "import lenetlab; print(lenetlab.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(site), where
    assert lenet("--version").strip() == f"lenetlab {_version()}"
    lenet("train", "--epochs", "1", "--name", "w", "--no-plots", "--no-tensorboard")
    digit = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(digit).line([(14, 5), (14, 22)], fill=255, width=3)  # a 1
    digit.save(tmp_path / "digit.png")
    assert "digit.png" in lenet("predict", "--checkpoint", "runs/w", "digit.png")
    lenet("export", "runs/w", "--format", "safetensors", "--out", "exported")
    assert (tmp_path / "exported" / "model.safetensors").is_file()
    port = _free_port()
    server = subprocess.Popen(
        [bin_dir / "lenet", "serve", "exported", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _health(port, server)["status"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_python_m_build_makes_an_sdist_and_a_wheel_that_twine_check_passes(tmp_path):
    pytest.importorskip("build")
    pytest.importorskip("twine")
    tree = _copy_tree(tmp_path / "tree")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "-o", str(tmp_path / "dist"), str(tree)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    built = sorted(p.name for p in (tmp_path / "dist").iterdir())
    assert built == [f"lenetlab-{_version()}-py3-none-any.whl", f"lenetlab-{_version()}.tar.gz"]
    dists = [str(p) for p in (tmp_path / "dist").iterdir()]
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *dists], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_readme_has_no_link_that_breaks_on_a_package_index():
    """README.md is the index page's description: a link relative to the repository would lead nowhere."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    relative = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]
    assert not relative, relative
    assert 'pip install "lenetlab[serve]"' in text
