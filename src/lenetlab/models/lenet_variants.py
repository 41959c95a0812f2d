"""LeNet-5 variants from d2l and the tutorials: ``lenet-d2l``, ``lenet5-mini``, ``lenet5-bn``, ``lenet5-modern``,
and lenetlab's ``lenet5-fast`` (the fastest to 99% on a CPU).

Layer attribute names follow the paper (C1, S2, C3, S4, C5, F6, output) even where C5 is a
fully connected layer, as in d2l's and a typical tutorial's 28×28 versions.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.errors import ConfigError
from lenetlab.models.init import init_weights
from lenetlab.models.registry import register_model


class LeNetD2L(nn.Module):
    """d2l's LeNet (its CNN chapter): sigmoid, C1 padding 2, average pooling; input ``[N, C, 28, 28]``.

    ``activation="relu"`` and ``pool="max"`` give the modernised version d2l's exercises ask for
    (``lenet lesson train-lenet`` trains both).
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, activation: str = "sigmoid", pool: str = "avg"
    ) -> None:
        super().__init__()
        if activation not in ("sigmoid", "relu") or pool not in ("avg", "max"):
            raise ConfigError(
                f"lenet-d2l: activation must be sigmoid or relu and pool avg or max, got {activation!r} and {pool!r}"
            )
        self.act = torch.sigmoid if activation == "sigmoid" else F.relu
        pooling = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
        self.C1 = nn.Conv2d(in_channels, 6, 5, padding=2)
        self.S2 = pooling(2)
        self.C3 = nn.Conv2d(6, 16, 5)
        self.S4 = pooling(2)
        self.C5 = nn.Linear(16 * 5 * 5, 120)
        self.F6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, 28, 28]``."""
        x = self.S2(self.act(self.C1(x)))  # [N, 6, 14, 14]
        x = self.S4(self.act(self.C3(x)))  # [N, 16, 5, 5]
        x = self.act(self.C5(torch.flatten(x, 1)))  # [N, 120]
        x = self.act(self.F6(x))  # [N, 84]
        return self.output(x)  # [N, num_classes]


class LeNetMini(nn.Module):
    """A typical tutorial's 28×28 LeNet-5 (Kaggle-style): max pooling, flatten 16×4×4 → 120 → 84 → classes.

    That tutorial's code has no activation functions at all (only the max pools are non-linear);
    ``activation="relu"`` (default) adds ReLU after every hidden layer as the LeNet figure it
    cites intends, ``activation="none"`` reproduces its code exactly.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, activation: str = "relu") -> None:
        super().__init__()
        if activation not in ("relu", "none"):
            raise ConfigError(f"lenet5-mini: activation must be 'relu' or 'none', got {activation!r}")
        self.act = nn.ReLU() if activation == "relu" else nn.Identity()
        self.C1 = nn.Conv2d(in_channels, 6, 5)
        self.S2 = nn.MaxPool2d(2)
        self.C3 = nn.Conv2d(6, 16, 5)
        self.S4 = nn.MaxPool2d(2)
        self.C5 = nn.Linear(16 * 4 * 4, 120)
        self.F6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, 28, 28]``."""
        x = self.S2(self.act(self.C1(x)))  # [N, 6, 12, 12]
        x = self.S4(self.act(self.C3(x)))  # [N, 16, 4, 4]
        x = self.act(self.C5(torch.flatten(x, 1)))  # [N, 120]
        x = self.act(self.F6(x))  # [N, 84]
        return self.output(x)  # [N, num_classes]


class LeNetBN(nn.Module):
    """d2l's batch-norm LeNet: BN before each sigmoid, max pooling; input ``[N, C, 28, 28]``.

    A typical d2l write-up's ``nn.BatchNorm2d(120)`` on a flat ``[N, 120]`` tensor fails in PyTorch; the fully
    connected layers use ``BatchNorm1d`` as its hand-written ``BatchNorm(num_dims=2)`` means.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.C1 = nn.Conv2d(in_channels, 6, 5)
        self.C1_bn = nn.BatchNorm2d(6)
        self.S2 = nn.MaxPool2d(2)
        self.C3 = nn.Conv2d(6, 16, 5)
        self.C3_bn = nn.BatchNorm2d(16)
        self.S4 = nn.MaxPool2d(2)
        self.C5 = nn.Linear(16 * 4 * 4, 120)
        self.C5_bn = nn.BatchNorm1d(120)
        self.F6 = nn.Linear(120, 84)
        self.F6_bn = nn.BatchNorm1d(84)
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, 28, 28]``."""
        x = self.S2(torch.sigmoid(self.C1_bn(self.C1(x))))  # [N, 6, 12, 12]
        x = self.S4(torch.sigmoid(self.C3_bn(self.C3(x))))  # [N, 16, 4, 4]
        x = torch.sigmoid(self.C5_bn(self.C5(torch.flatten(x, 1))))  # [N, 120]
        x = torch.sigmoid(self.F6_bn(self.F6(x)))  # [N, 84]
        return self.output(x)  # [N, num_classes]


class LeNetModern(nn.Module):
    """LeNet-5's geometry with today's tricks, for the best accuracy the family reaches.

    Input ``[N, C, 32, 32]`` like LeNet-5. Changes, each for accuracy at small cost:
    C1/C3 widened from 6/16 to ``width``/``2·width`` maps (32/64 by default: more low-level
    features are the cheapest gain on digits), conv → BatchNorm → ReLU (stable fast training at
    high learning rates), max pooling, dropout before F6 and before the output. With the default
    width it has 255,530 parameters and 5.95M MACs (lenet5: 61,706 and 0.42M). Aimed at < 0.5 % MNIST test error when
    trained with augmentation (random shifts/rotations); not a measured guarantee.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32, dropout: float = 0.3) -> None:
        super().__init__()
        c1, c3 = width, 2 * width
        self.C1 = nn.Conv2d(in_channels, c1, 5, bias=False)  # bias is redundant before BN
        self.C1_bn = nn.BatchNorm2d(c1)
        self.S2 = nn.MaxPool2d(2)
        self.C3 = nn.Conv2d(c1, c3, 5, bias=False)
        self.C3_bn = nn.BatchNorm2d(c3)
        self.S4 = nn.MaxPool2d(2)
        self.C5 = nn.Conv2d(c3, 120, 5, bias=False)
        self.C5_bn = nn.BatchNorm2d(120)
        self.drop5 = nn.Dropout(dropout)
        self.F6 = nn.Linear(120, 84, bias=False)
        self.F6_bn = nn.BatchNorm1d(84)
        self.drop6 = nn.Dropout(dropout)
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, 32, 32]``."""
        x = self.S2(F.relu(self.C1_bn(self.C1(x))))  # [N, w, 14, 14]
        x = self.S4(F.relu(self.C3_bn(self.C3(x))))  # [N, 2w, 5, 5]
        x = F.relu(self.C5_bn(self.C5(x)))  # [N, 120, 1, 1]
        x = self.drop5(torch.flatten(x, 1))  # [N, 120]
        x = self.drop6(F.relu(self.F6_bn(self.F6(x))))  # [N, 84]
        return self.output(x)  # [N, num_classes]


class LeNetFast(nn.Module):
    """LeNet-5 rearranged for speed on a CPU: the model of the ``fast-lenet5`` recipe.

    Two changes to :class:`LeNetModern`, each measured (``docs/speed.md``): the 28×28 digit is used
    as it is instead of padded to 32×32 (C1 then produces 24×24 maps, 44% fewer positions, and C5
    becomes a 4×4 convolution), and each pooling layer comes right after its convolution, before
    batch norm and ReLU, as airbench does: max pooling commutes with ReLU, so the network keeps its
    kind of non-linearity while batch norm and ReLU, slow in their backward passes on a CPU, run on
    a quarter of the values. ``c1``/``c3`` are the C1/C3 map counts (16/32 by default: more C1 maps
    learned faster per example than they cost). No dropout: runs this short do not overfit.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, c1: int = 16, c3: int = 32) -> None:
        super().__init__()
        if c1 < 1 or c3 < 1:
            raise ConfigError(f"lenet5-fast: c1 and c3 must be positive map counts, got {c1} and {c3}")
        self.C1 = nn.Conv2d(in_channels, c1, 5, bias=False)  # bias is redundant before BN
        self.S2 = nn.MaxPool2d(2)
        self.C1_bn = nn.BatchNorm2d(c1)
        self.C3 = nn.Conv2d(c1, c3, 5, bias=False)
        self.S4 = nn.MaxPool2d(2)
        self.C3_bn = nn.BatchNorm2d(c3)
        self.C5 = nn.Conv2d(c3, 120, 4, bias=False)
        self.C5_bn = nn.BatchNorm2d(120)
        self.F6 = nn.Linear(120, 84, bias=False)
        self.F6_bn = nn.BatchNorm1d(84)
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, 28, 28]``."""
        x = F.relu(self.C1_bn(self.S2(self.C1(x))))  # [N, c1, 24, 24] -> [N, c1, 12, 12]
        x = F.relu(self.C3_bn(self.S4(self.C3(x))))  # [N, c3, 8, 8] -> [N, c3, 4, 4]
        x = F.relu(self.C5_bn(self.C5(x)))  # [N, 120, 1, 1]
        x = F.relu(self.F6_bn(self.F6(torch.flatten(x, 1))))  # [N, 84]
        return self.output(x)  # [N, num_classes]


@register_model(
    "lenet-d2l", input_size=(1, 28, 28), description="d2l LeNet: sigmoid, C1 padding 2, average pooling, Xavier init"
)
def lenet_d2l(num_classes: int = 10, in_channels: int = 1, activation: str = "sigmoid", pool: str = "avg") -> nn.Module:
    """Build d2l's LeNet (input ``[N, in_channels, 28, 28]``), Xavier-initialised like d2l; ``activation``
    sigmoid|relu, ``pool`` avg|max."""
    return init_weights(LeNetD2L(num_classes, in_channels, activation=activation, pool=pool))


@register_model(
    "lenet5-mini",
    input_size=(1, 28, 28),
    description="a typical tutorial's 28x28 LeNet-5: ReLU, max pooling, 16x4x4 -> 120 -> 84",
)
def lenet5_mini(num_classes: int = 10, in_channels: int = 1, activation: str = "relu") -> nn.Module:
    """Build a typical tutorial's 28×28 LeNet-5 (input ``[N, in_channels, 28, 28]``); ``activation`` relu|none."""
    return LeNetMini(num_classes, in_channels, activation=activation)


