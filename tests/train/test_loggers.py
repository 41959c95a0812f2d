"""The run's logs (lenetlab.train.loggers): TensorBoard event files and metrics.csv written from the
same rows as metrics.jsonl, kept consistent across a resume, and a run without tensorboard."""

from __future__ import annotations

import csv
import signal
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lenetlab.cli import main
from lenetlab.inference.run import read_metrics
from lenetlab.train import RunConfig, Runner, loggers
from lenetlab.train.loggers import CsvLog, csv_text, flatten

FAST = ["--num-threads", "1", "--progress", "none"]
SCALARS = {
    "train/loss",
    "train/accuracy",
    "train/lr",
    "train/examples_per_sec",
    "epoch/train_loss",
    "epoch/train_accuracy",
    "dev/loss",
    "dev/accuracy",
    "dev/best_accuracy",
    "test/loss",
    "test/accuracy",
}


def _events(run_dir) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _csv_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`lenet train` for 2 epochs of the subset with its plots (they go into TensorBoard too)."""
    out = tmp_path_factory.mktemp("tb")
    assert main(["train", "--out-dir", str(out), "--name", "tiny", "--epochs", "2", "--log-steps", "5", *FAST]) == 0
    return out / "tiny"


def test_tensorboard_events_hold_the_scalars_images_config_and_hparams(tiny_run):
    assert list(tiny_run.glob("events.out.tfevents.*"))
    acc = _events(tiny_run)
    tags = acc.Tags()
    assert set(tags["scalars"]) == SCALARS
    rows = read_metrics(tiny_run)
    train = [r for r in rows if r["kind"] == "train"]
    got = acc.Scalars("train/loss")
    assert [e.step for e in got] == [r["step"] for r in train]
    assert [e.value for e in got] == pytest.approx([r["loss"] for r in train], rel=1e-6)
    dev = [r for r in rows if r["kind"] == "dev"]
    assert [e.value for e in acc.Scalars("dev/accuracy")] == pytest.approx([r["accuracy"] for r in dev], rel=1e-6)
    (test,) = [r for r in rows if r["kind"] == "test"]
    (event,) = acc.Scalars("test/accuracy")
    assert event.value == pytest.approx(test["accuracy"], rel=1e-6) and event.step == rows[-1]["step"]
    assert {"plots/confusion", "plots/misclassified", "plots/kernels"} <= set(tags["images"])
    assert "config/text_summary" in tags["tensors"]
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"model": "lenet5"' in text and '"epochs": 2' in text
    hparams = acc.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(hparams)
    assert b"test/accuracy" in hparams["_hparams_/experiment"] and b"lenet5" in hparams["_hparams_/session_start_info"]


def test_metrics_csv_has_one_flat_line_per_metrics_row(tiny_run):
    rows = read_metrics(tiny_run)
    table = _csv_rows(tiny_run / "metrics.csv")
    assert [r["kind"] for r in table] == [r["kind"] for r in rows]
    assert {"kind", "step", "loss", "lr", "best", "per_class.0", "per_class.9", "reason"} <= set(table[0])
    test = next(t for t in table if t["kind"] == "test")
    assert float(test["per_class.3"]) == pytest.approx(next(r for r in rows if r["kind"] == "test")["per_class"][3])
    assert table[0]["best"] == "" and next(t for t in table if t["kind"] == "dev")["best"] in ("True", "False")


def test_csv_log_widens_its_header_when_a_new_column_appears(tmp_path):
    log = CsvLog(tmp_path / "m.csv")
    log.write({"kind": "train", "step": 1, "loss": 2.0})
    log.write({"kind": "train", "step": 2, "loss": 1.5})
    assert (tmp_path / "m.csv").read_text().splitlines() == ["kind,step,loss", "train,1,2.0", "train,2,1.5"]
    log.write({"kind": "test", "step": 2, "per_class": [0.5, None], "extra": {"a": 1}})
    assert _csv_rows(tmp_path / "m.csv")[-1] == {
        "kind": "test",
        "step": "2",
        "loss": "",
        "per_class.0": "0.5",
        "per_class.1": "",
        "extra.a": "1",
    }
    assert flatten({"a": {"b": [1, 2]}}) == {"a.b.0": 1, "a.b.1": 2}
    assert csv_text([{"x": 1}, {"y": 2}]) == "x,y\n1,\n,2\n"


@pytest.mark.parametrize("stop", ["crash at step 20", "ctrl-c at the end of epoch 1"])
def test_resume_keeps_csv_and_tensorboard_consistent_with_the_jsonl(tmp_path, subset, stop):
    cfg = RunConfig(
        out_dir=str(tmp_path),
        name="r",
        epochs=3,
        log_steps=4,
        save_every=3,
        progress="none",
        plots=False,
        num_threads=1,
        deterministic=True,
    )

    def cb(event, runner, row):
        if stop.startswith("crash") and event == "train" and row["step"] == 20:
            raise RuntimeError("simulated crash")  # the rows of steps 19-20 come after the checkpoint at 18
        if stop.startswith("ctrl-c") and event == "dev":
            runner.interrupt(signal.SIGINT, None)  # what the SIGINT handler does: last.pt at step 16, its rows kept

    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        Runner(cfg, splits=subset, callbacks=[cb]).run()
    Runner.resume(tmp_path / "r", splits=subset).run()
    rows = read_metrics(tmp_path / "r")
    train_steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert train_steps == sorted(set(train_steps)) and train_steps[-1] == 48  # no row twice, none missing
    assert [r["kind"] for r in _csv_rows(tmp_path / "r" / "metrics.csv")] == [r["kind"] for r in rows]
    acc = _events(tmp_path / "r")
    assert [e.step for e in acc.Scalars("train/loss")] == train_steps  # purged events hidden, kept ones once
    assert [e.step for e in acc.Scalars("dev/loss")] == [r["step"] for r in rows if r["kind"] == "dev"] == [16, 32, 48]
    assert [e.step for e in acc.Scalars("epoch/train_loss")] == [16, 32, 48]
    assert len(acc.Scalars("test/accuracy")) == 1


def test_without_tensorboard_one_line_says_so_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    monkeypatch.setattr(loggers, "_warned", False)
    for name in ("a", "b"):
        assert main(["train", "--out-dir", str(tmp_path), "--name", name, "--epochs", "1", "--no-plots", *FAST]) == 0
    err = capsys.readouterr().err
    assert err.count('pip install "lenetlab[tensorboard]"') == 1 and "Traceback" not in err
    assert (tmp_path / "a" / "metrics.csv").is_file() and not list((tmp_path / "a").glob("events.*"))


def test_no_tensorboard_flag_writes_no_event_files(tmp_path):
    assert (
        main(
            [
                "train",
                "--out-dir",
                str(tmp_path),
                "--name",
                "quiet",
                "--epochs",
                "1",
                "--no-plots",
                "--no-tensorboard",
                *FAST,
            ]
        )
        == 0
    )
    assert not list((tmp_path / "quiet").glob("events.*")) and (tmp_path / "quiet" / "metrics.csv").is_file()
