"""`lenet runs`: finished, interrupted, running and damaged runs listed correctly; sort, filters, JSON;
never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from lenetlab.apps.runs import format_seconds, select_runs
from lenetlab.cli import main
from lenetlab.inference.run import Run, lock_holder
from lenetlab.train.rundir import RunLock

FAST = ["--num-threads", "1", "--progress", "none", "--no-plots", "--no-tensorboard"]
OLD = time.time() - 3600  # an hour ago: not being written any more


def _age(run_dir, when=OLD) -> None:
    for p in run_dir.iterdir():
        os.utime(p, (when, when))


def _drop_rows(run_dir, kinds) -> None:
    path = run_dir / "metrics.jsonl"
    rows = [r for r in path.read_text().splitlines() if json.loads(r)["kind"] not in kinds]
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """A folder with a finished run, an interrupted one, three damaged ones and a non-run folder."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "--out-dir", str(root), "--name", "fin", "--epochs", "2", *FAST]) == 0
    assert (
        main(
            [
                "train",
                "--out-dir",
                str(root),
                "--name",
                "fast",
                "--epochs",
                "1",
                "--model",
                "lenet5-bn",
                "--max-steps",
                "5",
                *FAST,
            ]
        )
        == 0
    )
    shutil.copytree(root / "fin", root / "stopped")  # killed during epoch 2: no test/end rows
    _drop_rows(root / "stopped", {"test", "end"})
    shutil.copytree(root / "fin", root / "badjson")
    with open(root / "badjson" / "metrics.jsonl", "r+") as f:
        lines = f.read().splitlines()
        lines[1] = "{not json"
        f.seek(0)
        f.truncate()
        f.write("\n".join(lines) + "\n")
    shutil.copytree(root / "fin", root / "badckpt")
    (root / "badckpt" / "best.pt").write_bytes(b"PK\x03\x04 truncated")
    shutil.copytree(root / "fin", root / "noconfig")
    (root / "noconfig" / "config.json").unlink()
    (root / "notes").mkdir()  # not a run: ignored
    (root / "notes" / "readme.txt").write_text("hello")
    for d in root.iterdir():
        _age(d)
    return root


def test_statuses_and_figures(runs_root):
    runs = {r.name: r for r in [r.info() for r in Run.all(runs_root)]}
    assert set(runs) == {"fin", "fast", "stopped", "badjson", "badckpt", "noconfig"}
    fin = runs["fin"]
    assert (fin.status, fin.model, fin.dataset, fin.epochs, fin.max_epochs, fin.steps) == (
        "finished",
        "lenet5",
        "mnist-subset",
        2,
        2,
        32,
    )
    rows = [json.loads(r) for r in (runs_root / "fin" / "metrics.jsonl").read_text().splitlines()]
    assert fin.best_dev == max(r["accuracy"] for r in rows if r["kind"] == "dev")
    assert [fin.test] == [r["accuracy"] for r in rows if r["kind"] == "test"] and fin.test > 0.5
    assert fin.train_time > 0 and fin.examples_per_sec > 0
    assert fin.reason == "completed" and fin.problems == []
    fast = runs["fast"]
    assert (fast.status, fast.model, fast.steps, fast.epochs, fast.reason) == (
        "finished",
        "lenet5-bn",
        5,
        0.31,
        "max_steps",
    )
    stopped = runs["stopped"]
    assert stopped.status == "interrupted" and stopped.test is None and stopped.best_dev == fin.best_dev
    assert runs["badjson"].status == "damaged" and runs["badjson"].problems == ["metrics.jsonl:2: not a JSON object"]
    assert runs["badckpt"].status == "damaged" and runs["badckpt"].problems[0].startswith("best.pt: unreadable")
    assert runs["noconfig"].status == "damaged" and runs["noconfig"].problems == ["no config.json"]
    assert runs["noconfig"].model is None


def test_cli_table_lists_every_run_with_what_is_wrong(runs_root, capsys):
    assert main(["runs", str(runs_root)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["run", "model", "dataset", "status", "epochs"] and err == ""
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert list(by_name) == sorted(by_name)  # default: by name
    assert " finished " in by_name["fin"] and " 2/2 " in by_name["fin"]
    assert "interrupted" in by_name["stopped"] and f"lenet train --resume {runs_root / 'stopped'}" in by_name["stopped"]
    assert "damaged" in by_name["badjson"] and "metrics.jsonl:2: not a JSON object" in by_name["badjson"]
    assert "max steps" in by_name["fast"] and "notes" not in by_name


def test_sort_filter_and_json(runs_root, capsys):
    assert main(["runs", str(runs_root), "--model", "lenet5-bn", "--json"]) == 0
    (only,) = json.loads(capsys.readouterr().out)
    assert only["name"] == "fast" and only["status"] == "finished" and only["path"] == str(runs_root / "fast")
    assert main(["runs", str(runs_root), "--dataset", "fashion-mnist"]) == 0
    assert "no runs in" in capsys.readouterr().out
    runs = [r.info() for r in Run.all(runs_root)]
    by_test = [r.name for r in select_runs(runs, "test")]
    with_test = sorted((r for r in runs if r.test is not None), key=lambda r: -r.test)
    assert by_test[: len(with_test)] == [r.name for r in with_test] and by_test[-1] in ("stopped", "noconfig")
    by_time = select_runs(runs, "time")
    assert by_time[0].name == "fast"  # 5 steps train for the shortest time
    assert main(["runs", str(runs_root), "--sort", "dev"]) == 0


def test_a_run_being_written_shows_as_running(runs_root, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(runs_root / "stopped", live)
    assert Run(live).info().status == "interrupted" and not Run(live).running
    lock = RunLock(live).acquire()  # what a training process holds while it writes the run
    try:
        assert Run(live).running and Run(live).info().status == "running"
        assert lock_holder(live) == os.getpid()
    finally:
        lock.release()
    assert Run(live).info().status == "interrupted"
    (live / ".lock").write_text("999999999\n")  # a stale lock file left by a killed process
    assert Run(live).info().status == "interrupted" and lock_holder(live) is None
    fresh = tmp_path / "fresh"  # a run that just started: config.json and last.pt, no metrics yet
    fresh.mkdir()
    shutil.copy(runs_root / "fin" / "config.json", fresh)
    shutil.copy(runs_root / "fin" / "last.pt", fresh)
    with RunLock(fresh):
        info = Run(fresh).info()
    assert info.status == "running" and info.epochs == 0 and info.problems == []


def test_missing_folder_and_bad_sort_are_one_line_errors(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["runs", "--sort", "speed"])
    assert "invalid choice" in capsys.readouterr().err


def test_one_run_directory_lists_itself(runs_root, capsys):
    assert main(["runs", str(runs_root / "fin")]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("fin ")


def test_format_seconds():
    assert [format_seconds(s) for s in (None, 3.21, 125, 7500)] == ["-", "3.2s", "2m05s", "2h05m"]
