"""`lenet profile` / `lenet models`: counts measured by torch.utils.flop_counter, CLI and errors."""

from __future__ import annotations

import json

import pytest

import lenetlab.models as M
from lenetlab.cli import main
from lenetlab.models.profile import format_profile, profile_model

SMALL = [i.name for i in M.list_models() if i.input_size[1] <= 32]


def test_lenet5_macs_against_hand_count():
    p = profile_model("lenet5")
    assert p.total_params == 61_706 and p.trainable_params == 61_706
    # C1 28*28*6*25 + C3 10*10*16*6*25 + C5 120*16*25 + F6 120*84 + output 84*10
    assert p.macs == 117_600 + 240_000 + 48_000 + 10_080 + 840 == 416_520
    assert p.flops == 2 * p.macs
    assert p.formula_total == 423_344  # NNDL's own formula
    rows = {r.name: r for r in p.rows}
    assert rows["C1"].output_shape == [1, 6, 28, 28] and rows["S4"].output_shape == [1, 16, 5, 5]
    assert rows["C1"].formula == 122_304 and rows["S4"].formula == 400


def test_lenet5_scratch_counts_its_bias_column():
    # the im2col GEMM adds the bias as a K+1-th column: one MAC per conv output more than lenet5
    p = profile_model("lenet5-scratch")
    assert p.total_params == 61_706 and p.macs == 416_520 + 4_704 + 1_600 + 120
    assert any("6,424" in n for n in p.notes)


def test_lenet1998_profile_counts():
    p = profile_model("lenet5-1998")
    assert (p.total_params, p.trainable_params, p.non_trainable_params) == (60_840, 60_000, 840)
    # C3 runs dense (16x6 kernels, 36 of them zero): the counter sees 240,000 MACs there
    # the RBF distances are elementwise (not counted)
    assert p.macs == 117_600 + 240_000 + 48_000 + 10_080
    # the paper's connection counts: C1 122,304, S2 5,880, C3 151,600, S4 2,000, C5 48,120, F6 10,164, RBF 840
    rows = {r.name: r.formula for r in p.rows}
    assert (rows["C1"], rows["S2"], rows["C3"], rows["S4"]) == (122_304, 5_880, 151_600, 2_000)
    assert p.formula_total == 340_908
    text = format_profile(p)
    assert "60,000" in text and "59,956" in text and "862" in text


@pytest.mark.parametrize("name", SMALL)
def test_rows_add_up_to_totals(name):
    p = profile_model(name)
    assert sum(r.params for r in p.rows) == p.total_params
    assert sum(r.flops for r in p.rows) == p.flops > 0


def test_input_size_changes_in_channels_and_compute():
    p = profile_model("lenet5", input_size=(3, 32, 32))
    assert p.total_params == 61_706 + 2 * 150 and p.macs == 416_520 + 2 * 117_600


def test_cli_profile_text_and_json(capsys):
    assert main(["profile", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "61,706" in out and "416,520" in out and "423,344" in out and "1 MAC = 2 FLOPs" in out
    assert main(["profile", "lenet5-1998", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["trainable_params"] == 60_000 and d["non_trainable_params"] == 840


def test_cli_models_lists_everything(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {i.name for i in M.list_models()}
    assert rows["lenet5"]["params"] == 61_706 and rows["lenet5"]["input_size"] == [1, 32, 32]
    assert rows["vgg11"]["input_size"] == [1, 224, 224]
    for name in SMALL:  # counted on the meta device: must match a real build
        assert rows[name]["params"] == sum(p.numel() for p in M.create(name).parameters()), name
    assert main(["models"]) == 0
    assert "lenet5-1998" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["profile", "lenet6"], "unknown model 'lenet6'"),
        (["profile", "lenet5", "--input-size", "1", "8", "8"], "cannot run on a 1x8x8 input"),
        (["profile", "lenet5-scratch", "--input-size", "1", "28", "28"], "cannot run on a 1x28x28 input"),
        (["profile", "lenet5", "--input-size", "0", "32", "32"], "--input-size"),
        (["profile", "vgg11", "--input-size", "3", "100000", "100000"], "too large to profile"),
        (["profile", "lenet5", "--num-classes", "0"], "--num-classes"),
    ],
)
def test_cli_user_errors_exit_2_with_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1 and "Traceback" not in err
