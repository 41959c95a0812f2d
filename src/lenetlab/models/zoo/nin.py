"""Network in Network as in d2l §8.3: ``nin`` (224×224) and ``nin-small`` (28×28)."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from lenetlab.models.registry import register_model


def nin_block(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> nn.Sequential:
    """One conv then two 1×1 convs (a per-pixel MLP), each followed by ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 1),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 1),
        nn.ReLU(),
    )


@register_model(
    "nin",
    input_size=(1, 224, 224),
    description="d2l NiN: NiN blocks 96-256-384-classes, global average pooling (224x224)",
)
class NiN(nn.Module):
    """NiN: four NiN blocks, the last with one map per class, then global average pooling.

    ``widths`` are the first three blocks' channels; ``stem`` = (kernel, stride, padding) of block 1.
    """

    def __init__(
        self, num_classes=10, in_channels=1, widths=(96, 256, 384), stem=(11, 4, 0), dropout: float = 0.5
    ) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.net = nn.Sequential(
            nin_block(in_channels, w1, *stem),
            nn.MaxPool2d(3, stride=2),
            nin_block(w1, w2, 5, 1, 2),
            nn.MaxPool2d(3, stride=2),
            nin_block(w2, w3, 3, 1, 1),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout(dropout),
            nin_block(w3, num_classes, 3, 1, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, H, W]``."""
        return self.net(x)


register_model(
    "nin-small",
    input_size=(1, 28, 28),
    description="NiN for 28x28: 5x5 stride-1 stem, blocks 32-64-96-classes, global avg pool",
)(partial(NiN, widths=(32, 64, 96), stem=(5, 1, 2)))  # 28 -> 13 -> 6 -> 2
