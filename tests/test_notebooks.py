"""Every notebook in ``notebooks/`` runs top to bottom in a fresh kernel, and its ``.ipynb`` is the one
jupytext makes from its percent-format ``.py`` source (``jupytext --sync notebooks/*.py`` after an edit).

Each notebook ends with assertions on what it taught, so a notebook that runs but stops teaching the
truth fails here too. The kernel runs in ``notebooks/`` with one torch thread per process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.py"))
TIMEOUT = 240  # seconds per cell: a cell training on a loaded 2-core machine


def cells(nb) -> list[tuple[str, str]]:
    """A notebook's ``(cell type, source)`` pairs, outputs and metadata left out."""
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def execute(path: Path, cwd: Path):
    """Run the notebook at ``path`` in a fresh python3 kernel in ``cwd``; return the executed notebook
    and the seconds it took.
    A cell that raises fails with the cell's traceback (nbclient's CellExecutionError)."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env={**os.environ, "OMP_NUM_THREADS": "1"})
    return nb, time.perf_counter() - start


def test_every_notebook_has_its_ipynb():
    assert SOURCES, f"no notebooks in {NOTEBOOKS}"
    stray = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if not p.with_suffix(".py").is_file())
    assert not stray, f"notebooks without a .py source: {stray}"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_ipynb_in_sync_with_its_source(source: Path):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} missing: run jupytext --sync notebooks/{source.name}"
    assert cells(nbformat.read(ipynb, as_version=4)) == cells(jupytext.read(source)), (
        f"{ipynb.name} differs from {source.name}: run jupytext --sync notebooks/{source.name}"
    )


def test_every_notebook_teaches_and_checks():
    """The shape each notebook keeps: what and how long first, the guarded install, assertions last."""
    for source in SOURCES:
        nb = jupytext.read(source)
        first, install, last = nb.cells[0], nb.cells[1], nb.cells[-1]
        assert first.cell_type == "markdown" and "**How long:**" in first.source, source.name
        assert install.source.startswith("try:\n    import lenetlab\nexcept ImportError:"), source.name
        assert "%pip install" in install.source, source.name
        assert last.cell_type == "code" and "assert " in last.source, source.name


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_runs(source: Path, record_property):
    _, seconds = execute(source.with_suffix(".ipynb"), NOTEBOOKS)
    record_property("seconds", round(seconds, 1))  # in --junitxml reports; -s prints it too
    print(f"{source.stem}: {seconds:.1f} s")


@pytest.mark.slow
def test_lesson_as_notebook_executes(tmp_path: Path, capsys):
    from lenetlab.cli import main

    out = tmp_path / "x.ipynb"
    assert main(["lesson", "edge-detection", "--notebook", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].source.startswith("# Lesson `edge-detection`")
    assert "def run(report" in nb.cells[3].source
    executed, _ = execute(out, tmp_path)
    shown = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert "Cross-correlation of a 3x3 input with a 2x2 kernel" in shown


def test_lesson_notebook_keeps_the_options_given():
    from lenetlab.lessons.notebook import lesson_notebook

    cells = lesson_notebook("edge-detection", kernel="1;-1")["cells"]
    assert "run(report, kernel='1;-1')" in cells[-1]["source"]


def test_lesson_notebook_bad_destination_is_one_line(tmp_path: Path, capsys):
    from lenetlab.cli import main

    (tmp_path / "file").write_text("x")
    for out, message in ((tmp_path, "is a folder"), (tmp_path / "file" / "x.ipynb", "is a file, not a folder")):
        assert main(["lesson", "edge-detection", "--notebook", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --notebook") and message in err and len(err.splitlines()) == 1, err