@register_model(
    "lenet5-bn", input_size=(1, 28, 28), description="d2l batch-norm LeNet: conv/linear -> BN -> sigmoid, max pooling"
)
def lenet5_bn(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """Build d2l's batch-norm LeNet (input ``[N, in_channels, 28, 28]``), Xavier-initialised."""
    return init_weights(LeNetBN(num_classes, in_channels))


@register_model(
    "lenet5-modern",
    input_size=(1, 32, 32),
    description="LeNet-5 geometry, 32/64-map C1/C3, BN, ReLU, max pool, dropout (~256K params)",
)
def lenet5_modern(num_classes: int = 10, in_channels: int = 1, width: int = 32, dropout: float = 0.3) -> nn.Module:
    """Build the modernised LeNet-5 (input ``[N, in_channels, 32, 32]``); ``width`` = C1 maps."""
    return LeNetModern(num_classes, in_channels, width=width, dropout=dropout)


@register_model(
    "lenet5-fast",
    input_size=(1, 28, 28),
    description="LeNet-5 on unpadded 28x28 digits, pooling before BN/ReLU: fastest to 99% on a CPU",
)
def lenet5_fast(num_classes: int = 10, in_channels: int = 1, c1: int = 16, c3: int = 32) -> nn.Module:
    """Build :class:`LeNetFast` (input ``[N, in_channels, 28, 28]``); ``c1``/``c3`` the C1/C3 map counts."""
    return LeNetFast(num_classes, in_channels, c1=c1, c3=c3)
