"""GoogLeNet as in d2l §8.4: ``googlenet`` (224×224) and ``googlenet-small`` (28×28)."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.models.registry import register_model

# (c1, (c2a, c2b), (c3a, c3b), c4) of the nine Inception blocks in d2l, by stage
INCEPTIONS = (
    ((64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)),
    (
        (192, (96, 208), (16, 48), 64),
        (160, (112, 224), (24, 64), 64),
        (128, (128, 256), (24, 64), 64),
        (112, (144, 288), (32, 64), 64),
        (256, (160, 320), (32, 128), 128),
    ),
    ((256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)),
)


class Inception(nn.Module):
    """Four parallel paths (1×1; 1×1→3×3; 1×1→5×5; 3×3 max pool→1×1) concatenated on channels.

    ``[N, in, H, W] -> [N, c1 + c2[1] + c3[1] + c4, H, W]``.
    """

    def __init__(self, in_channels: int, c1: int, c2, c3, c4: int) -> None:
        super().__init__()
        self.p1_1 = nn.Conv2d(in_channels, c1, 1)
        self.p2_1 = nn.Conv2d(in_channels, c2[0], 1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], 3, padding=1)
        self.p3_1 = nn.Conv2d(in_channels, c3[0], 1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], 5, padding=2)
        self.p4_1 = nn.MaxPool2d(3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the four paths' outputs along channels."""
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        return torch.cat((p1, p2, p3, p4), dim=1)


def _stage(in_channels: int, specs, d: int, pool: bool):
    """Inception blocks of ``specs`` at 1/``d`` width (then a stride-2 max pool): ``(stage, out channels)``."""
    layers: list[nn.Module] = []
    for c1, (c2a, c2b), (c3a, c3b), c4 in specs:
        c1, c2, c3, c4 = c1 // d, (c2a // d, c2b // d), (c3a // d, c3b // d), c4 // d
        layers.append(Inception(in_channels, c1, c2, c3, c4))
        in_channels = c1 + c2[1] + c3[1] + c4
    if pool:
        layers.append(nn.MaxPool2d(3, stride=2, padding=1))
    return nn.Sequential(*layers), in_channels


@register_model(
    "googlenet",
    input_size=(1, 224, 224),
    description="d2l GoogLeNet: 9 Inception blocks, global average pool, 1024 -> classes (224x224)",
)
class GoogLeNet(nn.Module):
    """d2l's GoogLeNet: stem (b1, b2), Inception stages b3-b5, global average pool, linear head.

    ``divisor`` divides every width (1 = the book). ``small`` swaps the 7×7/2 stem and its two
    stride-2 pools for 3×3 stride-1 convs and one pool, for 28×28 inputs (28→14→7→4). d2l trains the
    full form at 96×96; 224×224 works too.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, divisor: int = 1, small: bool = False) -> None:
        super().__init__()
        d = divisor
        if small:
            self.b1 = nn.Sequential(nn.Conv2d(in_channels, 64 // d, 3, padding=1), nn.ReLU())
            self.b2 = nn.Sequential(
                nn.Conv2d(64 // d, 192 // d, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)
            )
        else:
            self.b1 = nn.Sequential(
                nn.Conv2d(in_channels, 64, 7, stride=2, padding=3), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)
            )
            self.b2 = nn.Sequential(
                nn.Conv2d(64, 64, 1),
                nn.ReLU(),
                nn.Conv2d(64, 192, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        self.b3, c = _stage(192 // d, INCEPTIONS[0], d, pool=True)
        self.b4, c = _stage(c, INCEPTIONS[1], d, pool=True)
        b5, c = _stage(c, INCEPTIONS[2], d, pool=False)
        self.b5 = nn.Sequential(*b5, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, H, W]``."""
        return self.fc(self.b5(self.b4(self.b3(self.b2(self.b1(x))))))


register_model(
    "googlenet-small",
    input_size=(1, 28, 28),
    description="GoogLeNet with 1/4 widths and a 3x3 stride-1 stem for 28x28 digits",
)(partial(GoogLeNet, divisor=4, small=True))
