"""Portable weights: `lenet export --format safetensors|hub` (model.safetensors + config.json + README.md), loading
the folder back with identical outputs, `create(name, pretrained=True)` with the shipped lenet5, and
`lenet models --pretrained` / `lenet predict --model`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lenetlab.cli import main
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import CheckpointError, LenetlabError
from lenetlab.inference.predictor import default_checkpoint, load_predictor
from lenetlab.inference.run import Run
from lenetlab.models import build_model, create, load_checkpoint, load_pretrained, pretrained_names
from lenetlab.models.pretrained import PRETRAINED, pretrained_dir, read_pretrained


@pytest.fixture(scope="module")
def exported(digit_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "digits"
    assert main(["export", str(digit_ckpt), "--format", "safetensors", "--out", str(out)]) == 0
    return out


def test_export_writes_the_hub_layout_without_pickle(exported, digit_ckpt):
    assert sorted(p.name for p in exported.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((exported / "config.json").read_text())
    ckpt = load_checkpoint(digit_ckpt)
    assert config["model"] == "lenet5" and config["model_kwargs"] == {"num_classes": 10, "in_channels": 1}
    assert config["class_names"] == ckpt["class_names"] and config["input_spec"] == ckpt["input_spec"]
    assert config["lenetlab_version"] and config["format"] == "lenetlab-pretrained-v1"
    tensors = load_file(str(exported / "model.safetensors"))  # plain safetensors, readable without lenetlab
    assert tensors.keys() == ckpt["state_dict"].keys()
    assert all(torch.equal(tensors[k], ckpt["state_dict"][k]) for k in tensors)


def test_round_trip_gives_identical_outputs(exported, digit_ckpt, subset):
    original = build_model(load_checkpoint(digit_ckpt))
    again = load_pretrained(exported)
    x = prepare(
        subset.test.x[:64], InputSpec.from_dict(json.loads((exported / "config.json").read_text())["input_spec"])
    )
    with torch.no_grad():
        assert torch.equal(original(x), again(x))
    # the folder works wherever a checkpoint does: predictor (lenet predict/serve), lenet eval
    a = load_predictor(digit_ckpt).predict_proba(subset.test.x[:50])
    b = load_predictor(exported).predict_proba(subset.test.x[:50])
    assert np.array_equal(a, b)


def test_eval_accepts_the_exported_folder(exported, digit_ckpt, capsys):
    assert main(["eval", str(digit_ckpt), "--json", "--device", "cpu"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(["eval", str(exported), "--json", "--device", "cpu", "--dataset", "mnist-subset"]) == 0
    b = json.loads(capsys.readouterr().out)
    assert a["accuracy"] == b["accuracy"] and a["loss"] == b["loss"]


def test_export_of_a_run_directory_records_its_test_accuracy(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--out-dir",
                str(tmp_path),
                "--name",
                "r",
                "--epochs",
                "1",
                "--num-threads",
                "1",
                "--progress",
                "none",
                "--no-plots",
                "--no-tensorboard",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["export", str(tmp_path / "r"), "--format", "safetensors", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["path"] == str(tmp_path / "r" / "pretrained") and info["max_abs_diff"] == 0.0
    config = json.loads((tmp_path / "r" / "pretrained" / "config.json").read_text())
    test_row = next(
        r for r in map(json.loads, (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "test"
    )
    assert config["test_accuracy"] == test_row["accuracy"] and config["dataset"] == "mnist-subset"
    assert config["train_config"]["epochs"] == 1 and config["step"] == 16


def _strings(value):
    """Every string inside a JSON value."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_hub_export_is_portable_and_round_trips(tmp_path, subset, capsys):
    from lenetlab.apps.serve import served_model
    from lenetlab.models import from_pretrained

    assert (
        main(
            [
                "train",
                "--out-dir",
                str(tmp_path),
                "--name",
                "r",
                "--epochs",
                "1",
                "--num-threads",
                "1",
                "--progress",
                "none",
                "--no-plots",
                "--no-tensorboard",
            ]
        )
        == 0
    )
    out = tmp_path / "hub" / "my-digits"
    assert main(["export", str(tmp_path / "r"), "--format", "hub", "--out", str(out)]) == 0
    assert "README.md" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    # nothing names the training machine: no temporary folder, home or any absolute path
    texts = [(out / name).read_text() for name in ("config.json", "README.md")]
    for text in texts + [(out / "model.safetensors").read_bytes().decode("latin-1")]:
        assert str(tmp_path) not in text and str(Path.home()) not in text
    config = json.loads(texts[0])
    assert not [s for s in _strings(config) if s.startswith(("/", "~")) or ":\\" in s]
    assert config["train_config"]["data_dir"] is None and config["train_config"]["out_dir"] is None
    card = texts[1]
    front = card.split("---\n")[1]
    for line in (
        "license: cc-by-sa-3.0",
        "library_name: lenetlab",
        "tags:",
        "datasets:\n- mnist-subset",
        "metrics:\n- accuracy",
        "split: test",
        f"value: {config['test_accuracy']}",
    ):
        assert line in front
    for section in (
        "## Architecture",
        "## Data and training",
        "## Evaluation",
        "## Intended use and limitations",
        "## Licence",
        "epochs 1",
    ):
        assert section in card
    # the same logits from the folder as from the run's checkpoint
    original = build_model(load_checkpoint(tmp_path / "r" / "best.pt"))
    x = prepare(subset.test.x[:32], InputSpec.from_dict(config["input_spec"]))
    with torch.no_grad():
        assert torch.equal(original(x), from_pretrained(out)(x))
    # served under the name its config gives, not the folder's
    served = served_model(str(out))
    assert served.name == "lenet5" and served.dataset == "mnist-subset"
    assert served.test_accuracy == config["test_accuracy"]


