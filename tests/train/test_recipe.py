"""The automatic recipe: choices from a dataset's facts, explicit fields over them, budgets, notes."""

from __future__ import annotations

import json

import pytest

from lenetlab.data.facts import DatasetFacts
from lenetlab.errors import ConfigError
from lenetlab.train import recipe as rc
from lenetlab.train.config import RECIPE_FIELDS, RunConfig, parse_budget


def _facts(n=1100, classes=20, channels=3, sizes=((40, 60), (96, 80), (24, 24)), kind="image-csv", **kw):
    return DatasetFacts(
        "kaggle",
        kind,
        n,
        280,
        False,
        [f"c{i}" for i in range(classes)],
        [n // classes] * classes,
        channels,
        list(sizes),
        **kw,
    )


def test_auto_on_a_small_colour_set_of_mixed_sizes():
    c = rc.auto_choices(_facts())
    assert c["image_size"].value == 32 and "mixed" not in c["image_size"].why and "24 to 96 px" in c["image_size"].why
    assert c["model"].value == "lenet5-modern" and c["model_kwargs"].value == {"width": 32}
    assert (c["optimizer"].value, c["schedule"].value, c["augment"].value) == ("adamw", "onecycle", "affine")
    assert "no flips" in c["augment"].why
    assert c["val_size"].value == 110 and c["batch_size"].value == 64
    assert c["epochs"].value == rc.epochs_for(990)
    assert set(c) <= set(RECIPE_FIELDS)  # `lenet submit --help` says these default to the recipe's choice


def test_digits_keep_28_pixels_and_big_sets_get_a_narrower_model_and_fewer_epochs():
    small = rc.auto_choices(_facts(n=1000, classes=10, channels=1, sizes=[(28, 28)], kind="pixel-csv"))
    big = rc.auto_choices(_facts(n=42000, classes=10, channels=1, sizes=[(28, 28)], kind="pixel-csv"))
    assert small["image_size"].value is None and "padded" in small["image_size"].why
    assert big["val_size"].value == 4200 and big["batch_size"].value == 128
    assert big["epochs"].value < small["epochs"].value
    assert big["model_kwargs"].value["width"] < small["model_kwargs"].value["width"]
    n_train = 42000 - 4200
    cost = n_train * big["epochs"].value * rc.model_macs(big["model_kwargs"].value["width"], 1, 10)
    assert cost <= rc.TRAIN_MACS  # the compute budget holds


def test_sets_without_a_preferred_orientation_are_rotated_by_any_angle():
    upright = rc.auto_choices(_facts(anisotropy=0.13))
    any_angle = rc.auto_choices(_facts(anisotropy=0.02))
    assert upright["augment_kwargs"].value == {} and "no flips" in upright["augment"].why
    assert (
        any_angle["augment_kwargs"].value == {"rotate": 180.0}
        and "no preferred orientation" in any_angle["augment_kwargs"].why
    )
    assert rc.auto_choices(_facts())["augment_kwargs"].value == {}  # not measured: upright, the safe side


def test_a_named_augmentation_drops_the_recipe_arguments(digitrec):
    facts = _facts(anisotropy=0.01, n=300, classes=10)
    cfg, recipe = rc.apply_recipe({"dataset": str(digitrec), "augment": "elastic"}, measure=False, facts=facts)
    assert (cfg.augment, cfg.augment_kwargs) == ("elastic", {})
    cfg, _ = rc.apply_recipe({"dataset": str(digitrec)}, measure=False, facts=facts)
    assert (cfg.augment, cfg.augment_kwargs) == ("affine", {"rotate": 180.0})


def test_fast_is_shorter_and_tiny_sets_keep_two_dev_images_per_class():
    assert rc.auto_choices(_facts(), fast=True)["epochs"].value < rc.auto_choices(_facts())["epochs"].value
    assert rc.auto_choices(_facts(n=60, classes=3))["val_size"].value == 6
    own_dev = rc.auto_choices(_facts(dev_given=True))["val_size"]
    assert own_dev.value is None and "own validation split" in own_dev.why
    with pytest.raises(ConfigError, match="no labelled images"):
        rc.auto_choices(_facts(n=0))


def test_explicit_fields_override_and_a_named_model_drops_the_width(digitrec):
    cfg, recipe = rc.apply_recipe({"dataset": str(digitrec), "lr": 0.003, "model": "lenet5"}, measure=False)
    assert cfg.lr == 0.003 and recipe.choices["lr"].given and cfg.model == "lenet5"
    assert cfg.model_kwargs == {} and cfg.optimizer == "adamw" and cfg.augment == "affine"
    assert cfg.recipe_notes["choices"]["lr"] == {"value": 0.003, "why": "", "given": True}
    assert cfg.recipe_notes["facts"]["n_labelled"] == 300
    text = recipe.describe()
    assert text.startswith("recipe auto for digit-recognizer: 300 labelled images, 100 test (unlabelled)")
    assert "(given)" in text and "lenet5-modern" not in text


def test_named_datasets_and_the_lenet5_recipe_keep_the_defaults(digitrec):
    cfg, recipe = rc.apply_recipe({"dataset": "mnist-subset"}, measure=False)
    assert recipe.used == "lenet5" and not recipe.choices
    assert cfg.replace(recipe_notes={}) == RunConfig()
    cfg, recipe = rc.apply_recipe({"dataset": str(digitrec), "recipe": "lenet5"}, measure=False)
    assert (cfg.model, cfg.epochs, cfg.optimizer, cfg.lr, cfg.augment) == ("lenet5", 10, "adam", 2e-3, "none")


def test_config_file_fields_are_explicit(digitrec, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(f"dataset: {digitrec}\nepochs: 3\n")
    cfg, recipe = rc.plan_config(f, {"batch_size": 32}, measure=False)
    assert (cfg.epochs, cfg.batch_size, cfg.model) == (3, 32, "lenet5-modern")
    assert recipe.choices["epochs"].given and not recipe.choices["model"].given


def test_budget_sets_the_epochs_from_a_measured_step(digitrec, monkeypatch):
    assert parse_budget("2m") == 120 and parse_budget("90s") == 90 and parse_budget("1.5h") == 5400
    assert parse_budget("45") == 45
    for bad in ("2 minutes", "-1m", "0", "inf"):
        with pytest.raises(ConfigError, match="field 'budget' must be a time"):
            RunConfig(budget=bad).validate()
    # 270 training images in batches of 64: 5 steps; 30 dev images: 1 batch at a third of a step
    assert rc.budget_epochs(60, 0.1, 270, 30, 64) == int(0.95 * 60 // (5 * 0.1 + 0.1 / 3))
    monkeypatch.setattr(rc, "measure_step", lambda cfg, splits: 0.05)
    cfg, recipe = rc.apply_recipe({"dataset": str(digitrec), "budget": "30s"})
    assert cfg.epochs == rc.budget_epochs(30, 0.05, 270, 30, cfg.batch_size)
    assert recipe.step_time == 0.05 and "fill --budget 30s" in recipe.choices["epochs"].why
    cfg, recipe = rc.apply_recipe({"dataset": str(digitrec), "budget": "30s", "epochs": 2})
    assert cfg.epochs == 2 and "not used: --epochs given" in recipe.choices["epochs"].why


def test_measure_step_times_the_real_model():
    import torch

    from lenetlab.data.splits import Split, Splits

    cfg = RunConfig(model="lenet5-modern", model_kwargs={"width": 8}, batch_size=8, augment="affine", device="cpu")
    g = torch.Generator().manual_seed(0)
    train = Split(torch.randint(0, 256, (20, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(20) % 5)
    empty = Split(train.x[:0], train.y[:0])
    t = rc.measure_step(cfg, Splits("random", train, empty, empty, [str(c) for c in range(5)]), steps=2)
    assert 0 < t < 60


def test_recipe_block_of_saved_notes_round_trips_json(digitrec):
    cfg, recipe = rc.apply_recipe({"dataset": str(digitrec)}, measure=False)
    notes = json.loads(json.dumps(cfg.recipe_notes))
    assert rc.describe_notes(notes) == recipe.describe()
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_small_sets_get_an_ensemble_for_submit_within_the_budget(digitrec):
    facts = _facts(n=1100, classes=20)
    cfg, one = rc.apply_recipe({"dataset": str(digitrec)}, measure=False, facts=facts)
    assert one.members == 1 and cfg.epochs == rc.epochs_for(990)  # lenet train: one run
    cfg2, many = rc.apply_recipe({"dataset": str(digitrec)}, measure=False, facts=facts, ensemble=True)
    assert many.members >= 2 and cfg2.epochs == round(cfg.epochs * rc.MEMBER_SHARE)
    width = cfg2.model_kwargs["width"]
    assert many.members * cfg2.epochs * 990 * rc.model_macs(width, 3, 20) <= rc.TRAIN_MACS
    assert "ensemble" in many.describe() and cfg2.recipe_notes["ensemble"]["members"] == many.members
    _, given = rc.apply_recipe({"dataset": str(digitrec), "epochs": 5}, measure=False, facts=facts, ensemble=True)
    assert given.members == 1  # explicit epochs: one run as asked
    big = _facts(n=42000, classes=10, channels=1, sizes=[(28, 28)], kind="pixel-csv")
    assert rc.apply_recipe({"dataset": str(digitrec)}, measure=False, facts=big, ensemble=True)[1].members == 1


def test_small_validation_splits_keep_the_final_model(digitrec):
    small = rc.auto_choices(_facts())["monitor"]  # 110 validation images
    assert small.value == "last" and "110 validation images" in small.why
    big = rc.auto_choices(_facts(n=42000, classes=10, channels=1, sizes=[(28, 28)], kind="pixel-csv"))["monitor"]
    assert big.value == "dev_acc" and "4,200 validation images" in big.why
    assert rc.auto_choices(_facts(dev_given=True))["monitor"].value == "dev_acc"  # its size is not counted
    facts = _facts(n=300, classes=10)
    cfg, _ = rc.apply_recipe({"dataset": str(digitrec)}, measure=False, facts=facts)
    assert cfg.monitor == "last"
    cfg, _ = rc.apply_recipe({"dataset": str(digitrec), "val_size": 2000}, measure=False, facts=facts)
    assert cfg.monitor == "dev_acc"  # a given validation size decides
    cfg, recipe = rc.apply_recipe({"dataset": str(digitrec), "schedule": "step"}, measure=False, facts=facts)
    assert cfg.monitor == "dev_acc" and "does not anneal" in recipe.choices["monitor"].why
    cfg, recipe = rc.apply_recipe({"dataset": str(digitrec), "monitor": "dev_loss"}, measure=False, facts=facts)
    assert cfg.monitor == "dev_loss" and recipe.choices["monitor"].given


def _step_by_width(times: dict):
    """A stand-in for measure_step: the seconds per step of each lenet5-modern width."""
    return lambda cfg, splits: times[cfg.model_kwargs["width"]]


def test_budget_chooses_the_width_again_and_refuses_a_budget_below_one_epoch(digitrec, monkeypatch):
    # 270 training images in batches of 64 and 30 dev images: an epoch is 5 + 1/3 steps; the recipe wants 100 epochs
    monkeypatch.setattr(rc, "measure_step", _step_by_width({32: 0.5, 24: 0.3, 16: 0.1, 8: 0.05}))
    cfg, recipe = rc.apply_recipe({"dataset": str(digitrec), "budget": "30s"})
    assert cfg.model_kwargs["width"] == 8 and cfg.epochs == rc.budget_epochs(30, 0.05, 270, 30, 64) >= 100
    assert "the widest whose 100 epochs fit --budget 30s" in recipe.choices["model_kwargs"].why
    assert recipe.step_time == 0.05 and cfg.recipe_notes["choices"]["model_kwargs"]["value"] == {"width": 8}
    cfg, recipe = rc.apply_recipe({"dataset": str(digitrec), "budget": "10s"})
    assert cfg.model_kwargs["width"] == 8 and cfg.epochs == rc.budget_epochs(10, 0.05, 270, 30, 64) < 100
    assert f"the narrowest; {cfg.epochs} epochs fit --budget 10s" in recipe.choices["model_kwargs"].why
    cfg, _ = rc.apply_recipe({"dataset": str(digitrec), "budget": "5m"})
    assert cfg.model_kwargs["width"] == 32 and cfg.epochs == rc.budget_epochs(300, 0.5, 270, 30, 64)
    too_short = (
        r"field 'budget': 0\.2s is too short for one epoch of the smallest model "
        r"\(lenet5-modern width 8: 0\.3 s measured here\); give at least --budget 1s"
    )
    with pytest.raises(ConfigError, match=too_short):
        rc.apply_recipe({"dataset": str(digitrec), "budget": "0.2s"})
    # a width the user gave stays; only the epochs follow the budget
    cfg, _ = rc.apply_recipe({"dataset": str(digitrec), "budget": "30s", "model_kwargs": {"width": 16}})
    assert cfg.model_kwargs["width"] == 16 and cfg.epochs == rc.budget_epochs(30, 0.1, 270, 30, 64)
