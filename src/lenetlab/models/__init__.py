"""Models: the registry and every architecture (LeNet-5 family, d2l zoo, from-scratch LeNet-5).

Importing this package registers all architectures. Use :func:`create` to build one by name.
"""

# Each architecture module registers its models on import.
from lenetlab.models import lenet, lenet1998, lenet_scratch, lenet_variants, zoo  # noqa: F401
from lenetlab.models.checkpoint import build_model, load_checkpoint, load_model, load_pretrained, save_checkpoint
from lenetlab.models.pretrained import pretrained_names, save_pretrained
from lenetlab.models.registry import ModelInfo, create, list_models, model_info, register_model

#: The Hugging Face name of :func:`load_pretrained`: the model of an exported folder, weights loaded.
from_pretrained = load_pretrained

__all__ = [
    "ModelInfo",
    "build_model",
    "create",
    "from_pretrained",
    "list_models",
    "load_checkpoint",
    "load_model",
    "load_pretrained",
    "model_info",
    "pretrained_names",
    "register_model",
    "save_checkpoint",
    "save_pretrained",
]
