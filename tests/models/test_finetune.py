"""Fine-tuning and discovery as in timm: ``create(name, pretrained=True, num_classes=N, in_channels=C)``
keeps the pretrained layers that fit and says which it replaced; ``list_models`` filters by pattern and
by shipped weights; ``hubconf.py`` serves every model to ``torch.hub.load(..., source="local")``."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from lenetlab.models import create, list_models

REPO = Path(__file__).resolve().parents[2]


def test_a_new_head_keeps_every_other_pretrained_layer():
    shipped = create("lenet5", pretrained=True)
    with pytest.warns(UserWarning, match=r"num_classes=26\): kept the pretrained weights except output: new") as w:
        model = create("lenet5", pretrained=True, num_classes=26)
    assert len(w) == 1 and "C1" not in str(w[0].message)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 26) and not model.training
    old, new = shipped.state_dict(), model.state_dict()
    kept = [k for k in new if not k.startswith("output.")]
    assert kept and all(torch.equal(new[k], old[k]) for k in kept)
    assert new["output.weight"].shape == (26, 84)


def test_another_channel_count_adapts_the_first_convolution():
    shipped = create("lenet5", pretrained=True)
    with pytest.warns(UserWarning, match="C1: adapted from 1 to 3 input channels; output: new"):
        model = create("lenet5", pretrained=True, in_channels=3, num_classes=5)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 5)
    with pytest.warns(UserWarning, match="C1: adapted"):
        rgb = create("lenet5", pretrained=True, in_channels=3)
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():  # a grey image copied into the three channels reads as before
        assert torch.allclose(rgb(x.repeat(1, 3, 1, 1)), shipped(x), atol=1e-4)


def test_the_shipped_shape_warns_about_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create("lenet5", pretrained=True, num_classes=10, in_channels=1)


def test_list_models_filters_by_pattern_and_by_shipped_weights():
    names = [m.name for m in list_models()]
    assert [m.name for m in list_models("lenet5*")] == [n for n in names if n.startswith("lenet5")]
    assert {"lenet5", "lenet5-1998"} <= {m.name for m in list_models("lenet5*")} and "vgg11" in names
    assert [m.name for m in list_models("lenet5*", pretrained=True)] == ["lenet5"]
    either = [n for n in names if n.startswith("vgg") or n.endswith("-1998")]
    assert [m.name for m in list_models(["vgg*", "*-1998"])] == either
    assert list_models("nothing*") == [] and list_models() == list_models("")


def test_torch_hub_loads_the_pretrained_model_from_the_repository():
    shipped = create("lenet5", pretrained=True)
    model = torch.hub.load(str(REPO), "lenet5", source="local", pretrained=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), shipped.state_dict().values()))
    for entry, name in (("lenet5_1998", "lenet5-1998"), ("resnet18_small", "resnet18-small")):  # every model
        built = torch.hub.load(str(REPO), entry, source="local", num_classes=4)
        assert type(built) is type(create(name)) and built(torch.zeros(2, 1, 32, 32)).shape == (2, 4)
    with pytest.warns(UserWarning, match="output: new"):
        assert torch.hub.load(str(REPO), "lenet5", source="local", pretrained=True, num_classes=3)(
            torch.zeros(1, 1, 32, 32)
        ).shape == (1, 3)
