"""RunConfig: defaults, files (JSON/YAML), flag overrides, one-line errors naming the field."""

from __future__ import annotations

import json

import pytest

from lenetlab.apps.train import make_runner
from lenetlab.cli import build_parser, main
from lenetlab.errors import ConfigError
from lenetlab.train.config import RunConfig, config_overrides, load_config_file


def test_defaults_validate_and_round_trip(tmp_path):
    cfg = RunConfig()
    assert cfg.model == "lenet5" and cfg.dataset == "mnist-subset"
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_config_file_and_flag_override(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    data = {"epochs": 3, "lr": 0.01, "optimizer": "sgd", "model_kwargs": {}}
    path.write_text(json.dumps(data) if suffix == ".json" else "epochs: 3\nlr: 0.01\noptimizer: sgd\n")
    cfg = load_config_file(path)
    assert (cfg.epochs, cfg.lr, cfg.optimizer) == (3, 0.01, "sgd")
    args = build_parser().parse_args(
        ["train", "--config", str(path), "--lr", "0.05", "--no-plots", "--model-kwargs", "{}"]
    )
    over = config_overrides(args)
    assert over == {"lr": 0.05, "plots": False, "model_kwargs": {}}  # only what was typed
    merged = RunConfig.from_dict({**cfg.to_dict(), **over})
    assert (merged.epochs, merged.lr, merged.optimizer, merged.plots) == (3, 0.05, "sgd", False)


@pytest.mark.parametrize(
    "content, field",
    [
        ('{"lrr": 0.1}', "lrr"),  # unknown field (with a suggestion)
        ('{"optimizer": "rmsprop"}', "optimizer"),  # not one of the choices
        ('{"epochs": "ten"}', "epochs"),  # wrong type
        ('{"epochs": 0}', "epochs"),  # below the minimum
        ('{"deterministic": 1}', "deterministic"),  # not a bool
    ],
)
def test_bad_config_file_is_one_line_error(tmp_path, capsys, content, field):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=field):
        load_config_file(path)
    assert main(["train", "--config", str(path), "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and field in err and str(path) in err and "\n" not in err


def test_unknown_field_suggests_close_name(tmp_path):
    with pytest.raises(ConfigError, match="did you mean lr"):
        RunConfig.from_dict({"lrr": 1})


def test_unreadable_config_file(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("epochs: [1, 2\n")
    assert main(["train", "--config", str(path)]) == 2
    assert "broken.yaml" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: no such config file or shipped config" in capsys.readouterr().err


def test_cuda_requested_without_cuda_is_clear_error(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["train", "--device", "cuda", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "device" in err and "cuda" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())  # nothing written


def test_resume_and_config_conflict(tmp_path):
    with pytest.raises(ConfigError, match="cannot be combined"):
        make_runner(config_file=tmp_path / "x.json", resume=tmp_path)
    with pytest.raises(ConfigError, match="no last.pt"):
        make_runner(resume=tmp_path)


def test_image_size_field_resizes_folder_images_when_loading(tmp_path):
    import numpy as np
    from PIL import Image

    from lenetlab.train.setup import load_splits

    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(np.full((24, 24), 20 * i, np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    cfg = RunConfig(dataset=str(tmp_path / "imgs"))
    assert load_splits(cfg).train.x.shape[-2:] == (24, 24)  # their own size by default
    ns = build_parser().parse_args(["train", "--dataset", str(tmp_path / "imgs"), "--image-size", "32"])
    cfg = RunConfig.from_dict(config_overrides(ns))
    assert cfg.image_size == 32 and load_splits(cfg).train.x.shape[-2:] == (32, 32)


def test_normalize_choices_give_the_input_spec(subset):
    from lenetlab.data.common import pixel_stats
    from lenetlab.train.setup import build_spec

    spec = build_spec(RunConfig(normalize="stats"), subset)
    mean, std = pixel_stats(subset.train.x)
    assert spec.mean == mean and spec.std == std and 0.12 < mean[0] < 0.14 and 0.29 < std[0] < 0.32
    assert (spec.size, spec.resize, spec.channels) == (32, "pad", 1)
    assert build_spec(RunConfig(normalize="mnist"), subset).mean == (0.1307,)
    assert build_spec(RunConfig(), subset).mean == (0.5,)


def test_unreleased_normalize_names_are_refused():
    """Names --normalize had only during development are not read: a one-line ConfigError names the field."""
    for old in ("seed000", "seed", "dataset"):
        with pytest.raises(ConfigError, match="normalize"):
            RunConfig.from_dict({"normalize": old})


def test_lecun1998_normalisation_maps_background_and_ink_as_in_the_paper(subset):
    """LeCun et al. 1998 scale pixels so the background is -0.1 and full ink 1.175."""
    import torch

    from lenetlab.data.transforms import prepare
    from lenetlab.train.config import RunConfig
    from lenetlab.train.setup import build_spec

    spec = build_spec(RunConfig(normalize="lecun1998", model="lenet5-1998"), subset)
    img = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    img[0, 0, 10, 10] = 255
    x = prepare(img, spec)  # padded 28 -> 32: pixel (10, 10) lands at (12, 12)
    assert torch.allclose(x[0, 0, 12, 11:13], torch.tensor([-0.1, 1.175]), atol=1e-6)
    assert torch.allclose(x[0, 0, 0, 0], torch.tensor(-0.1), atol=1e-6)


def test_digit_width_reaches_the_input_spec_and_a_too_wide_one_is_refused(subset, tmp_path, capsys):
    from lenetlab.train.setup import build_spec

    assert build_spec(RunConfig(digit_width=14), subset).digit_width == 14
    assert build_spec(RunConfig(), subset).digit_width == 0
    with pytest.raises(ConfigError, match="field 'digit_width': 29 pixels is wider than the mnist-subset images"):
        build_spec(RunConfig(digit_width=29), subset)
    assert main(["train", "--digit-width", "40", "--epochs", "1", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: field 'digit_width'") and "Traceback" not in err
    # end to end: the run's checkpoint carries the width, and prediction applies it
    from lenetlab.inference.predictor import load_predictor

    assert (
        main(
            [
                "train",
                "--digit-width",
                "14",
                "--epochs",
                "1",
                "--out-dir",
                str(tmp_path),
                "--name",
                "w14",
                "--no-plots",
                "--progress",
                "none",
            ]
        )
        == 0
    )
    assert load_predictor(tmp_path / "w14", device="cpu").spec.digit_width == 14


def test_every_shipped_config_loads_by_name():
    """The results table's shipped configs are valid RunConfig files (a typo would only show hours in)."""
    from lenetlab.train.config import SHIPPED_CONFIGS, shipped_configs

    names = shipped_configs()
    assert {
        "lenet5",
        "fast-lenet5",
        "nndl-subset",
        "nndl-subset-quirk",
        "lenet-d2l",
        "lenet5-1998",
        "lenet5-1998-sdlm",
        "lenet5-1998-sdlm-distort",
        "lenet5-modern-elastic",
        "lenet5-modern-elastic-resized",
        "shipped-lenet5",
    } <= set(names)
    assert len(names) == 19
    for name in names:
        cfg = load_config_file(name)
        assert cfg == load_config_file(SHIPPED_CONFIGS / f"{name}.yaml") == load_config_file(f"{name}.yaml"), name
        assert cfg.model in ("lenet5", "lenet-d2l", "lenet5-1998", "lenet5-modern", "lenet5-fast"), name
        assert cfg.epochs >= (1 if name == "fast-lenet5" else 2), name
    assert load_config_file("nndl-subset-quirk").normalize == "nndl-quirk"


def test_train_selects_a_shipped_config_by_name_and_a_file_first(tmp_path, monkeypatch, capsys):
    """``lenet train --config NAME`` trains the shipped config (a flag still overrides a field)."""
    assert (
        main(
            [
                "train",
                "--config",
                "nndl-subset",
                "--epochs",
                "1",
                "--out-dir",
                str(tmp_path),
                "--name",
                "r",
                "--no-plots",
                "--no-tensorboard",
                "--progress",
                "none",
            ]
        )
        == 0
    )
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (saved["lr"], saved["batch_size"], saved["normalize"], saved["epochs"]) == (0.1, 64, "half", 1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lenet5").write_text("model: lenet5-bn\nepochs: 1\n")  # a file of that name wins
    assert load_config_file("lenet5").model == "lenet5-bn"


def test_unknown_config_name_lists_the_shipped_ones(tmp_path, capsys):
    from lenetlab.train.config import shipped_configs

    assert main(["train", "--config", "fast-lenet", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: fast-lenet: no such config file or shipped config")
    assert f"(shipped: {', '.join(shipped_configs())})" in err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    assert "lenet5, lenet5-1998," in " ".join(capsys.readouterr().out.split())  # --help names them too
