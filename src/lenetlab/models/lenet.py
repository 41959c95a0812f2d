"""LeNet-5 as in NNDL's LeNet-5 chapter (``lenet5``: ReLU, max pooling in S2 and average pooling in S4, a full
C3, a linear output; 61,706 parameters), and the forward pass of the whole LeNet family (:class:`LeNet`)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.models.registry import register_model


class LeNet(nn.Module):
    """The LeNet family's forward pass: the layers run in the order the model adds them (``act``, a
    function or a module, is not one of them), the input of ``flatten_at`` flattened to ``[N, features]``,
    and ``act`` applied to the output of each layer in ``activated``."""

    def __init__(self, act, activated: tuple[str, ...], flatten_at: str) -> None:
        super().__init__()
        self.act, self.activated, self.flatten_at = act, activated, flatten_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from images ``x`` ``[N, in_channels, H, W]``."""
        for name, layer in self.named_children():
            if layer is not self.act:
                x = layer(torch.flatten(x, 1) if name == self.flatten_at else x)
                x = self.act(x) if name in self.activated else x
        return x


@register_model(
    "lenet5", input_size=(1, 32, 32), description="LeNet-5 as in NNDL: ReLU, max-pool S2, avg-pool S4, 61,706 params"
)
class LeNet5(LeNet):
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
        super().__init__(F.relu, activated=("C1", "C3", "C5", "F6"), flatten_at="F6")
        self.C1 = self.ops.Conv2d(in_channels, 6, 5)  # [N, 6, 28, 28], then ReLU
        self.S2 = self.ops.MaxPool2d(2)  # [N, 6, 14, 14]
        self.C3 = self.ops.Conv2d(6, 16, 5)  # [N, 16, 10, 10], then ReLU
        self.S4 = self.ops.AvgPool2d(2)  # [N, 16, 5, 5]
        self.C5 = self.ops.Conv2d(16, 120, 5)  # [N, 120, 1, 1], then ReLU
        self.F6 = nn.Linear(120, 84)  # [N, 120] -> [N, 84], then ReLU
        self.output = nn.Linear(84, num_classes)  # [N, num_classes]
