"""ResNet-18 as in d2l §8.6: ``resnet18`` (224×224) and ``resnet18-small`` (28×28)."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.models.registry import register_model


class Residual(nn.Module):
    """Two 3×3 conv-BN layers plus a shortcut (a 1×1 conv when the shape changes).

    ``[N, in, H, W] -> [N, out, H/stride, W/stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, use_1x1conv: bool = False, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1, stride=stride) if use_1x1conv else None
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return F.relu(y + x)


def resnet_block(in_channels: int, out_channels: int, num_residuals: int, first_block: bool = False) -> nn.Sequential:
    """A stage of residual blocks; all but the first stage halve H and W in their first block."""
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blocks.append(Residual(in_channels, out_channels, use_1x1conv=True, stride=2))
        else:
            blocks.append(Residual(out_channels, out_channels))
    return nn.Sequential(*blocks)


@register_model(
    "resnet18",
    input_size=(1, 224, 224),
    description="d2l ResNet-18: 7x7 stem, stages 64-128-256-512, global average pool (224x224)",
)
class ResNet18(nn.Module):
    """d2l's ResNet-18: stem b1, four stages of two residual blocks, global average pool, linear.

    ``widths`` are the four stages' channels. ``small`` uses a 3×3 stride-1 stem without max pool.
    d2l trains the full form at 96×96; 224×224 works too.
    """

    def __init__(self, num_classes=10, in_channels=1, widths=(64, 128, 256, 512), small: bool = False) -> None:
        super().__init__()
        w = widths
        if small:
            self.b1 = nn.Sequential(nn.Conv2d(in_channels, w[0], 3, padding=1), nn.BatchNorm2d(w[0]), nn.ReLU())
        else:
            self.b1 = nn.Sequential(
                nn.Conv2d(in_channels, w[0], 7, stride=2, padding=3),
                nn.BatchNorm2d(w[0]),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        self.b2 = resnet_block(w[0], w[0], 2, first_block=True)
        self.b3 = resnet_block(w[0], w[1], 2)
        self.b4 = resnet_block(w[1], w[2], 2)
        self.b5 = resnet_block(w[2], w[3], 2)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w[3], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, H, W]``."""
        return self.head(self.b5(self.b4(self.b3(self.b2(self.b1(x))))))


register_model(
    "resnet18-small",
    input_size=(1, 28, 28),
    description="ResNet-18 with 1/4 widths (16-32-64-128) and a 3x3 stride-1 stem for 28x28",
)(partial(ResNet18, widths=(16, 32, 64, 128), small=True))  # 28 -> 28 -> 14 -> 7 -> 4
