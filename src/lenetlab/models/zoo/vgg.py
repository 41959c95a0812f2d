"""VGG-11 as in d2l §8.2: ``vgg11`` (224×224) and ``vgg11-small`` (32×32)."""

from __future__ import annotations

import torch
import torch.nn as nn

from lenetlab.models.registry import register_model

VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """``num_convs`` 3×3 same-padding conv+ReLU layers then a 2×2 max pool (halves H and W)."""
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG: blocks of 3×3 convs, then three fully connected layers with dropout.

    ``[N, C, H, W]`` with H = W = ``spatial``·2^5 → scores ``[N, num_classes]``.
    """

    def __init__(
        self, arch, in_channels: int, num_classes: int, spatial: int, hidden: int, dropout: float = 0.5
    ) -> None:
        super().__init__()
        blocks = []
        for num_convs, out_channels in arch:
            blocks.append(vgg_block(num_convs, in_channels, out_channels))
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Linear(in_channels * spatial * spatial, hidden),
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
    "vgg11", input_size=(1, 224, 224), description="d2l VGG-11: 8 convs 64-128-256-256-512x4, 4096-4096 FC (224x224)"
)
def vgg11(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """Build d2l's VGG-11 for ``[N, in_channels, 224, 224]`` inputs (7×7 after five pools)."""
    return VGG(VGG11_ARCH, in_channels, num_classes, spatial=7, hidden=4096)


@register_model(
    "vgg11-small",
    input_size=(1, 32, 32),
    description="VGG-11 layout with d2l's 1/4 widths (16..128) and 512-unit FC, 32x32",
)
def vgg11_small(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """VGG-11's eight convs with d2l's ``small_conv_arch`` (widths / 4) for ``[N, C, 32, 32]``."""
    arch = tuple((n, c // 4) for n, c in VGG11_ARCH)
    return VGG(arch, in_channels, num_classes, spatial=1, hidden=512)
