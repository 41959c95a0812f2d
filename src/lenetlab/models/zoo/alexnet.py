"""AlexNet as in d2l §8.1: ``alexnet`` (224×224) and ``alexnet-small`` (28×28)."""

from __future__ import annotations

import torch
import torch.nn as nn

from lenetlab.models.registry import register_model


class AlexNet(nn.Module):
    """``features`` (``[N, C, H, W] -> [N, flat]`` once flattened), then three fully connected layers
    with ReLU and dropout (``classifier``) giving scores ``[N, num_classes]``. VGG has the same shape."""

    def __init__(self, features: nn.Sequential, flat: int, hidden: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(
            nn.Linear(flat, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, H, W]``."""
        return self.classifier(torch.flatten(self.features(x), 1))


@register_model(
    "alexnet",
    input_size=(1, 224, 224),
    description="d2l AlexNet: 96-256-384-384-256 convs, 4096-4096 FC, dropout (224x224)",
)
def alexnet(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """d2l's AlexNet for ``[N, in_channels, 224, 224]`` inputs."""
    features = nn.Sequential(
        nn.Conv2d(in_channels, 96, 11, stride=4, padding=1),
        nn.ReLU(),  # [N, 96, 54, 54]
        nn.MaxPool2d(3, stride=2),  # [N, 96, 26, 26]
        nn.Conv2d(96, 256, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2),  # [N, 256, 12, 12]
        nn.Conv2d(256, 384, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2),  # [N, 256, 5, 5]
    )
    return AlexNet(features, 256 * 5 * 5, 4096, num_classes)


@register_model(
    "alexnet-small",
    input_size=(1, 28, 28),
    description="AlexNet layout for 28x28: 3x3 convs 32-64-96-96-64, 256-256 FC, dropout",
)
def alexnet_small(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """AlexNet's layout for ``[N, in_channels, 28, 28]``: the 11×11 stride-4 stem would leave nothing of
    a 28-pixel digit, so every convolution is 3×3 stride 1, and the widths are divided by 3-4."""
    features = nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # [N, 32, 14, 14]
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # [N, 64, 7, 7]
        nn.Conv2d(64, 96, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(96, 96, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(96, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2),  # [N, 64, 3, 3]
    )
    return AlexNet(features, 64 * 3 * 3, 256, num_classes)
