"""PyTorch Hub entry points: ``torch.hub.load(REPO_DIR, "lenet5", source="local", pretrained=True)``.

One entry per registered model, named as in ``lenet models`` with ``-`` written ``_`` (``lenet5_1998``);
each takes ``create``'s arguments (``pretrained``, ``num_classes``, ``in_channels``, model options) and
needs no network: the shipped weights are inside the package. A clone that is not installed is found
through its own ``src/`` folder.
"""

import importlib.util
import sys
from pathlib import Path

dependencies = ["torch", "numpy", "safetensors"]

if importlib.util.find_spec("lenetlab") is None:  # a clone without `pip install`: its own sources
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from lenetlab.models import create, list_models  # noqa: E402


def _entry(name: str, description: str):
    def entry(pretrained: bool = False, **kwargs):
        return create(name, pretrained=pretrained, **kwargs)

    entry.__name__ = name.replace("-", "_")
    entry.__doc__ = f"{name}: {description} (lenetlab.models.create({name!r}, pretrained=..., **kwargs))"
    return entry


for _info in list_models():
    globals()[_info.name.replace("-", "_")] = _entry(_info.name, _info.description)
