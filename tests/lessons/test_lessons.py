"""Every lesson runs, passes its own checks and shows the book's numbers; the docs page matches."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from lenetlab.errors import ConfigError, LenetlabError
from lenetlab.lessons import LESSONS, Lesson, _catalogue, get_lesson, run_lesson
from lenetlab.lessons.padding_stride import output_size
from lenetlab.models import list_models, model_info

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reports():
    """Each lesson run once with its defaults (the shapes lesson alone takes a few seconds)."""
    return {name: run_lesson(name) for name in LESSONS}


@pytest.mark.parametrize("name", list(LESSONS))
def test_every_lesson_passes_its_checks_and_explains_itself(name, reports):
    report = reports[name]
    assert report.checks and report.passed, report.text()
    assert report.text().strip()
    json.dumps(report.to_dict())  # --json needs plain data
    idea = LESSONS[name].idea
    assert len(re.findall(r"\.(?:\s|$)", idea)) >= 4, (
        f"{name}: the docstring should explain the idea in a few sentences"
    )
    assert "def run(" in LESSONS[name].source()


def test_edge_detection_shows_the_edges(reports):
    d = reports["edge-detection"].data
    assert d["Y3"] == [[19, 25], [37, 43]]
    expected = [[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]] * 6
    assert d["Y"] == expected
    assert d["Y_transposed"] == [[0.0] * 5] * 8  # the [1, -1] kernel is blind to horizontal edges
    assert d["Y_transposed_kernel"] == [list(col) for col in zip(*expected)]


def test_edge_detection_with_another_kernel():
    report = run_lesson("edge-detection", kernel="1;-1")  # a column kernel: finds nothing in X, everything in X.T
    assert report.passed
    assert not any(v for row in report.data["Y"] for v in row)
    assert report.data["Y_transposed"][1] == [1.0] * 6


@pytest.mark.parametrize("bad", ["1,x", "1,2;3", "", "1,2,3,4,5,6,7,8,9"])
def test_edge_detection_rejects_bad_kernels(bad):
    with pytest.raises(ConfigError, match="--kernel"):
        run_lesson("edge-detection", kernel=bad)


def test_learn_kernel_recovers_one_minus_one(reports):
    d = reports["learn-kernel"].data
    kernel = torch.tensor(d["kernel"])
    assert (kernel - torch.tensor([[1.0, -1.0]])).abs().max() < 0.1  # seed 0 ends within 0.081
    losses = d["losses"]
    assert len(losses) == 10 and all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 0.5
    assert torch.allclose(torch.tensor(d["torch_kernel"]), kernel, atol=1e-6)
    assert d["lr_limit"] == pytest.approx(1 / 30)  # Hessian 2 A^T A = [[36, 24], [24, 36]]: eigenvalues 60 and 12


def test_learn_kernel_loop_layer_learns_the_same_kernel(reports):
    loop = run_lesson("learn-kernel", impl="loop")
    assert loop.passed
    assert torch.allclose(
        torch.tensor(loop.data["kernel"]), torch.tensor(reports["learn-kernel"].data["kernel"]), atol=1e-6
    )


def test_learn_kernel_too_large_a_step_fails_its_check():
    report = run_lesson("learn-kernel", lr=0.04)  # just above the limit of 1/30
    assert not report.checks["learned"] and not report.passed
    assert "above the limit 0.0333" in report.text()
    assert report.data["losses"][-1] > report.data["losses"][0]


@pytest.mark.parametrize(
    "options, field",
    [
        ({"lr": -1.0}, "--lr"),
        ({"lr": float("nan")}, "--lr"),
        ({"steps": 0}, "--steps"),
        ({"every": 0}, "--every"),
        ({"impl": "fft"}, "--impl"),
    ],
)
def test_learn_kernel_rejects_bad_options(options, field):
    with pytest.raises(ConfigError, match=field):
        run_lesson("learn-kernel", **options)


def test_padding_stride_cases(reports):
    cases = reports["padding-stride"].data["cases"]
    for case, expected in zip(cases, ([8, 8], [8, 8], [4, 4], [2, 2])):
        assert case["formula"] == case["torch"] == case["ops"] == expected


def test_padding_stride_size_bounds():
    assert run_lesson("padding-stride", size=3).passed
    with pytest.raises(ConfigError, match="--size"):
        run_lesson("padding-stride", size=2)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 7), p=st.integers(0, 3), s=st.integers(1, 5))
def test_output_size_formula_matches_torch(n, k, p, s):
    if n + 2 * p < k:
        return
    out = nn.Conv2d(1, 1, (k, 1), padding=(p, 0), stride=(s, 1))(torch.zeros(1, 1, n, 1)).shape[2]
    assert output_size(n, k, 2 * p, s) == out


def test_channels_book_numbers(reports):
    d = reports["channels"].data
    assert d["Y_multi_in"] == [[56, 72], [104, 120]]
    assert d["Y_multi_out"] == [[[56, 72], [104, 120]], [[76, 100], [148, 172]], [[96, 128], [192, 224]]]
    assert max(d["max_diffs"].values()) < 1e-6  # 1x1 convolution == nn.Linear at every pixel
    assert run_lesson("channels", seed=7).passed


def test_pooling_book_numbers(reports):
    d = reports["pooling"].data
    assert d["max"] == [[4, 5], [7, 8]] and d["avg"] == [[2, 3], [5, 6]]
    assert d["setting0"] == [[10]]
    assert d["setting1"] == d["setting2"] == [[5, 7], [13, 15]]
    assert d["setting3"] == [[1, 3], [9, 11], [13, 15]]  # MaxPool2d((2, 3), padding=(1, 1), stride=(2, 3))
    assert d["channels"] == [[[5, 7], [13, 15]], [[6, 8], [14, 16]]]


def test_batch_norm_matches_torch(reports):
    d = reports["batch-norm"].data
    assert d["train_diff"] < 1e-5 and d["eval_diff"] < 1e-5 and d["fc_diff"] < 1e-5
    assert max(d["grad_diffs"].values()) < 1e-5
    ratio = (torch.tensor(d["torch_running_var"]) - 0.9) / (torch.tensor(d["book_running_var"]) - 0.9)
    assert torch.allclose(ratio, torch.full((3,), 128 / 127))  # torch: unbiased variance, the book: biased
    assert torch.allclose(torch.tensor(d["running_mean"]), torch.tensor(d["running_mean_torch"]), atol=1e-6)
    assert torch.allclose(torch.tensor(d["running_var"]), torch.tensor(d["running_var_torch"]), atol=1e-6)
    assert torch.allclose(torch.tensor(d["out_mean"]), torch.tensor([0.0, 1.0, -1.0]), atol=1e-5)  # beta
    assert torch.allclose(torch.tensor(d["out_std"]), torch.tensor([1.0, 2.0, 0.5]), atol=1e-3)  # gamma
    assert run_lesson("batch-norm", seed=3, steps=5).passed
    with pytest.raises(ConfigError, match="--steps"):
        run_lesson("batch-norm", steps=0)


# The shapes d2l prints (`for layer in net: print(layer.__class__.__name__, X.shape)`) without the batch
# dimension, leaving out the rows for layers lenetlab applies as functions in forward() (sigmoid, flatten).
CLASSIFIER = "4096 4096 4096 4096 4096 4096 10"  # Linear, ReLU, Dropout twice, then the scores
PRINTED = {
    "lenet-d2l": "6x28x28 6x14x14 16x10x10 16x5x5 120 84 10",
    "alexnet": "96x54x54 96x54x54 96x26x26 256x26x26 256x26x26 256x12x12 384x12x12 384x12x12 384x12x12 "
    f"384x12x12 256x12x12 256x12x12 256x5x5 {CLASSIFIER}",
    "vgg11": f"64x112x112 128x56x56 256x28x28 512x14x14 512x7x7 {CLASSIFIER}",
    "nin": "96x54x54 96x26x26 256x26x26 256x12x12 384x12x12 384x5x5 384x5x5 10x5x5 10x1x1 10",
    "googlenet": "64x24x24 192x12x12 480x6x6 832x3x3 1024 10",
    "resnet18": "64x56x56 64x56x56 128x28x28 256x14x14 512x7x7 512x1x1 512 10",
}
BOOK_SHAPES = {name: [[1, *map(int, s.split("x"))] for s in text.split()] for name, text in PRINTED.items()}
BOOK_INPUTS = {"lenet-d2l": 28, "alexnet": 224, "vgg11": 224, "nin": 224, "googlenet": 96, "resnet18": 224}


def test_shapes_are_the_books(reports):
    d = reports["shapes"].data
    assert list(d) == list(BOOK_SHAPES)
    for name, shapes in BOOK_SHAPES.items():
        assert d[name]["input"] == [1, 1, BOOK_INPUTS[name], BOOK_INPUTS[name]]
        assert [layer["shape"] for layer in d[name]["layers"]] == shapes, name
    assert [layer["type"] for layer in d["googlenet"]["layers"]] == ["Sequential"] * 5 + ["Linear"]


def test_shapes_of_one_model_outside_the_book():
    report = run_lesson("shapes", model="lenet5")
    assert report.passed
    layers = report.data["lenet5"]["layers"]
    assert [x["layer"] for x in layers] == ["C1", "S2", "C3", "S4", "C5", "F6", "output"]
    assert layers[4]["shape"] == [1, 120, 1, 1] and layers[4]["params"] == 48_120
    with pytest.raises(LenetlabError, match="unknown model"):
        run_lesson("shapes", model="lenet6")


@pytest.mark.parametrize("model", [m.name for m in list_models() if m.name not in BOOK_SHAPES])
def test_shapes_runs_on_every_registered_model(model):
    report = run_lesson("shapes", model=model)
    assert report.passed  # the last layer gives [1, 10]
    assert report.data[model]["input"] == [1, *model_info(model).input_size]


def test_lenet5_by_hand_counts(reports):
    d = reports["lenet5-by-hand"].data
    assert [x["params"] for x in d["layers"]] == [156, 0, 2416, 0, 48120, 10164, 850]
    assert [x["operations"] for x in d["layers"]] == [122304, 0, 241600, 400, 48120, 10080, 840]
    assert [x["operations"] for x in d["layers"]] == [x["profile_formula"] for x in d["layers"]]
    assert d["totals"] == {
        "params": 61706,
        "profile_params": 61706,
        "operations": 423344,
        "profile_macs": 416520,
        "profile_flops": 833040,
    }


def test_im2col_columns(reports):
    d = reports["im2col"].data
    assert d["columns"] == [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]]
    assert d["Y"] == [[19, 25], [37, 43]]


@pytest.mark.slow
def test_docs_page_is_the_real_output(tmp_path):
    # rendered in a fresh process, as `python -m lenetlab.lessons.docs` writes it: the printed float32
    # differences (~1e-7) may depend on kernel choices that earlier tests in this process changed
    fresh = tmp_path / "lessons.md"
    subprocess.run([sys.executable, "-m", "lenetlab.lessons.docs", str(fresh)], check=True, capture_output=True)
    page = REPO / "docs" / "lessons.md"
    assert page.read_text(encoding="utf-8") == fresh.read_text(encoding="utf-8"), (
        "docs/lessons.md is stale: run `python -m lenetlab.lessons.docs`"
    )


def test_catalogue_refuses_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="listed twice"):
        _catalogue(Lesson("a", "edges", "x"), Lesson("a", "pooling", "y"))
    with pytest.raises(LenetlabError, match="did you mean pooling"):
        get_lesson("poolin")
    with pytest.raises(ConfigError, match="unknown option 'size'.*options: none"):
        run_lesson("pooling", size=3)


def test_lesson_output_does_not_depend_on_the_callers_threads():
    before = torch.get_num_threads()
    try:
        outputs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            outputs.append(run_lesson("batch-norm").text())  # prints float32 differences of ~1e-7
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    assert outputs[0] == outputs[1]


def test_lessons_leave_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_lesson("padding-stride")  # builds nn.Conv2d layers, which draw from the global generator
    assert torch.equal(torch.rand(3), expected)


def test_train_lenet_quick_relu_beats_sigmoid():
    report = run_lesson("train-lenet", epochs=3, batch=32)
    assert report.passed, report.text()
    d = report.data
    assert len(d["sigmoid"]["loss"]) == len(d["relu"]["test_accuracy"]) == 3
    assert d["relu"]["test_accuracy"][-1] > d["sigmoid"]["test_accuracy"][-1]
    assert d["relu"]["loss"][-1] < d["relu"]["loss"][0]  # it learns
    text = report.text()
    assert "epoch 1  2  3" in text and "s = sigmoid, r = ReLU" in text


@pytest.mark.parametrize("option", [{"epochs": 0}, {"epochs": 51}, {"batch": 0}])
def test_train_lenet_rejects_bad_sizes(option):
    with pytest.raises(ConfigError, match="--epochs|--batch"):
        run_lesson("train-lenet", **option)
