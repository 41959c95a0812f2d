"""LeNet-5 as in NNDL's LeNet-5 chapter (Qiu Xipeng, *Neural Networks and Deep Learning*): ``lenet5``.

Differences from LeCun et al. 1998 (see :mod:`lenetlab.models.lenet1998` for the faithful one):
ReLU instead of the scaled tanh, max pooling in S2 and average pooling in S4 instead of trainable
subsampling, a full C3 (every C3 map sees all 6 S2 maps), and a plain linear output layer instead
of RBF units. Parameters: C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850 = 61,706.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.models.registry import register_model


@register_model(
    "lenet5", input_size=(1, 32, 32), description="LeNet-5 as in NNDL: ReLU, max-pool S2, avg-pool S4, 61,706 params"
)
class LeNet5(nn.Module):
    """NNDL's LeNet-5 for ``in_channels`` x 32 x 32 inputs, layers named as in the paper."""

    ops = nn  # where Conv2d, MaxPool2d and AvgPool2d come from (lenet5-scratch: lenetlab.ops)

    # `lenet profile` shows NNDL's hand count (423,344 at 32x32) beside the measured MACs.
    formula_name = "NNDL hand count"
    profile_notes = (
        "MACs = multiply-accumulates of the conv and linear layers only: C1 117,600 + C3 240,000 "
        "+ C5 48,000 + F6 10,080 + output 840 = 416,520 at 1x32x32.",
        "NNDL's formula (423,344 at 1x32x32) adds one bias addition per conv output (4,704 + 1,600 + 120) "
        "and one op per S4 average-pool output (400) = +6,824; it leaves out the F6/output bias "
        "additions (94), the S2 max-pool comparisons and the ReLUs. Per conv layer it is what "
        "LeCun 1998 calls connections (C1: 122,304).",
    )

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.C1 = self.ops.Conv2d(in_channels, 6, 5)
        self.S2 = self.ops.MaxPool2d(2)
        self.C3 = self.ops.Conv2d(6, 16, 5)
        self.S4 = self.ops.AvgPool2d(2)
        self.C5 = self.ops.Conv2d(16, 120, 5)
        self.F6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from images ``x`` ``[N, in_channels, 32, 32]``."""
        x = F.relu(self.C1(x))  # [N, 6, 28, 28]
        x = self.S2(x)  # [N, 6, 14, 14]
        x = F.relu(self.C3(x))  # [N, 16, 10, 10]
        x = self.S4(x)  # [N, 16, 5, 5]
        x = F.relu(self.C5(x))  # [N, 120, 1, 1]
        x = torch.flatten(x, 1)  # [N, 120]
        x = F.relu(self.F6(x))  # [N, 84]
        return self.output(x)  # [N, num_classes]
