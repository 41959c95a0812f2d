"""Hostile inputs (issue 31, items 3-5 and 8): numbers, the project's own JSON and text files, weight files.

Every input is built in the test. Each must give a one-line error (exit 2, no traceback) or the
correct result; a property-based test drives every numeric flag of the CLI with arbitrary numbers.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import types

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lenetlab.cli import build_parser, check_numeric_flags, main
from lenetlab.errors import CheckpointError, ConfigError, DataError, LenetlabError
from lenetlab.fileio import MAX_DEPTH, dumps, loads, read_json
from lenetlab.models import load_checkpoint, load_pretrained, save_checkpoint
from lenetlab.train.config import RunConfig, config_overrides, number_problem

DEEP = "[" * 100_000 + "]" * 100_000


def _strict(text: str):
    """``text`` parsed by a JSON reader as strict as a browser's JSON.parse."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(n in err for n in needles), (needles, err)
    return err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run of 2 steps (config.json, metrics.jsonl, best.pt, last.pt), made once."""
    out = tmp_path_factory.mktemp("runs")
    assert (
        main(
            [
                "train",
                "--out-dir",
                str(out),
                "--name",
                "good",
                "--max-steps",
                "2",
                "--num-threads",
                "1",
                "--no-plots",
                "--progress",
                "none",
                "--no-tensorboard",
            ]
        )
        == 0
    )
    return out / "good"


def _copy_run(run_dir, dest):
    import shutil

    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns(".lock"))
    return dest


# ----------------------------------------------------------------------------- one rule for numbers
@pytest.mark.parametrize(
    "argv, field",
    [
        (["--lr", "nan"], "'lr'"),
        (["--momentum", "nan"], "'momentum'"),
        (["--sdlm-mu", "nan"], "'sdlm_mu'"),
        (["--gamma", "nan"], "'gamma'"),
        (["--label-smoothing", "2"], "'label_smoothing'"),
        (["--seed", "1e23"], "'seed'"),
        (["--num-threads", "100000"], "'num_threads'"),
        (["--image-size", "100000"], "'image_size'"),
        (["--epochs", "inf"], "'epochs'"),
        (["--lr=-1e-3"], "'lr'"),
        (["--model", "lenet5-modern", "--model-kwargs", '{"width": 100000}'], "GB"),
    ],
)
def test_train_numbers_out_of_range_are_one_line(argv, field, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *argv]) == 2
    _one_line_error(capsys, field)
    assert not (tmp_path / "runs").exists()  # refused before anything was created


@pytest.mark.parametrize(
    "argv, option",
    [
        (["eval", "x.pt", "--batch-size", "0"], "--batch-size"),
        (["eval", "x.pt", "--batch-size", "-5"], "--batch-size"),
        (["predict", "x.png", "--top-k", "nan"], "--top-k"),
        (["serve", "--port", "70000"], "--port"),
        (["serve", "--max-upload-mb", "inf"], "--max-upload-mb"),
        (["data", "--seed", "1e30"], "--seed"),
        (["data", "--image-size", "100000"], "--image-size"),
        (["compare", "--limit", "1e30"], "--limit"),
        (["bench", "infer", "--calls", "0"], "--calls"),
        (["bench", "ops", "--batches", "1", "1e9"], "--batches"),
        (["profile", "lenet5", "--input-size", "1", "1e7", "32"], "--input-size"),
    ],
)
def test_other_commands_numbers_go_through_the_same_rule(argv, option, capsys):
    assert main(argv) == 2
    _one_line_error(capsys, option)


def test_config_files_get_the_same_rule(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = {
        "nan.yaml": ("lr: .nan\n", "field 'lr'"),
        "big.json": ('{"seed": 1e23}', "field 'seed'"),
        "smooth.yaml": ("label_smoothing: 2\n", "field 'label_smoothing'"),
        "literal.json": ('{"lr": NaN}', "NaN is not a JSON number"),
        "deep.json": (DEEP, f"nested more than {MAX_DEPTH} deep"),
        "width.json": ('{"model": "lenet5-modern", "model_kwargs": {"width": 100000}}', "GB"),
    }
    for name, (text, needle) in cases.items():
        (tmp_path / name).write_text(text)
        assert main(["train", "--config", str(tmp_path / name)]) == 2, name
        _one_line_error(capsys, name, needle)
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert main(["train", "--config", str(tmp_path / "latin1.yaml")]) == 2
    _one_line_error(capsys, "latin1.yaml", "not UTF-8")


def test_every_range_is_documented_and_every_number_field_has_one():
    from dataclasses import fields

    from lenetlab.train.config import _field_type

    doc = (__import__("pathlib").Path(__file__).parents[1] / "docs" / "training.md").read_text()
    for f in fields(RunConfig):
        if _field_type(RunConfig, f.name)[0] in (int, float):
            lo, hi = f.metadata["range"]
            assert f"`--{f.name.replace('_', '-')}` | {lo} | {hi} |" in doc, f.name


# ----------------------------------------------------------------------------- --resume
def test_resume_refuses_a_nan_lr_and_optimizer_state_of_the_wrong_shape(run_dir, tmp_path, capsys):
    for name in ("nanlr", "shape"):
        run = _copy_run(run_dir, tmp_path / name)
        ck = load_checkpoint(run / "last.pt", training=True)
        if name == "nanlr":
            ck["config"]["lr"] = float("nan")
        else:
            ck["optimizer"]["state"][0]["exp_avg"] = torch.zeros(3)
        save_checkpoint(run / "last.pt", ck)  # with a valid checksum: the field checks must catch it
        assert main(["train", "--resume", str(run)]) == 2
        _one_line_error(capsys, str(run / "last.pt"), "field 'lr'" if name == "nanlr" else "'exp_avg' of parameter 0")


# ----------------------------------------------------------------------------- one reader for the project's JSON
@pytest.mark.parametrize(
    "text, needle",
    [
        (DEEP, "nested more than"),
        ('{"step": Infinity}', "Infinity"),
        ('{"train_time": NaN}', "NaN"),
        ('{"step": ' + "9" * 400 + "}", "400 digits"),
        ('{"loss": 1e400}', "overflows"),
        ("[1, 2", "not valid JSON"),
    ],
)
def test_loads_refuses_what_is_not_strict_json_in_one_line(text, needle):
    with pytest.raises(DataError) as e:
        loads(text, "f.json")
    assert str(e.value).startswith("f.json: ") and needle in str(e.value) and "\n" not in str(e.value)


def test_read_json_checks_utf8_and_types(tmp_path):
    (tmp_path / "a.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(DataError, match="not UTF-8"):
        read_json(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('{"names": "0123456789", "n": true}')
    with pytest.raises(DataError, match="field 'names' must be list, got str"):
        read_json(tmp_path / "b.json", {"names": list})
    with pytest.raises(DataError, match="field 'n' must be int, got bool"):
        read_json(tmp_path / "b.json", {"n": int})
    with pytest.raises(DataError, match="missing field 'x'"):
        read_json(tmp_path / "b.json", {"x": int}, required=("x",))


def test_dumps_writes_strict_json():
    import numpy as np

    text = dumps({"a": float("inf"), "b": [float("nan"), 1.5, {"c": -float("inf")}], "d": "NaN"})
    assert _strict(text) == {"a": None, "b": [None, 1.5, {"c": None}], "d": "NaN"}
    assert _strict(dumps({"x": np.float32("nan"), "y": np.float32(2.5)}, default=float)) == {"x": None, "y": 2.5}


def test_damaged_metrics_and_configs_list_as_damaged_and_never_stop_lenet_runs(run_dir, tmp_path, capsys):
    root = tmp_path / "runs"
    _copy_run(run_dir, root / "good")
    damage = {
        "deep": ("metrics.jsonl", DEEP + "\n{}\n"),
        "inf": ("metrics.jsonl", '{"step": Infinity}\n{}\n'),
        "nan": ("metrics.jsonl", '{"kind": "train", "train_time": NaN}\n{}\n'),
        "digits": ("metrics.jsonl", '{"step": ' + "9" * 400 + "}\n{}\n"),
        "deepconfig": ("config.json", DEEP),
        "badtype": ("config.json", '{"model": 5}'),
        "latin1": ("config.json", b'{"model": "caf\xe9"}'),
    }
    for name, (file, text) in damage.items():
        run = _copy_run(run_dir, root / name)
        (run / file).write_bytes(text if isinstance(text, bytes) else text.encode())
    assert main(["runs", str(root), "--json"]) == 0
    rows = {r["name"]: r for r in _strict(capsys.readouterr().out)}
    assert rows["good"]["status"] == "finished" and rows["good"]["problems"] == []
    for name in damage:
        assert rows[name]["status"] == "damaged" and len(rows[name]["problems"]) >= 1, rows[name]
    assert "nested more than" in rows["deep"]["problems"][0] and "Infinity" in rows["inf"]["problems"][0]
    assert "field 'model' must be str" in rows["badtype"]["problems"][0]
    assert "not UTF-8" in rows["latin1"]["problems"][0]
    assert main(["runs", str(root)]) == 0  # the table too
    assert "Traceback" not in capsys.readouterr().err


def test_plot_of_damaged_metrics_and_bad_out(run_dir, tmp_path, capsys):
    run = _copy_run(run_dir, tmp_path / "r")
    (run / "metrics.jsonl").write_text('{"step": Infinity}\n{}\n')
    other = _copy_run(run_dir, tmp_path / "o")
    assert main(["plot", str(run), str(other), "--out", str(tmp_path / "c.png")]) == 2
    _one_line_error(capsys, "Infinity")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "x.png").mkdir()
    assert main(["plot", str(other), "--out", str(tmp_path / "afile"), "--device", "cpu"]) == 2
    _one_line_error(capsys, "--out", "is a file")
    assert main(["plot", str(other), str(run_dir), "--out", str(tmp_path / "x.png")]) == 2
    _one_line_error(capsys, "--out", "not a folder")


def test_serve_refuses_a_run_whose_config_has_wrong_types_at_start(run_dir, tmp_path):
    from lenetlab.apps.serve import served_model

    run = _copy_run(run_dir, tmp_path / "r")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "dataset": {"a": 1}}))
    with pytest.raises(LenetlabError, match="field 'dataset' must be str") as e:
        served_model(str(run))
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- every weight file verified
@pytest.fixture(scope="module")
def exported(digit_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "digits"
    assert main(["export", str(digit_ckpt), "--format", "safetensors", "--out", str(out)]) == 0
    return out


def _flip(path, n: int = 400, start: int | None = None) -> None:
    raw = bytearray(path.read_bytes())
    start = len(raw) - 2 * n if start is None else start
    for i in range(start, start + n):
        raw[i] ^= 0x10
    path.write_bytes(bytes(raw))


def test_exported_folder_carries_a_checksum_that_loading_verifies(exported, tmp_path):
    import shutil

    config = json.loads((exported / "config.json").read_text())
    assert config["checksum"].startswith("sha256:") and len(config["checksum"]) == 7 + 64
    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    _flip(bad / "model.safetensors")  # weight bytes only: safetensors itself reads it without complaint
    with pytest.raises(CheckpointError) as e:
        load_pretrained(bad)
    assert "does not match the checksum" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"model_kwargs": [1, 2]}, "field 'model_kwargs' must be dict, got list"),
        ({"input_spec": "32x32"}, "field 'input_spec' must be dict, got str"),
        ({"class_names": "0123456789"}, "field 'class_names' must be list, got str"),
        ({"checksum": None}, "field 'checksum' must be str"),
        ({"test_accuracy": "high"}, "field 'test_accuracy'"),
    ],
)
def test_exported_config_of_the_wrong_types_is_one_line(exported, tmp_path, change, needle):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(CheckpointError) as e:
        load_pretrained(bad)
    assert needle in str(e.value) and "\n" not in str(e.value)
    (bad / "config.json").write_text(DEEP)
    with pytest.raises(CheckpointError, match="nested more than"):
        load_pretrained(bad)


def test_checkpoint_without_checksum_and_flipped_bytes_is_refused(digit_ckpt, tmp_path, capsys):
    from lenetlab.models.checkpoint import FORMAT

    ck = load_checkpoint(digit_ckpt)
    body = {k: v for k, v in ck.items() if k not in ("format", "checksum")}
    old = tmp_path / "old.pt"
    torch.save({"format": FORMAT, **body}, old)
    assert main(["eval", str(old), "--device", "cpu"]) == 2
    _one_line_error(capsys, "field 'checksum' is missing")


def test_export_never_writes_over_files_it_did_not_create(run_dir, tmp_path, capsys):
    run = _copy_run(run_dir, tmp_path / "r")
    before = (run / "config.json").read_bytes()
    assert main(["export", str(run), "--format", "safetensors", "--out", str(run)]) == 2
    _one_line_error(capsys, "--out", "did not write")
    assert (run / "config.json").read_bytes() == before and not (run / "model.safetensors").exists()
    notes = tmp_path / "notes.onnx"
    notes.write_text("my notes, not a model")
    assert main(["export", str(run), "--out", str(notes)]) == 2
    _one_line_error(capsys, "was not written by lenet export")
    assert notes.read_text() == "my notes, not a model"
    # a previous export is replaced
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "e")]) == 0
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "e")]) == 0


def test_broken_tensorboard_install_is_skipped_with_one_line(monkeypatch, capsys):
    from lenetlab.train import loggers

    broken = types.ModuleType("torch.utils.tensorboard")

    def _raise(name):
        raise RuntimeError("protobuf: descriptors cannot be created directly\nmore lines")

    broken.__getattr__ = _raise
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", broken)
    monkeypatch.setattr(loggers, "_warned", False)
    assert loggers.summary_writer_class() is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TensorBoard logs skipped" in err and "RuntimeError" in err


# ----------------------------------------------------------------------------- property-based: every numeric flag
def _numeric_flags() -> list[tuple[tuple[str, ...], str, bool]]:
    """(sub-command path, option, integer) of every numeric flag of the CLI."""
    found = []

    def walk(parser, path):
        for action in parser._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))
            elif (
                action.option_strings
                and action.type is not None
                and getattr(action.type, "__name__", "") in ("int", "float", "_number")
            ):
                found.append((path, action.option_strings[0], action.dest))

    walk(build_parser(), ())
    return found


NUMERIC_FLAGS = _numeric_flags()
#: positional arguments some commands need before their flags parse
POSITIONAL = {
    "eval": ["x.pt"],
    "predict": ["x.png"],
    "ensemble": ["x.pt"],
    "export": ["x.pt"],
    "plot": ["r"],
    "profile": ["lenet5"],
    "lesson": [],
}
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**30), 10**30),
    st.sampled_from(["nan", "inf", "-inf", "1e23", "1e-320", "0", "-0", "00", "1_000"]),
)


@functools.lru_cache(maxsize=1)
def _parser():
    return build_parser()


def _outcome(argv: list[str]) -> int:
    """The exit status parsing and validating ``argv`` gives (0: it would run), without running it."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code)
    try:
        check_numeric_flags(args)
        if args.command in ("train", "submit"):
            RunConfig.from_dict(config_overrides(args), source="command line")
    except LenetlabError:
        return 2
    return 0


