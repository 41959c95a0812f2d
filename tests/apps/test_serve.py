"""`lenet serve RUN1 RUN2 ...`: one served model per source, named after its run, with the run's test accuracy."""

from __future__ import annotations

import json
import shutil

from lenetlab.apps.serve import served_models
from lenetlab.cli import main
from lenetlab.inference.predictor import default_checkpoint
from lenetlab.inference.run import Run


def _run(folder, test_accuracy: float | None):
    """A run directory as `lenet train` leaves it (config, metrics with a test row, best.pt)."""
    folder.mkdir()
    shutil.copy(default_checkpoint(), folder / "best.pt")
    (folder / "config.json").write_text(json.dumps({"model": "lenet5", "dataset": "mnist-subset"}))
    rows = [{"kind": "dev", "step": 1, "epoch": 1.0, "accuracy": 0.5, "best": True}]
    if test_accuracy is not None:
        rows.append({"kind": "test", "step": 1, "epoch": 1.0, "accuracy": test_accuracy})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_served_models_are_named_after_their_runs(tmp_path):
    a, b = _run(tmp_path / "runA", 0.91), _run(tmp_path / "runB", None)
    models = served_models([str(a), str(b / "best.pt"), str(default_checkpoint()), str(a)])
    assert [m.name for m in models] == ["runA", "runB", "lenet5_mnist", "runA-2"]
    # runB has no test row yet: no accuracy; the shipped lenet5 is a run too, measured by its own metrics
    shipped = Run(default_checkpoint().parent).test_accuracy()
    assert shipped > 0.99
    assert [m.test_accuracy for m in models] == [0.91, None, shipped, 0.91]
    assert [m.dataset for m in models] == ["mnist-subset", "mnist-subset", "mnist", "mnist-subset"]
    assert all(m.explainer is not None for m in models)


def test_no_source_serves_the_shipped_lenet5():
    (m,) = served_models([])
    assert m.name == "lenet5" and m.test_accuracy == Run(default_checkpoint().parent).test_accuracy() > 0.99


def test_a_missing_source_is_one_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nope" in err and len(err.splitlines()) == 1
