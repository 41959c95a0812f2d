"""`lenet ensemble`: each checkpoint's accuracy and that of their averaged probabilities."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from lenetlab.apps.ensemble import ensemble_evaluate, ensemble_select
from lenetlab.cli import main
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import ConfigError, LenetlabError
from lenetlab.inference.committee import choose_committee, choose_tta, select_members
from lenetlab.inference.evaluate import evaluate
from lenetlab.inference.predictor import load_predictor
from lenetlab.models import build_model, load_checkpoint, save_checkpoint


def _probs(path, x):
    ck = load_checkpoint(path)
    with torch.no_grad():
        return torch.softmax(build_model(ck)(prepare(x, InputSpec.from_dict(ck["input_spec"]))), 1)


def test_members_and_ensemble_figures_are_exact(digit_ckpt, second_ckpt, subset):
    res = ensemble_evaluate([digit_ckpt, second_ckpt], splits=subset)
    assert res.n == len(subset.test) and res.split == "test" and len(res.members) == 2
    for m, path in zip(res.members, [digit_ckpt, second_ckpt]):
        ck = load_checkpoint(path)
        ref = evaluate(build_model(ck), subset.test, InputSpec.from_dict(ck["input_spec"]))
        assert m["accuracy"] == pytest.approx(ref.accuracy)  # same figure as `lenet eval`
        assert m["nll"] == pytest.approx(ref.loss, rel=1e-4)
    mean = (_probs(digit_ckpt, subset.test.x) + _probs(second_ckpt, subset.test.x)) / 2
    assert res.accuracy == pytest.approx(float((mean.argmax(1) == subset.test.y).float().mean()))


def test_each_member_uses_its_own_input_spec(digit_ckpt, subset, tmp_path):
    # the same weights saved with a different (equivalent) spec: resize 28->32 instead of pad would
    # change the figures; here: normalisation folded differently must give identical probabilities
    ck = load_checkpoint(digit_ckpt)
    spec = InputSpec.from_dict(ck["input_spec"])
    assert spec.resize == "pad"
    other = {k: v for k, v in ck.items() if k != "format"}
    other["input_spec"] = replace(spec, resize="resize").to_dict()
    p = save_checkpoint(tmp_path / "resized.pt", other)
    res = ensemble_evaluate([digit_ckpt, p], splits=subset)
    a, b = (m["accuracy"] for m in res.members)
    assert a != b or res.members[0]["nll"] != res.members[1]["nll"]  # the resized spec was applied


def test_cli_text_and_json(digit_ckpt, second_ckpt, capsys):
    assert main(["ensemble", str(digit_ckpt), str(second_ckpt), "--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "mnist-subset test split, 200 examples"
    assert str(digit_ckpt) in out[1] and str(second_ckpt) in out[2] and "ensemble" in out[3]
    assert all("accuracy" in line and "error" in line for line in out[1:])
    assert main(["ensemble", str(digit_ckpt), str(second_ckpt), "--json", "--split", "dev", "--device", "cpu"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["split"] == "dev" and data["n"] == 200 and [m["model"] for m in data["members"]] == ["lenet5"] * 2
    assert 0.5 < data["accuracy"] <= 1


def test_mismatched_classes_and_missing_files_are_one_line_errors(digit_ckpt, tmp_path, capsys):
    ck = load_checkpoint(digit_ckpt)
    other = {k: v for k, v in ck.items() if k != "format"}
    other["class_names"] = [f"leaf{i}" for i in range(10)]
    p = save_checkpoint(tmp_path / "leaves.pt", other)
    assert main(["ensemble", str(digit_ckpt), str(p), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "leaves.pt: its class names differ" in err and err.count("\n") == 1
    assert main(["ensemble", str(digit_ckpt), str(tmp_path / "none.pt")]) == 2
    assert "none.pt: checkpoint file not found" in capsys.readouterr().err


def _onehot(labels, k=3, p=0.9):
    out = np.full((len(labels), k), (1 - p) / (k - 1))
    out[np.arange(len(labels)), labels] = p
    return out


def test_select_members_greedy_on_a_known_case():
    y = np.array([0, 1, 2, 0, 1, 2])
    good = _onehot(y)  # right everywhere
    a = _onehot(np.array([1, 2, 2, 0, 1, 2]))  # each wrong on a different pair of examples
    b = _onehot(np.array([0, 1, 0, 1, 1, 2]))
    c = _onehot(np.array([0, 1, 2, 0, 2, 0]))
    noise = _onehot(np.array([2, 0, 1, 1, 2, 0]))  # never right
    # the best single model first; nothing improves on a perfect, confident member
    assert select_members([noise, good, a], y) == [1]
    # three members that each get 4 of 6 right, but a different 4: together they get all 6; noise left out
    chosen = select_members([a, noise, b, c], y)
    assert sorted(chosen) == [0, 2, 3]
    assert ((a + b + c).argmax(1) == y).all()
    assert select_members([noise], y) == [0]
    with pytest.raises(LenetlabError, match="at least one model"):
        select_members([], y)


def test_select_chooses_on_dev_and_reports_test(digit_ckpt, second_ckpt, subset, capsys):
    dev, test = ensemble_select([digit_ckpt, second_ckpt, digit_ckpt], splits=subset)
    assert dev.split == "dev" and test.split == "test" and 1 <= len(test.members) <= 3
    assert [m["checkpoint"] for m in dev.members] == [m["checkpoint"] for m in test.members]
    best_single = max(
        m["accuracy"] for m in ensemble_evaluate([digit_ckpt, second_ckpt], splits=subset, split="dev").members
    )
    assert dev.selection["rule"] in ("greedy", "all") and dev.selection["repeats"] == 20
    if dev.selection["rule"] == "greedy":
        assert dev.accuracy >= best_single  # greedy selection never does worse on the split it chose on
    assert main(["ensemble", str(digit_ckpt), str(second_ckpt), "--select", "--device", "cpu", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["split"] == "test" and data["chosen_on_dev"]["split"] == "dev" and len(data["candidates"]) == 2
    assert data["chosen_on_dev"]["selection"]["rule"] in ("greedy", "all")
    assert main(["ensemble", str(digit_ckpt), str(second_ckpt), "--select", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("chose ") and "held-out halves of dev, 20 cuts" in out
    assert main(["ensemble", str(digit_ckpt), str(second_ckpt), "--select", "all", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.startswith("chose 2 of 2 models on the dev split (200 examples) by all of them;")
    with pytest.raises(SystemExit):
        main(["ensemble", str(digit_ckpt), "--select", "best"])
    assert "invalid choice: 'best'" in capsys.readouterr().err
    assert main(["ensemble", str(digit_ckpt), "--select", "--split", "dev", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --select") and "Traceback" not in err


def test_choose_committee_keeps_greedy_only_when_it_carries_over_to_held_out_halves():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400)
    # one model right everywhere, the others right on a random 60%: greedy picks the perfect one,
    # and it stays perfect on every unseen half, where the average of all is not
    good = _onehot(y)
    weak = [_onehot(np.where(rng.random(400) < 0.6, y, (y + 1) % 3)) for _ in range(4)]
    chosen, report = choose_committee([*weak, good], y)
    assert chosen == [4] and report["rule"] == "greedy"
    assert report["held_out_error"]["greedy"] == 0 < report["held_out_error"]["all"]
    # equally good models, each wrong on its own random 10%: no choice among them generalises better
    # than their average, which is right almost everywhere
    same = [_onehot(np.where(rng.random(400) < 0.9, y, (y + 1) % 3)) for _ in range(7)]
    chosen, report = choose_committee(same, y)
    assert report["rule"] == "all" and chosen == list(range(7))
    assert report["held_out_error"]["all"] < report["held_out_error"]["greedy"]
    with pytest.raises(LenetlabError, match="at least one model"):
        choose_committee([], y)
    # a forced rule skips the cross-validation
    assert choose_committee(same, y, rule="greedy") == (
        select_members(same, y),
        {"rule": "greedy", "repeats": 0, "held_out_error": None},
    )
    assert choose_committee([*weak, good], y, rule="all")[0] == [0, 1, 2, 3, 4]
    with pytest.raises(LenetlabError, match="--select must be one of auto, greedy, all"):
        choose_committee(same, y, rule="best")


class _Fixed:
    """A stand-in predictor whose probabilities without and with TTA are given."""

    def __init__(self, off, on):
        self.class_names = ["a", "b"]
        self.off, self.on = off, on

    def predict_proba(self, x, batch_size=1000, tta=False):
        return self.on if tta else self.off


def test_choose_tta_decides_on_the_dev_split():
    y = np.array([0, 1, 1, 0])
    dev = type("Part", (), {"x": torch.zeros(4, 1, 2, 2), "y": torch.tensor(y), "__len__": lambda self: 4})()
    right, wrong = _onehot(y), _onehot(1 - y)
    helps = _Fixed(off=wrong, on=right)
    use, scores, probs = choose_tta([helps], dev, "auto")
    assert use and scores == {"off": 0.0, "on": 1.0} and probs[0] is right
    hurts = _Fixed(off=right, on=wrong)
    use, scores, probs = choose_tta([hurts], dev, "auto")
    assert not use and scores == {"off": 1.0, "on": 0.0} and probs[0] is right
    assert choose_tta([hurts], dev, "on")[0] is True and choose_tta([helps], dev, "off")[:2] == (False, {"off": 0.0})
    # without a labelled dev split nothing is measured: auto means off
    assert choose_tta([helps], None, "auto") == (False, {}, []) and choose_tta([helps], None, "on") == (True, {}, [])
    with pytest.raises(LenetlabError, match="--tta must be one of off, on, auto"):
        choose_tta([helps], dev, "maybe")


def test_tta_through_evaluate_select_and_cli(digit_ckpt, second_ckpt, subset, capsys):
    res = ensemble_evaluate([digit_ckpt, second_ckpt], splits=subset, tta="on")
    preds = [load_predictor(p, device="cpu") for p in (digit_ckpt, second_ckpt)]
    mean = sum(p.predict_proba(subset.test.x, tta=True) for p in preds) / 2
    assert res.tta and res.tta_dev_accuracy is None
    assert res.accuracy == pytest.approx(float((mean.argmax(1) == subset.test.y.numpy()).mean()))
    assert (
        res.accuracy != ensemble_evaluate([digit_ckpt, second_ckpt], splits=subset).accuracy
        or res.nll != ensemble_evaluate([digit_ckpt, second_ckpt], splits=subset).nll
    )  # the shifted views were used
    auto = ensemble_evaluate([digit_ckpt, second_ckpt], splits=subset, tta="auto")
    use, scores, _ = choose_tta(preds, subset.dev, "auto")
    assert auto.tta == use and auto.tta_dev_accuracy == scores and set(scores) == {"off", "on"}
    dev, test = ensemble_select([digit_ckpt, second_ckpt], splits=subset, rule="all", tta="on")
    assert dev.tta and test.tta and dev.tta_dev_accuracy["on"] == pytest.approx(dev.accuracy)
    assert test.accuracy == pytest.approx(res.accuracy)  # all members, with shifts: the same figure as above
    assert main(["ensemble", str(digit_ckpt), str(second_ckpt), "--tta", "auto", "--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("test-time augmentation (one-pixel shifts): dev accuracy ")
    assert out[0].endswith(": used" if use else ": not used")
    assert out[1].startswith("mnist-subset test split, 200 examples")
    with pytest.raises(SystemExit):
        main(["ensemble", str(digit_ckpt), "--tta", "maybe"])
    assert "invalid choice: 'maybe'" in capsys.readouterr().err


@pytest.mark.parametrize("run", [ensemble_evaluate, ensemble_select])
def test_a_bad_tta_mode_is_refused_before_loading(run, tmp_path):
    with pytest.raises(ConfigError, match="--tta must be one of off, on, auto"):
        run([tmp_path / "missing.pt"], tta="maybe")
