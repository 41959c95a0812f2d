"""LeNet-5 variants from d2l and the tutorials (``lenet-d2l``, ``lenet5-mini``, ``lenet5-bn``,
``lenet5-modern``) and lenetlab's ``lenet5-fast``, the fastest to 99% on a CPU. Layers keep the paper's
names, also where C5 is fully connected (the 28×28 versions).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.errors import ConfigError
from lenetlab.models.init import init_weights
from lenetlab.models.lenet import LeNet
from lenetlab.models.registry import register_model


class LeNetFC(LeNet):
    """The 28×28 LeNets whose C5 is fully connected: ``[N, C, 28, 28] -> [N, num_classes]``. Every hidden
    layer is followed by ``act`` (with ``batch_norm``, batch norm first), C1 and C3 then by a 2×2 ``pool``;
    ``padding`` 2 keeps C1's maps 28×28, as in d2l."""

    def __init__(self, num_classes, in_channels, act, pool, padding: int = 0, batch_norm: bool = False) -> None:
        hidden = ("C1", "C3", "C5", "F6")
        super().__init__(act, tuple(f"{n}_bn" for n in hidden) if batch_norm else hidden, flatten_at="C5")
        side = ((28 + 2 * padding - 4) // 2 - 4) // 2  # S4's maps: 5×5 with padding 2, else 4×4
        layers = (
            ("C1", nn.Conv2d(in_channels, 6, 5, padding=padding), nn.BatchNorm2d(6)),
            ("S2", pool(2), None),
            ("C3", nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16)),
            ("S4", pool(2), None),
            ("C5", nn.Linear(16 * side * side, 120), nn.BatchNorm1d(120)),
            ("F6", nn.Linear(120, 84), nn.BatchNorm1d(84)),
            ("output", nn.Linear(84, num_classes), None),
        )
        for name, layer, norm in layers:
            self.add_module(name, layer)
            if batch_norm and norm is not None:
                self.add_module(f"{name}_bn", norm)


@register_model(
    "lenet-d2l", input_size=(1, 28, 28), description="d2l LeNet: sigmoid, C1 padding 2, average pooling, Xavier init"
)
def lenet_d2l(num_classes: int = 10, in_channels: int = 1, activation: str = "sigmoid", pool: str = "avg") -> nn.Module:
    """d2l's LeNet (its CNN chapter), Xavier-initialised; ``activation="relu"`` and ``pool="max"`` give the
    modernised version d2l's exercises ask for (``lenet lesson train-lenet`` trains both)."""
    if activation not in ("sigmoid", "relu") or pool not in ("avg", "max"):
        raise ConfigError(
            f"lenet-d2l: activation must be sigmoid or relu and pool avg or max, got {activation!r} and {pool!r}"
        )
    act = torch.sigmoid if activation == "sigmoid" else F.relu
    return init_weights(LeNetFC(num_classes, in_channels, act, nn.AvgPool2d if pool == "avg" else nn.MaxPool2d, 2))


@register_model(
    "lenet5-mini",
    input_size=(1, 28, 28),
    description="a typical tutorial's 28x28 LeNet-5: ReLU, max pooling, 16x4x4 -> 120 -> 84",
)
def lenet5_mini(num_classes: int = 10, in_channels: int = 1, activation: str = "relu") -> nn.Module:
    """A typical tutorial's 28×28 LeNet-5 with max pooling. That tutorial's code has no activation
    functions (``activation="none"``); ``"relu"`` adds the ReLUs the LeNet figure it cites intends."""
    if activation not in ("relu", "none"):
        raise ConfigError(f"lenet5-mini: activation must be 'relu' or 'none', got {activation!r}")
    return LeNetFC(num_classes, in_channels, nn.ReLU() if activation == "relu" else nn.Identity(), nn.MaxPool2d)


