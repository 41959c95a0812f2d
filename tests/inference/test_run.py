"""lenetlab.inference.run: one Run object reads a run directory; the data description travels in checkpoints."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from lenetlab.cli import main
from lenetlab.errors import CheckpointError
from lenetlab.inference.run import BEST, LAST, Run, checkpoint_path, load_data
from lenetlab.models.checkpoint import checkpoint_data, data_description, load_checkpoint, save_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import collect_runs


def _rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_checkpoint_is_best_else_last(tmp_path, digit_ckpt):
    run = tmp_path / "r"
    run.mkdir()
    assert Run(run).checkpoint is None and checkpoint_path(run) == run
    shutil.copy(digit_ckpt, run / LAST)
    assert Run(run).checkpoint == run / LAST and checkpoint_path(run) == run / LAST
    shutil.copy(digit_ckpt, run / BEST)
    assert Run(run).checkpoint == run / BEST and Run(run).checkpoints == [run / BEST, run / LAST]
    assert Run.of(run / LAST).path == run and Run.of(tmp_path) is None


def test_best_dev_is_the_row_marked_best_for_runs_and_benchmarks(tmp_path):
    """Under --monitor dev_loss the best model is not the most accurate: one rule for every reader."""
    run = tmp_path / "cfg-s0"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "lenet5", "dataset": "mnist", "num_threads": 1}))
    _rows(
        run / "metrics.jsonl",
        [
            {"kind": "dev", "step": 1, "epoch": 1.0, "accuracy": 0.97, "loss": 0.05, "best": True},
            {"kind": "dev", "step": 2, "epoch": 2.0, "accuracy": 0.98, "loss": 0.07, "best": False},
            {"kind": "test", "step": 1, "epoch": 1.0, "accuracy": 0.96, "checkpoint": "best.pt", "train_time": 2.0},
        ],
    )
    assert Run(run).best_dev() == 0.97 and Run(run).info().best_dev == 0.97
    record = collect_runs.run_record(run)
    assert record["dev_accuracy"] == 0.97 and record["test_accuracy"] == 0.96 and record["seed"] == 0
    assert Run(run).test_accuracy() == 0.96 and Run(run).test_accuracy(LAST) is None


def test_a_damaged_metrics_file_never_raises(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"kind": "dev"\n{broken\n{"kind": "x"}\n')
    info = Run(run).info()
    assert info.status == "damaged" and info.problems
    assert Run(run).test_accuracy() is None and Run(run).best_dev() is None


def test_data_description_is_written_and_derived_for_older_checkpoints(tmp_path, digit_ckpt):
    config = {
        "dataset": "some/folder",
        "data_dir": None,
        "val_size": 40,
        "image_size": 28,
        "label_column": "y",
        "normalize": "stats",
        "resize": "pad",
        "digit_width": 0,
    }
    ck = {k: v for k, v in load_checkpoint(digit_ckpt).items() if k != "data"}
    new = save_checkpoint(tmp_path / "new.pt", {**ck, "config": config})
    written = load_checkpoint(new)["data"]
    assert written == data_description(config)
    assert written["kind"] == "folder" and written["split"] == "carved" and written["dev_size"] == 40
    assert written["split_seed"] == 0 and written["label_column"] == "y" and written["normalize"] == "stats"
    assert checkpoint_data({**ck, "config": config}) == written  # a checkpoint written before the field
    assert data_description({"dataset": "mnist-subset"})["split"] == "fixed"
    assert data_description({"dataset": "x/mnist.pkl.gz"})["kind"] == "nndl-file"
    assert data_description({}, "mnist")["dataset"] == "mnist"  # an exported folder's top-level dataset


def test_load_data_rebuilds_the_same_splits(subset):
    desc = data_description({"dataset": "mnist-subset"})
    again = load_data(desc)
    assert torch.equal(again.dev.x, subset.dev.x) and torch.equal(again.test.y, subset.test.y)


def test_a_data_field_that_is_not_a_dict_is_refused(tmp_path, digit_ckpt):
    bad = save_checkpoint(tmp_path / "bad.pt", {**load_checkpoint(digit_ckpt), "data": "mnist"})
    with pytest.raises(CheckpointError, match="field 'data'"):
        load_checkpoint(bad)
    seed = save_checkpoint(tmp_path / "seed.pt", {**load_checkpoint(digit_ckpt), "data": {"split_seed": "x"}})
    with pytest.raises(CheckpointError, match="field 'data': field 'split_seed' must be int"):
        load_checkpoint(seed)
    with pytest.raises(CheckpointError, match="field 'dev_size' must be int or null"):
        checkpoint_data({"config": {"dataset": "mnist", "val_size": "5"}})


def test_eval_of_a_run_directory_uses_its_best_checkpoint_and_its_data(tmp_path, digit_ckpt, capsys):
    run = tmp_path / "r"
    run.mkdir()
    shutil.copy(digit_ckpt, run / BEST)
    assert main(["eval", str(run), "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "test" and out["n"] == 200 and out["accuracy"] > 0.8


def test_a_finished_run_that_kept_only_best_pt_is_finished(tmp_path, digit_ckpt):
    shipped = Path(__file__).resolve().parents[2] / "src" / "lenetlab" / "models" / "assets"
    (info,) = [r.info() for r in Run.all(shipped)]
    assert (info.name, info.status, info.problems) == ("lenet5_mnist", "finished", [])
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "lenet5", "dataset": "mnist-subset"}))
    _rows(run / "metrics.jsonl", [{"kind": "end", "step": 1, "reason": "completed"}])
    assert Run(run).info().problems == ["no best.pt"]  # finished, but without the model it kept
    shutil.copy(digit_ckpt, run / BEST)
    assert Run(run).info().status == "finished"
    (run / "metrics.jsonl").write_text("")  # unfinished: it needs last.pt to resume from
    assert Run(run).info().problems == ["no last.pt"]
