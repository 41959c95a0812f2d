"""benchmarks/finetune.py at tiny scale: the letters folder it draws, and the shape of its results."""

from __future__ import annotations

import json

import torch
from PIL import Image

from helpers import benchmark_script
from lenetlab.data import load
from lenetlab.models import create

finetune = benchmark_script("finetune")


def test_letters_folder_is_a_seeded_three_split_class_folder(tmp_path):
    counts = finetune.make_letters(tmp_path / "a", (2, 1, 1), seed=3)
    finetune.make_letters(tmp_path / "b", (2, 1, 1), seed=3)
    assert counts == {"train": 52, "dev": 26, "test": 26}
    assert sorted(p.name for p in (tmp_path / "a" / "train").iterdir()) == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    img = Image.open(tmp_path / "a" / "test" / "Q" / "0.png")
    assert (img.mode, img.size) == ("L", (28, 28))
    assert (tmp_path / "a/dev/K/0.png").read_bytes() == (tmp_path / "b/dev/K/0.png").read_bytes()  # same seed
    splits = load(str(tmp_path / "a"))
    assert splits.class_names == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (52, 26, 26)


def test_the_comparison_runs_at_tiny_scale_and_writes_its_results(tmp_path):
    out = tmp_path / "finetune.json"
    argv = ["--out", str(tmp_path / "letters"), "--per-class", "2,1,1", "--epochs", "1", "--lrs", "0.01,0.003"]
    assert finetune.main([*argv, "--seeds", "0,1", "--results", str(out)]) == 0
    body = json.loads(out.read_text())
    assert body["meta"]["kind"] == "finetune" and body["meta"]["command"].startswith("python benchmarks/finetune.py")
    data = body["data"]
    assert data["images"] == {"train": 52, "dev": 26, "test": 26}
    assert [(s["epochs"], s["init"], s["seeds"]) for s in data["summary"]] == [(1, "default", 2), (1, "pretrained", 2)]
    for s in data["summary"]:
        assert (
            s["lr"] in (0.01, 0.003) and s["steps"] == 2 and 0 <= s["test_min"] <= s["test_mean"] <= s["test_max"] <= 1
        )
    # per init: 2 tuning runs, then the 2 seeds (the first seed's run is the tuning run at the chosen rate)
    assert [r["phase"] for r in data["runs"]] == ["tune", "tune", "test", "test"] * 2


def test_init_pretrained_starts_from_the_shipped_weights_with_a_new_head(tmp_path):
    from lenetlab.train.config import RunConfig
    from lenetlab.train.setup import build_spec, init_model, load_splits

    finetune.make_letters(tmp_path, (1, 1, 1))
    cfg = RunConfig(dataset=str(tmp_path), init="pretrained", normalize="half")
    splits = load_splits(cfg)
    model, kwargs = init_model(cfg, splits, build_spec(cfg, splits))
    shipped = create("lenet5", pretrained=True)
    assert kwargs["num_classes"] == 26 and model.training
    assert torch.equal(model.state_dict()["C1.weight"], shipped.state_dict()["C1.weight"])
    assert model.state_dict()["output.weight"].shape == (26, 84)


def test_init_pretrained_on_a_model_without_shipped_weights_is_a_one_line_error(capsys):
    from lenetlab.cli import main

    assert main(["train", "--model", "lenet5-bn", "--init", "pretrained", "--dry-run", "--progress", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no pretrained weights for model 'lenet5-bn'") and "\n" not in err
