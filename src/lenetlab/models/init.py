"""Weight initialisation shared by the model builders and the training config's ``init`` field."""

import torch.nn as nn

from lenetlab.errors import ConfigError

INITS = ("default", "xavier")


def init_weights(model: nn.Module, how: str = "xavier") -> nn.Module:
    """``model`` with every Conv2d/Linear weight Xavier-uniform (``xavier``, as d2l's ``train_ch6``; biases
    kept), or as PyTorch initialised it (``default``)."""
    if how not in INITS:
        raise ConfigError(f"field 'init' must be one of {', '.join(INITS)} (got {how!r})")
    if how == "xavier":
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
    return model
