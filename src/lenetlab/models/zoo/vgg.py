"""VGG-11 as in d2l §8.2: ``vgg11`` (224×224) and ``vgg11-small`` (32×32, d2l's widths / 4)."""

from __future__ import annotations

from functools import partial

import torch.nn as nn

from lenetlab.models.registry import register_model
from lenetlab.models.zoo.alexnet import AlexNet

VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))  # (convolutions, channels) per block


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """``num_convs`` 3×3 same-padding conv+ReLU layers then a 2×2 max pool (halves H and W)."""
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
        in_channels = out_channels
    return nn.Sequential(*layers, nn.MaxPool2d(2))


@register_model(
    "vgg11", input_size=(1, 224, 224), description="d2l VGG-11: 8 convs 64-128-256-256-512x4, 4096-4096 FC (224x224)"
)
class VGG(AlexNet):
    """VGG: blocks of 3×3 convs (``features``), then AlexNet's classifier.

    ``[N, C, H, W]`` with H = W = ``spatial``·2^5 → scores ``[N, num_classes]``; ``width`` divides the
    channels of ``arch``.
    """

    def __init__(self, num_classes=10, in_channels=1, arch=VGG11_ARCH, width=1, spatial=7, hidden=4096) -> None:
        blocks = []
        for num_convs, out_channels in arch:
            blocks.append(vgg_block(num_convs, in_channels, out_channels // width))
            in_channels = out_channels // width
        super().__init__(nn.Sequential(*blocks), in_channels * spatial * spatial, hidden, num_classes)


register_model(
    "vgg11-small",
    input_size=(1, 32, 32),
    description="VGG-11 layout with d2l's 1/4 widths (16..128) and 512-unit FC, 32x32",
)(partial(VGG, width=4, spatial=1, hidden=512))
