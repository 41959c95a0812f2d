"""The documentation: a short README, every docs table equal to its results file, no machine paths or
internal names, working relative links; and the tools that write the results files.

A failing table check means a page and its ``results/`` file disagree: run
``python benchmarks/docs_tables.py`` to regenerate the marked tables (see docs/development.md).
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import collect_runs  # noqa: E402  (benchmarks/ is not a package)
import docs_tables  # noqa: E402
import results_io  # noqa: E402

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RESULTS = sorted((REPO / "results").glob("*.json"))
MACHINE_PATHS = re.compile(r"/work/|\.\./shared")
INTERNAL_NAMES = re.compile(r"seed ?0[0-9]{2}|the seeds", re.I)


def _page_id(p: Path) -> str:
    return p.relative_to(REPO).as_posix()


# ----------------------------------------------------------------------------- README
def test_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move details to docs/"


def test_readme_shows_the_ci_test_command_and_where_tests_find_mnist():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    command = ci[ci.index("# The README's test command:") + 1].strip()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert command in readme
    assert "LENETLAB_TEST_MNIST" in readme
    assert "LENETLAB_TEST_MNIST" in (REPO / "docs" / "development.md").read_text(encoding="utf-8")


def test_licence_files():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "lenetlab developers" in text
    assert 'license = "MIT AND CC-BY-SA-3.0"' in (REPO / "pyproject.toml").read_text()
    assert (REPO / "src/lenetlab/data/assets/MNIST-SUBSET-LICENSE.txt").is_file()
    assert "src/lenetlab/data/assets/MNIST-SUBSET-LICENSE.txt" in (REPO / "README.md").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- tables
@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_marked_table_matches_its_results_file(page):
    text = page.read_text(encoding="utf-8")
    expected = docs_tables.update_text(text, page)
    if expected != text:
        diff = "\n".join(
            list(difflib.unified_diff(text.splitlines(), expected.splitlines(), "page", "from results", lineterm=""))[
                :40
            ]
        )
        pytest.fail(f"{_page_id(page)} disagrees with its results files; run python benchmarks/docs_tables.py\n{diff}")


def test_markers_are_balanced():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # examples in code blocks
        opened, regions = text.count("<!-- table:"), len(docs_tables.marked_specs(text))
        assert opened == regions == text.count("<!-- end table -->"), _page_id(page)


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_every_results_file_has_its_meta_and_is_shown(path):
    body = results_io.load_results(path)
    meta = body["meta"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", meta["date"])
    assert meta["hardware"]["cpu"] and meta["hardware"]["cores"] >= 1
    assert meta["python"] and meta["torch"] and meta["source"] and meta["command"]
    assert meta["kind"] in docs_tables.RENDERERS
    rel = path.relative_to(REPO).as_posix()
    shown = {spec.split()[0] for page in PAGES for spec in docs_tables.marked_specs(page.read_text(encoding="utf-8"))}
    assert rel in shown, f"{rel} is not shown by any <!-- table: ... --> marker"
    for row in body.get("rows", []):
        if "command" in row or "source" in row:
            assert row.get("command") and row.get("source"), f"{rel}: a row without its command or source"
    assert not MACHINE_PATHS.search(path.read_text(encoding="utf-8")), f"{rel} holds a machine path"


def test_glance_figures_come_from_results_files():
    for what, _figure, source, page in docs_tables.glance_rows():
        assert (REPO / source).is_file() and (REPO / page).is_file(), what


# ----------------------------------------------------------------------------- words and links
@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_no_machine_paths_or_internal_names(page):
    text = page.read_text(encoding="utf-8")
    bad = sorted({m.group(0) for rx in (MACHINE_PATHS, INTERNAL_NAMES) for m in rx.finditer(text)})
    assert not bad, f"{_page_id(page)} contains {bad}"


def test_package_text_names_sources_as_readers_know_them():
    """Code, CLI text and shipped configs say NNDL, d2l, LeCun et al. 1998, never the internal numbers."""
    files = [
        f
        for f in sorted((REPO / "src" / "lenetlab").rglob("*"))
        if f.suffix in {".py", ".yaml", ".txt", ".md", ".html", ".js"}
    ]
    assert len(files) > 50
    bad = [
        f"{_page_id(f)}:{n}: {line.strip()}"
        for f in files
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if INTERNAL_NAMES.search(line)
    ]
    assert not bad, "\n".join(bad)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.+)$", text, re.M)}


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_relative_links_point_at_existing_files_and_headings(page):
    for target in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{_page_id(page)}: broken link {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{_page_id(page)}: no heading #{anchor} in {path or 'this page'}"


# ----------------------------------------------------------------------------- results tools
def test_command_line_hides_machine_paths():
    argv = ["--data-dir", "/data/mnist", "--results", "r.json", "--quick", "--data-dir=/x", "--results=r2.json"]
    assert results_io.command_line(argv, "prog") == "prog --data-dir DIR --quick --data-dir=DIR"


def _fake_run(folder: Path, name: str, dataset: str, test_acc: float, devs: list[float], train_time: float) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(
        json.dumps({"name": name, "dataset": dataset, "model": "lenet5", "num_threads": 1, "seed": 0})
    )
    rows = [{"kind": "train", "step": 1, "loss": 1.0, "train_time": train_time / 2}]
    rows += [{"kind": "dev", "step": i, "accuracy": a, "best": True} for i, a in enumerate(devs)]
    rows += [{"kind": "epoch", "step": 2, "train_time": train_time}, {"kind": "test", "accuracy": test_acc, "n": 10000}]
    (folder / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_collect_runs_writes_the_results_files_from_a_runs_folder(tmp_path):
    runs = tmp_path / "runs" / "table"
    _fake_run(runs / "lenet5-s0", "lenet5-s0", "mnist", 0.9920, [0.990, 0.9915], 90.0)
    _fake_run(runs / "lenet5-s1", "lenet5-s1", "mnist", 0.9926, [0.9925], 100.0)
    _fake_run(runs / "nndl-subset-s0", "nndl-subset-s0", "mnist-subset", 0.80, [0.79], 1.0)
    (runs / "lenet5-s2").mkdir()  # an unfinished run: no metrics.jsonl, ignored
    members = [
        {"checkpoint": str(runs / f"lenet5-s{i}"), "model": "lenet5", "accuracy": a}
        for i, a in enumerate((0.9920, 0.9926))
    ]
    (runs / "ensemble-lenet5.test.json").write_text(json.dumps({"members": members, "accuracy": 0.9935}))
    (runs / "ensemble-lenet5.dev.json").write_text(json.dumps({"members": members, "accuracy": 0.9950}))
    results, ensembles = tmp_path / "mnist.json", tmp_path / "ensembles.json"
    old_row = {
        "id": "lenet5-1998",
        "label": "kept",
        "model": "lenet5-1998",
        "seeds": [0],
        "test_error_pct": {"mean": 1.07, "min": 1.07, "max": 1.07, "sd": None},
        "command": "c",
        "source": "s",
    }
    words = {
        "id": "lenet5",
        "label": "NNDL LeNet-5",
        "note": "a note",
        "model": "lenet5",
        "seeds": [9],
        "test_error_pct": {"mean": 9.0, "min": 9.0, "max": 9.0, "sd": None},
        "command": "c",
        "source": "s",
    }
    results_io.write_results(results, results_io.make_meta("mnist-runs", "t", "c"), rows=[words, old_row])

    rows, ens = collect_runs.collect(runs, results, ensembles)

    by = {r["id"]: r for r in results_io.load_results(results)["rows"]}
    assert [r["id"] for r in rows] == ["lenet5", "lenet5-1998", "nndl-subset"]
    r = by["lenet5"]
    assert r["label"] == "NNDL LeNet-5" and r["note"] == "a note"  # the words are kept, the figures replaced
    assert r["seeds"] == [0, 1] and r["test_error_pct"]["per_seed"] == [0.8, 0.74]
    assert r["test_error_pct"]["mean"] == 0.77 and r["test_error_pct"]["sd"] == 0.04
    assert r["dev_accuracy_pct"] == pytest.approx(99.2)
    assert r["train_time_s"] == {"mean": 95.0, "min": 90.0, "max": 100.0}
    assert r["command"] == "lenet train --config lenet5 --data-dir DIR --num-threads 1 --seed N (N = 0..1)"
    assert by["lenet5-1998"]["label"] == "kept"  # not rerun: kept as it was
    assert by["nndl-subset"]["command"] == "lenet train --config nndl-subset --num-threads 1 --seed 0"
    assert by["nndl-subset"]["source"].startswith("measured")
    e = results_io.load_results(ensembles)
    assert e["meta"]["kind"] == "mnist-ensembles"
    assert e["rows"][0]["test_error_pct"] == 0.65 and e["rows"][0]["dev_error_pct"] == 0.5
    written = results_io.load_results(results)
    assert written["meta"]["source"].startswith("measured at several commits")  # rows of two origins
    caption = "\n".join(docs_tables.caption("results/mnist.json", written, REPO / "docs"))
    assert "`lenet5-1998`: s, on" in caption and "measured" in caption
    # and the docs render what was written
    table = "\n".join(docs_tables.render_mnist_runs(written, None))
    assert "| NNDL LeNet-5 | `lenet5` | **0.77%** | 0.74–0.80%, sd 0.04 | 2 | 99.20% | 95 s (90–100) |" in table
    assert "0.65%" in "\n".join(docs_tables.render_ensembles(e, None))


def _step_path(name: str, data: float, model_step: float, base_total: float) -> dict:
    phases = {"data": data, "forward": 2.0, "backward": 2.5, "optimizer": 0.25}
    total = sum(phases.values())
    return {
        "name": name,
        "phases_ms": phases,
        "total_ms": total,
        "phase_sum_ms": total,
        "examples_per_sec": 64 / total * 1000,
        "model_step_ms": model_step,
        "vs_baseline": base_total / total,
        "cap_free_data": base_total / model_step,
    }


def test_step_profile_renders_the_phases_the_cap_and_the_operators():
    paths = [_step_path("baseline", 3.25, 5.0, 8.0), _step_path("lenetlab", 0.25, 4.5, 8.0)]
    data = {
        "dataset": "mnist",
        "train_examples": 55000,
        "batch_size": 64,
        "threads": 1,
        "steps": 300,
        "rounds": 3,
        "phases": ["data", "forward", "backward", "optimizer"],
        "paths": paths,
        "ops": {
            "path": "lenetlab",
            "steps": 30,
            "profiled_ms_per_step": 5.0,
            "ops": [{"op": "aten::convolution_backward", "self_ms_per_step": 2.0, "share": 0.4, "calls_per_step": 3.0}],
        },
    }
    text = "\n".join(docs_tables.RENDERERS["bench-step-profile"]({"meta": {}, "data": data}, None))
    assert "| path (batch 64, 1 thread) | data ms | forward ms | backward ms | optimiser ms | total ms |" in text
    assert (
        "| baseline: a typical tutorial's per-sample PIL pipeline + DataLoader | 3.25 | 2.00 | 2.50 | 0.25 | "
        "**8.00** | 8,000 | 1.00× | 5.00 | 1.60× |"
    ) in text
    assert (
        "| lenetlab (tensor-resident batches, as the Runner's) | 0.25 | 2.00 | 2.50 | 0.25 | **5.00** | 12,800 | "
        "1.60× | 4.50 | 1.78× |"
    ) in text
    assert "cap with free data: the baseline's total divided by it." in text and "target" not in text
    assert "| `aten::convolution_backward` | 2.00 | 40.0% | 3 |" in text


def _torch_threads(n: int | None = None) -> int:
    """torch's CPU thread count, set to ``n`` first when given."""
    import torch

    if n is not None:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def test_train_speed_profile_writes_a_results_file_the_docs_render(tmp_path, monkeypatch):
    """benchmarks/train_speed.py --profile --results FILE: kind bench-step-profile, the command's JSON as data."""
    out = tmp_path / "step-profile.json"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "train_speed.py",
            "--profile",
            "--dataset",
            "mnist-subset",
            "--steps",
            "3",
            "--no-levers",
            "--results",
            str(out),
        ],
    )
    threads = _torch_threads()
    try:
        runpy.run_path(str(BENCH / "train_speed.py"), run_name="__main__")
    finally:
        _torch_threads(threads)
    body = results_io.load_results(out)
    assert body["meta"]["kind"] == "bench-step-profile" and body["meta"]["exit_status"] == 0
    assert body["meta"]["command"] == "lenet bench train --profile --dataset mnist-subset --steps 3 --no-levers"
    assert body["meta"]["regenerate"].startswith("python benchmarks/train_speed.py --profile --dataset mnist-subset")
    assert [p["name"] for p in body["data"]["paths"]] == ["baseline", "lenetlab"]
    text = "\n".join(docs_tables.RENDERERS["bench-step-profile"](body, None))
    assert text.count("\n| ") >= 4 and "top aten operators, lenetlab" in text


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_results_table_script_runs_and_collects(tmp_path):
    """benchmarks/results_table.sh for one cheap row (the embedded subset, one seed), end to end."""
    shutil.copytree(REPO / "benchmarks", tmp_path / "benchmarks")  # configs come from the package
    env = dict(os.environ, CONFIGS="nndl-subset", LENET=f"{sys.executable} -m lenetlab.cli", PYTHON=sys.executable)
    if (REPO / "src").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        ["bash", "benchmarks/results_table.sh", str(tmp_path / "no-mnist-needed"), "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = results_io.load_results(tmp_path / "results" / "mnist.json")["rows"]
    assert [r["id"] for r in rows] == ["nndl-subset"] and rows[0]["seeds"] == [0]
    metrics = (tmp_path / "runs" / "table" / "nndl-subset-s0" / "metrics.jsonl").read_text().splitlines()
    (test,) = [r for r in map(json.loads, metrics) if r["kind"] == "test"]
    assert rows[0]["test_error_pct"]["mean"] == round(100 * (1 - test["accuracy"]), 2)  # the run's own figure


def test_tests_find_mnist_through_the_environment(monkeypatch):
    spec = importlib.util.spec_from_file_location("_lenetlab_conftest", REPO / "tests" / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    monkeypatch.delenv("LENETLAB_TEST_MNIST", raising=False)
    assert conftest.mnist_test_dir() == (REPO.parent / "shared" / "data" / "mnist").resolve()
    monkeypatch.setenv("LENETLAB_TEST_MNIST", "/somewhere/mnist")
    assert conftest.mnist_test_dir() == Path("/somewhere/mnist").resolve()
    monkeypatch.setenv("LENETLAB_TEST_MNIST", "data/mnist")
    assert conftest.mnist_test_dir() == (REPO / "data" / "mnist").resolve()


@pytest.mark.parametrize("name", ["ops-speed", "train-speed", "step-profile", "infer-speed"])
def test_lenet_bench_prints_the_tables_the_docs_show(name):
    """One builder per report (lenetlab.benchfmt): the terminal text holds every docs table's header and rows."""
    from lenetlab import benchfmt
    from lenetlab.textfmt import plain

    body = results_io.load_results(REPO / "results" / f"{name}.json")
    text = benchfmt.text(body["meta"]["kind"], body["data"])
    for view in benchfmt.REPORTS[body["meta"]["kind"]][1]:
        for line in benchfmt.markdown(body["meta"]["kind"], body["data"], view):
            if line.startswith("| "):
                cells = [plain(c.strip()) for c in line.strip("|").split(" | ")]
                assert all(c in text for c in cells), (view, line)