def test_the_shipped_folder_is_what_export_writes_now():
    folder = pretrained_dir("lenet5")
    assert (folder / "README.md").is_file()
    config = read_pretrained(folder)["pretrained"]  # checksum checked
    assert config["train_config"]["data_dir"] is None and config["train_config"]["out_dir"] is None
    assert not [s for s in _strings(config) if s.startswith(("/", "~"))]
    assert "/" not in (folder / "README.md").read_text().split("```python")[0].replace("https://", "")


def test_commands_take_a_shipped_model_name(tmp_path, capsys):
    assert main(["eval", "lenet5", "--dataset", "mnist-subset", "--json", "--device", "cpu"]) == 0
    by_name = json.loads(capsys.readouterr().out)
    assert main(["eval", str(pretrained_dir("lenet5")), "--dataset", "mnist-subset", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == by_name["accuracy"] > 0.95
    assert main(["ensemble", "lenet5", "--dataset", "mnist-subset", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["members"][0]["accuracy"] == by_name["accuracy"]
    assert main(["export", "lenet5", "--format", "hub", "--out", str(tmp_path / "x"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "lenet5"
    from lenetlab.apps.serve import served_model

    assert served_model("lenet5").name == "lenet5"  # lenet serve lenet5
    # a name that is neither a file nor a shipped model is still a missing checkpoint
    assert main(["eval", "lenet6", "--dataset", "mnist-subset"]) == 2
    assert "lenet6: checkpoint file not found" in capsys.readouterr().err


def test_export_errors_are_one_line(tmp_path, digit_ckpt, capsys):
    (tmp_path / "file").write_text("x")
    for argv, message in [
        (["export", str(digit_ckpt), "--format", "safetensors", "--out", str(tmp_path / "file")], "is not a folder"),
        (["export", str(digit_ckpt), "--format", "safetensors", "--opset", "17"], "--opset applies to --format onnx"),
        (["export", str(tmp_path / "none.pt"), "--format", "safetensors"], "checkpoint file not found"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_damaged_folders_are_one_line_checkpoint_errors(exported, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    (bad / "model.safetensors").write_bytes(b'\x08\x00\x00\x00\x00\x00\x00\x00{"a":1}x')
    with pytest.raises(CheckpointError, match="model.safetensors: corrupt or unreadable"):
        load_pretrained(bad)
    shutil.copy(exported / "model.safetensors", bad)
    (bad / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match="config.json: not valid JSON"):
        load_pretrained(bad)
    (bad / "config.json").write_text(json.dumps({"format": "lenetlab-pretrained-v1", "model": "lenet5"}))
    with pytest.raises(CheckpointError, match="missing field 'model_kwargs'"):
        read_pretrained(bad)
    (bad / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="not a lenetlab model config"):
        read_pretrained(bad)
    with pytest.raises(CheckpointError, match="not an exported model folder"):
        read_pretrained(tmp_path / "nowhere")


def test_shipped_weights_are_the_shipped_checkpoint(subset):
    assert pretrained_names() == sorted(PRETRAINED) and "lenet5" in pretrained_names()
    model = create("lenet5", pretrained=True)
    ckpt = load_checkpoint(default_checkpoint())
    assert not model.training
    assert all(torch.equal(model.state_dict()[k], ckpt["state_dict"][k]) for k in ckpt["state_dict"])
    config = json.loads((pretrained_dir("lenet5") / "config.json").read_text())
    shipped = Run(default_checkpoint().parent).test_accuracy()  # the shipped run's own metrics
    assert config["input_spec"] == ckpt["input_spec"] and config["test_accuracy"] == shipped > 0.99


def test_pretrained_lenet5_reads_mnist_test_digits(subset):
    model = create("lenet5", pretrained=True)
    spec = InputSpec.from_dict(read_pretrained(pretrained_dir("lenet5"))["input_spec"])
    with torch.no_grad():
        pred = model(prepare(subset.test.x, spec)).argmax(1)
    assert int(pred[0]) == int(subset.test.y[0])  # the first MNIST test digit of the embedded subset
    assert (pred == subset.test.y).float().mean() >= 0.97


def test_pretrained_lenet5_reads_the_real_mnist_test_set(mnist_dir):
    from lenetlab.data import load

    test = load("mnist", data_dir=mnist_dir).test
    pred = load_predictor(model="lenet5").predict_proba(test.x[:2000]).argmax(1)
    assert pred[0] == int(test.y[0]) and (pred == test.y[:2000].numpy()).mean() >= 0.98


def test_pretrained_argument_errors():
    with pytest.raises(LenetlabError, match="no pretrained weights for model 'vgg11'.*lenet5"):
        create("vgg11", pretrained=True)
    with pytest.warns(UserWarning, match="num_classes=5.*output: new"):  # fine-tuning: a new head (test_finetune.py)
        assert create("lenet5", num_classes=5, pretrained=True)(torch.zeros(1, 1, 32, 32)).shape == (1, 5)
    with pytest.raises(LenetlabError, match="unknown model 'lenet6'"):
        create("lenet6", pretrained=True)
    explicit, default = (
        create("lenet5", num_classes=10, in_channels=1, pretrained=True),
        create("lenet5", pretrained=True),
    )
    assert not explicit.training and explicit.state_dict().keys() == default.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(explicit.state_dict().values(), default.state_dict().values()))
    assert create("lenet5", num_classes=7)(torch.zeros(1, 1, 32, 32)).shape == (1, 7)  # unchanged without it


def test_models_pretrained_lists_the_shipped_names(capsys):
    assert main(["models", "--pretrained"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["model", "trained", "on"]
    shipped = Run(default_checkpoint().parent).test_accuracy()
    assert lines[1].split()[:3] == ["lenet5", "mnist", f"{shipped:.4f}"] and "pretrained=True" in lines[1]
    assert main(["models", "--pretrained", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "lenet5" and row["classes"] == 10


def test_predict_with_a_pretrained_model_name(tmp_path, subset, capsys):
    from PIL import Image

    path = tmp_path / "digit.png"
    Image.fromarray(subset.test.x[0, 0].numpy()).save(path)
    assert main(["predict", "--model", "lenet5", str(path), "--json", "--device", "cpu"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["label"] == str(int(subset.test.y[0]))
    assert main(["predict", "--model", "vgg11", str(path)]) == 2
    assert "no pretrained weights for model 'vgg11'" in capsys.readouterr().err
    assert main(["predict", "--model", "lenet5", "--onnx", "x.onnx", str(path)]) == 2
    assert "give either --onnx MODEL.onnx or --model NAME, not both" in capsys.readouterr().err
