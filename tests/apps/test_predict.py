"""`lenet predict` on generated digit images: off-centre, both polarities, a simulated photo, blanks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import render_digit
from lenetlab.apps.predict import EXIT_BLANK, predict_images, split_inputs
from lenetlab.cli import main
from lenetlab.data.images import preprocess_image
from lenetlab.data.transforms import prepare
from lenetlab.inference.predictor import load_predictor

STYLES = ("light_on_dark", "dark_on_light", "photo")


@pytest.fixture(scope="module")
def chosen(subset, digit_ckpt):
    """One test digit per class that the model reads correctly as a plain 28x28 MNIST image."""
    pred = torch.from_numpy(load_predictor(digit_ckpt).predict_proba(subset.test.x).argmax(1))
    picks = {}
    for i, (p, y) in enumerate(zip(pred.tolist(), subset.test.y.tolist())):
        if p == y and y not in picks:
            picks[y] = i
    assert len(picks) == 10
    return [picks[c] for c in range(10)]


def _write(tmp_path, subset, chosen, style):
    paths = []
    for k, i in enumerate(chosen):
        img = render_digit(
            subset.test.x[i, 0].numpy(),
            canvas=(240, 280),
            top=5 + 5 * k,
            left=15 + 9 * k,
            size=120 + 6 * k,
            dark_on_light=style == "dark_on_light",
            photo=style == "photo",
            seed=k,
        )
        p = tmp_path / f"{style}_{k}.png"
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


@pytest.mark.parametrize("style", STYLES)
def test_generated_digits_are_read_correctly(tmp_path, subset, digit_ckpt, chosen, style):
    paths = _write(tmp_path, subset, chosen, style)
    results = predict_images(load_predictor(digit_ckpt), paths, top_k=3)
    labels = [r.label for r in results]
    want = [str(int(subset.test.y[i])) for i in chosen]
    assert all(r.status == "ok" for r in results)
    correct = sum(a == b for a, b in zip(labels, want))
    assert correct >= 9, (labels, want)  # one miss allowed out of ten digits
    for r in results:
        assert len(r.top_k) == 3
        probs = [t["probability"] for t in r.top_k]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_cli_text_and_json_and_show(tmp_path, subset, digit_ckpt, chosen, capsys):
    paths = _write(tmp_path, subset, chosen[:3], "dark_on_light")
    show = tmp_path / "shown"
    assert (
        main(["predict", str(digit_ckpt), *map(str, paths), "--top-k", "2", "--device", "cpu", "--show", str(show)])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for line, p in zip(lines, paths):
        assert line.startswith(f"{p}: ") and "top-2:" in line and "%" in line
    for p in paths:
        shown = show / f"{p.stem}.input.png"
        got = np.asarray(Image.open(shown))
        assert got.shape == (28, 28)
        assert np.array_equal(got, preprocess_image(p)[0].numpy())  # exactly what the model received
    assert main(["predict", str(digit_ckpt), str(paths[0]), "--json", "--device", "cpu"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["status"] == "ok" and data[0]["label"] == data[0]["top_k"][0]["label"]
    assert len(data[0]["top_k"]) == 3 and data[0]["image"] == str(paths[0])


def test_probabilities_match_the_model_on_the_prepared_input(digit_ckpt, subset):
    pr = load_predictor(digit_ckpt)
    x = subset.test.x[:5]
    with torch.no_grad():
        ref = torch.softmax(pr.model(prepare(x, pr.spec)), 1).double()
    assert torch.allclose(torch.from_numpy(pr.predict_proba(x)), ref, atol=1e-6)


def test_blank_image_is_reported_not_classified(tmp_path, subset, digit_ckpt, chosen, capsys):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 150), "white").save(blank)
    digit = _write(tmp_path, subset, chosen[:1], "light_on_dark")[0]
    code = main(["predict", str(digit_ckpt), str(blank), str(digit), "--device", "cpu"])
    assert code == EXIT_BLANK
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{blank}: no digit found (blank image) - write or draw a digit"
    assert out[1].startswith(f"{digit}: ")
    assert main(["predict", str(digit_ckpt), str(blank), "--json", "--device", "cpu"]) == EXIT_BLANK
    data = json.loads(capsys.readouterr().out)
    assert data[0]["status"] == "blank" and data[0]["label"] is None and "no digit found" in data[0]["message"]


def test_unreadable_image_is_a_one_line_error_exit_2(tmp_path, digit_ckpt, capsys):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    assert main(["predict", str(digit_ckpt), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: not a readable image") and err.count("\n") == 1
    assert main(["predict", str(digit_ckpt), str(tmp_path / "missing.png")]) == 2
    assert "missing.png: image file not found" in capsys.readouterr().err


def test_bad_checkpoint_and_bad_top_k(tmp_path, digit_ckpt, subset, capsys):
    img = tmp_path / "d.png"
    Image.fromarray(subset.test.x[0, 0].numpy()).save(img)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"nope")
    assert main(["predict", str(junk), str(img)]) == 2
    assert "junk.pt: not a PyTorch checkpoint" in capsys.readouterr().err
    assert main(["predict", str(digit_ckpt), str(img), "--top-k", "0"]) == 2
    assert "--top-k must be at least 1" in capsys.readouterr().err


def test_predict_subprocess_end_to_end(tmp_path, digit_ckpt, subset):
    """The installed console script, as a user runs it."""
    import subprocess
    import sys
    from pathlib import Path

    img = tmp_path / "seven.png"
    Image.fromarray(render_digit(subset.test.x[0, 0].numpy(), dark_on_light=True)).save(img)
    lenet = Path(sys.executable).with_name("lenet")
    cmd = [str(lenet)] if lenet.exists() else [sys.executable, "-m", "lenetlab.cli"]
    r = subprocess.run(
        [*cmd, "predict", str(digit_ckpt), str(img), "--json", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["label"] == str(int(subset.test.y[0]))


def test_colour_model_reads_the_digit_as_grey_rgb(tmp_path, digit_ckpt, subset, capsys):
    from lenetlab.models import create, load_checkpoint, save_checkpoint

    ck = load_checkpoint(digit_ckpt)
    rgb = create("lenet5", in_channels=3)
    spec = dict(ck["input_spec"], channels=3, mean=[0.5] * 3, std=[0.5] * 3)
    p = save_checkpoint(
        tmp_path / "rgb.pt",
        {
            "model": {"name": "lenet5", "kwargs": {"in_channels": 3}},
            "state_dict": rgb.state_dict(),
            "class_names": ck["class_names"],
            "input_spec": spec,
            "config": {},
        },
    )
    img = tmp_path / "d.png"
    Image.fromarray(subset.test.x[0, 0].numpy()).save(img)
    assert main(["predict", str(p), str(img), "--json"]) == 0  # the grey digit is given to it as RGB
    assert json.loads(capsys.readouterr().out)[0]["status"] == "ok"


def test_predict_without_a_checkpoint_uses_the_shipped_model(tmp_path, subset, chosen, capsys):
    digit = _write(tmp_path, subset, chosen[3:4], "light_on_dark")[0]
    assert main(["predict", str(digit), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] == "3"


def test_options_may_come_between_the_images(tmp_path, subset, chosen, capsys):
    first, second = _write(tmp_path, subset, chosen[3:5], "light_on_dark")
    assert main(["predict", str(first), "--json", str(second), "--top-k", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["image"] for d in data] == [str(first), str(second)] and all(len(d["top_k"]) == 1 for d in data)


def test_predict_with_an_onnx_model(tmp_path, subset, chosen, digit_ckpt, capsys):
    from lenetlab.serve.export import export_onnx

    model = export_onnx(digit_ckpt, tmp_path / "m.onnx")["path"]
    digits = _write(tmp_path, subset, chosen[:3], "light_on_dark")
    assert main(["predict", "--onnx", str(model), *map(str, digits), "--json"]) == 0
    onnx = json.loads(capsys.readouterr().out)
    assert main(["predict", "--checkpoint", str(digit_ckpt), *map(str, digits), "--json"]) == 0
    torch_ = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in onnx] == [r["label"] for r in torch_] == ["0", "1", "2"]
    for a, b in zip(onnx, torch_):
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-4)


def test_split_inputs_keeps_the_older_checkpoint_first_form(tmp_path):
    (tmp_path / "run").mkdir()
    assert split_inputs([str(tmp_path / "run"), "a.png"]) == (str(tmp_path / "run"), ["a.png"])
    assert split_inputs(["model.pt", "a.png", "b.png"]) == ("model.pt", ["a.png", "b.png"])
    assert split_inputs(["a.png", "b.png"]) == (None, ["a.png", "b.png"])
    assert split_inputs(["model.pt"]) == (None, ["model.pt"])  # a lone argument is an image


def test_show_into_a_file_or_an_unwritable_folder_is_one_line(tmp_path, subset, chosen, readonly_dir, capsys):
    digit = _write(tmp_path, subset, chosen[:1], "light_on_dark")[0]
    blocker = tmp_path / "taken.png"
    blocker.write_text("a file where --show wants a folder")
    for show, needle in [
        (blocker, f"--show {blocker}: is a file, not a folder"),
        (readonly_dir / "shown", f"--show {readonly_dir / 'shown'}: cannot write in this folder"),
    ]:
        assert main(["predict", str(digit), "--show", str(show)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and needle in err and err.count("\n") == 1, err
    assert blocker.read_text().startswith("a file")