@register_model(
    "lenet5-bn", input_size=(1, 28, 28), description="d2l batch-norm LeNet: conv/linear -> BN -> sigmoid, max pooling"
)
def lenet5_bn(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """d2l's batch-norm LeNet, Xavier-initialised (``BatchNorm1d`` after the fully connected layers)."""
    return init_weights(LeNetFC(num_classes, in_channels, torch.sigmoid, nn.MaxPool2d, batch_norm=True))


@register_model(
    "lenet5-modern",
    input_size=(1, 32, 32),
    description="LeNet-5 geometry, 32/64-map C1/C3, BN, ReLU, max pool, dropout (~256K params)",
)
class LeNetModern(LeNet):
    """LeNet-5's geometry with today's tricks: ``[N, C, 32, 32] -> [N, num_classes]``.

    C1/C3 widened to ``width``/``2·width`` maps, conv → BatchNorm → ReLU, max pooling, dropout before
    F6 and the output. Default width: 255,530 parameters, 5.95M MACs (lenet5: 61,706 and 0.42M).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32, dropout: float = 0.3) -> None:
        super().__init__(F.relu, activated=("C1_bn", "C3_bn", "C5_bn", "F6_bn"), flatten_at="drop5")
        c1, c3 = width, 2 * width
        self.C1 = nn.Conv2d(in_channels, c1, 5, bias=False)  # [N, w, 28, 28]; bias is redundant before BN
        self.C1_bn = nn.BatchNorm2d(c1)  # then ReLU
        self.S2 = nn.MaxPool2d(2)  # [N, w, 14, 14]
        self.C3 = nn.Conv2d(c1, c3, 5, bias=False)  # [N, 2w, 10, 10]
        self.C3_bn = nn.BatchNorm2d(c3)
        self.S4 = nn.MaxPool2d(2)  # [N, 2w, 5, 5]
        self.C5 = nn.Conv2d(c3, 120, 5, bias=False)  # [N, 120, 1, 1]
        self.C5_bn = nn.BatchNorm2d(120)
        self.drop5 = nn.Dropout(dropout)  # [N, 120]
        self.F6 = nn.Linear(120, 84, bias=False)  # [N, 84]
        self.F6_bn = nn.BatchNorm1d(84)
        self.drop6 = nn.Dropout(dropout)
        self.output = nn.Linear(84, num_classes)  # [N, num_classes]


@register_model(
    "lenet5-fast",
    input_size=(1, 28, 28),
    description="LeNet-5 on unpadded 28x28 digits, pooling before BN/ReLU: fastest to 99% on a CPU",
)
class LeNetFast(LeNet):
    """The model of the ``fast-lenet5`` recipe: ``[N, C, 28, 28] -> [N, num_classes]``, ``c1``/``c3`` maps.

    Two measured changes to :class:`LeNetModern` (``docs/speed.md``): the digit is not padded (44% fewer
    C1 positions), and each pooling comes before batch norm and ReLU, as in airbench (max pooling
    commutes with ReLU; the slow backward passes of BN and ReLU run on a quarter of the values).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, c1: int = 16, c3: int = 32) -> None:
        if c1 < 1 or c3 < 1:
            raise ConfigError(f"lenet5-fast: c1 and c3 must be positive map counts, got {c1} and {c3}")
        super().__init__(F.relu, activated=("C1_bn", "C3_bn", "C5_bn", "F6_bn"), flatten_at="F6")
        self.C1 = nn.Conv2d(in_channels, c1, 5, bias=False)  # [N, c1, 24, 24]; bias is redundant before BN
        self.S2 = nn.MaxPool2d(2)  # [N, c1, 12, 12]
        self.C1_bn = nn.BatchNorm2d(c1)  # then ReLU
        self.C3 = nn.Conv2d(c1, c3, 5, bias=False)  # [N, c3, 8, 8]
        self.S4 = nn.MaxPool2d(2)  # [N, c3, 4, 4]
        self.C3_bn = nn.BatchNorm2d(c3)
        self.C5 = nn.Conv2d(c3, 120, 4, bias=False)  # [N, 120, 1, 1]
        self.C5_bn = nn.BatchNorm2d(120)
        self.F6 = nn.Linear(120, 84, bias=False)  # [N, 120] -> [N, 84]
        self.F6_bn = nn.BatchNorm1d(84)
        self.output = nn.Linear(84, num_classes)  # [N, num_classes]