def test_numeric_flags_are_found():
    options = {opt for _, opt, _ in NUMERIC_FLAGS}
    assert {"--lr", "--seed", "--batch-size", "--top-k", "--port", "--max-upload-mb", "--threads"} <= options
    assert len(NUMERIC_FLAGS) > 50


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flag=st.sampled_from(NUMERIC_FLAGS), value=NUMBERS, data=st.data())
def test_any_number_in_any_numeric_flag_exits_0_or_2_without_traceback(flag, value, data):
    path, option, dest = flag
    action = next(a for a in _flag_actions(path) if a.dest == dest)
    count = action.nargs if isinstance(action.nargs, int) else 1
    values = [str(value)] + [str(data.draw(NUMBERS)) for _ in range(count - 1)]
    argv = [
        *path,
        *POSITIONAL.get(path[0], []),
        f"{option}={values[0]}" if count == 1 else option,
        *([] if count == 1 else values),
    ]
    status = _outcome(argv)
    assert status in (0, 2), argv
    if status == 0:  # the value passed: it is a finite number (within its range)
        parsed = getattr(_parser().parse_args(argv), dest)
        for v in parsed if isinstance(parsed, list) else [parsed]:
            assert isinstance(v, (int, float)) and math.isfinite(v)


def _flag_actions(path):
    parser = _parser()
    for name in path:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = sub.choices[name]
    return parser._actions


def test_the_rule_itself():
    assert number_problem(5, (1, 10), True) is None and number_problem(1.0, (1, 10), True) is None
    assert number_problem(0, (1, 10)) == ">= 1" and number_problem(11, (1, 10)) == "<= 10"
    for bad in (float("nan"), float("inf"), True, "3", None):
        assert number_problem(bad, (1, 10)) == "a finite number from 1 to 10"
    assert number_problem(2.5, (1, 10), True) == "a whole number from 1 to 10"
    with pytest.raises(ConfigError, match="x: field 'lr' must be a finite number from 0.0 to 1000000.0 \\(got nan\\)"):
        RunConfig.from_dict({"lr": float("nan")}, source="x")


def test_checkpoint_config_with_a_non_string_dataset_is_refused(digit_ckpt, tmp_path):
    ck = load_checkpoint(digit_ckpt)
    body = {k: v for k, v in ck.items() if k not in ("format", "checksum")}
    bad = save_checkpoint(tmp_path / "bad.pt", {**body, "config": {**(ck.get("config") or {}), "dataset": [1, 2]}})
    with pytest.raises(CheckpointError, match="field 'config.dataset' must be a name, got list"):
        load_checkpoint(bad)
