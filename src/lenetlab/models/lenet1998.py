"""LeNet-5 as published: LeCun, Bottou, Bengio & Haffner, Proc. IEEE 86(11), 1998 (``lenet5-1998``), with
every feature of the paper that changes the model's function (``docs/models.md``): scaled tanh, trainable
subsampling, the C3 connection table, C5 as a convolution, Euclidean RBF outputs with fixed digit-bitmap
centres (``forward`` returns the *negative* squared distances), the MAP criterion (:meth:`LeNet1998.loss`)
and the ±2.4/F_i initialisation. The MAP loss sums 84 squared errors, so plain SGD needs lr ≲ 1e-3."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.models.lenet import LeNet
from lenetlab.models.registry import register_model

# Table I of LeCun et al. 1998: row = S2 map, column = C3 map, 1 = connected.
C3_TABLE = (
    (1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1),
    (1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1),
    (1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1),
    (0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1),
    (0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1),
    (0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1),
)

# The 7×12 RBF centre bitmaps of the digits 0-9 side by side ('#' = +1, '.' = -1), as a typical
# tutorial reproducing the paper draws them.
DIGIT_BITMAPS = """
.#####. ...##.. .#####. ####### .#####. .#####. ..####. ####### .#####. .#####.
....... ..###.. ....... .....## ....... ....... .##.... .....## ##...## ##..###
..###.. .####.. .#####. ....##. ....... ####### ##..... .....## ##...## ##...##
.##.##. ...##.. ##...## ...##.. .##..## ##..... ##..... ....##. ##...## ##...##
##...## ...##.. #....## ..####. .##..## ##..... ######. ...##.. .#####. ##..###
##...## ...##.. ....##. .....## ###..## .####.. ###..## ...##.. ##...## .######
##...## ...##.. ..###.. .....## ##...## ..####. ##...## ..##... ##...## .....##
##...## ...##.. .##.... .....## ##...## .....## ##...## ..##... ##...## .....##
.##.##. ...##.. ##..... ##...## ##..### ##...## ###..## ..##... ##...## ....##.
..###.. .###### ####### .#####. .###### .#####. .#####. ..##... .#####. .####..
....... ....... ....... ....... .....## ....... ....... ....... ....... .......
....... ....... ....... ....... .....## ....... ....... ....... ....... .......
"""


def digit_centres() -> torch.Tensor:
    """The RBF centres ``[10, 84]``: row *d* is digit *d*'s 7×12 bitmap flattened, ±1."""
    rows = [line.split() for line in DIGIT_BITMAPS.strip().splitlines()]  # 12 rows of 10 digits
    return torch.tensor([[1.0 if ch == "#" else -1.0 for row in rows for ch in row[d]] for d in range(10)])


class ScaledTanh(nn.Module):
    """The paper's squashing function ``1.7159·tanh(2a/3)`` (any shape in, same shape out)."""

    A, S = 1.7159, 2.0 / 3.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise ``A·tanh(S·x)``."""
        return self.A * torch.tanh(self.S * x)


class Subsampling(nn.Module):
    """Trainable 2×2 subsampling, window sum × per-map coefficient + per-map bias: ``[N, C, H/2, W/2]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sum each 2×2 window, then scale and shift each map."""
        # window sum = 4 x mean; avg_pool2d's divisor_override=1 would say it directly but is
        # silently dropped by the ONNX exporter
        s = F.avg_pool2d(x, 2) * 4
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class PartialConv2d(nn.Module):
    """A convolution where output map *o* only sees the input maps with ``table[i][o] == 1``: ``weight``
    ``[connections, k, k]`` scattered into one dense kernel, zero elsewhere (on a CPU ~7× faster than grouped
    convolutions). ``[N, C_in, H, W] -> [N, C_out, H-k+1, W-k+1]``."""

    def __init__(self, table, kernel_size: int = 5) -> None:
        super().__init__()
        self.in_channels, self.out_channels = len(table), len(table[0])
        self.kernel_size = kernel_size
        # flat positions (o * C_in + i) of the real connections in the dense kernel, output-major
        pos = [
            o * self.in_channels + i for o in range(self.out_channels) for i in range(self.in_channels) if table[i][o]
        ]
        self.register_buffer("positions", torch.tensor(pos), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(pos), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        self.fan_in = [
            sum(table[i][o] for i in range(self.in_channels)) * kernel_size**2 for o in range(self.out_channels)
        ]

    def dense_weight(self) -> torch.Tensor:
        """The dense kernel ``[C_out, C_in, k, k]`` with zeros where the table has no connection."""
        k = self.kernel_size
        flat = self.weight.new_zeros(self.out_channels * self.in_channels, k, k)
        return flat.index_copy(0, self.positions, self.weight).view(self.out_channels, self.in_channels, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve each output map over its connected input maps only."""
        return F.conv2d(x, self.dense_weight(), self.bias)


class EuclideanRBF(nn.Module):
    """RBF output units with fixed centres ``w`` ``[classes, features]``: ``-||x − w_i||²`` ``[N, classes]``."""

    def __init__(self, centres: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(centres.clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``-Σ_j (x_j − w_ij)²`` for ``x`` ``[N, features]`` → ``[N, classes]``."""
        # the direct difference, not |x|² − 2x·w + |w|²: that expansion loses ~1e-4 relative
        # precision to cancellation in float32 (distances are in the hundreds)
        return -(x.unsqueeze(1) - self.weight).pow(2).sum(-1)


@register_model(
    "lenet5-1998",
    input_size=(1, 32, 32),
    description="LeNet-5 as in LeCun 1998: scaled tanh, trainable subsampling, C3 table, "
    "fixed RBF digit bitmaps, MAP loss; 60,000 trainable",
)
class LeNet1998(LeNet):
    """LeNet-5 exactly as in LeCun et al. 1998: ``[N, in_channels, 32, 32]`` -> negative squared RBF
    distances ``[N, num_classes]``; train it with :meth:`loss` (the MAP criterion with constant ``j``)."""

    # `lenet profile` shows the paper's "connections" per layer (multiply-adds, a bias counting as
    # one): C1 122,304, S2 5,880, C3 151,600, S4 2,000, C5 48,120, F6 10,164, RBF 840 = 340,908.
    formula_name = "LeCun 1998 connections"

    @staticmethod
    def layer_formula(module: nn.Module, out_shape) -> int | None:
        """The paper's connection count of one layer with output ``out_shape`` ``[1, ...]``."""
        out = math.prod(out_shape[1:])
        if isinstance(module, nn.Conv2d):
            return out * (module.weight[0].numel() + 1)
        if isinstance(module, PartialConv2d):
            per_map = out // module.out_channels
            return per_map * sum(f + 1 for f in module.fan_in)
        if isinstance(module, Subsampling):
            return out * 5  # four inputs and the bias
        if isinstance(module, nn.Linear):
            return out * (module.in_features + 1)
        if isinstance(module, EuclideanRBF):
            return out * module.weight.shape[1]
        return 0

    profile_notes = (
        "the formula column is the paper's count of connections (340,908 at 1x32x32: every "
        "multiply-add of the real C3 connections, subsampling's 4 inputs, each bias, the RBF).",
        "trainable 60,000 = C1 156 + S2 12 + C3 1,516 + S4 32 + C5 48,120 + F6 10,164: the paper's "
        "'about 60,000'; non-trainable 840 = the fixed RBF centres (10 digit bitmaps x 84).",
        "a typical tutorial reproducing the paper reports torchsummary's 60,818 total / 59,956 trainable / 862 "
        "non-trainable; torchsummary only reads attributes named weight/bias: it misses the 22 S2/S4 "
        "coefficients (named 'weights' there), "
        "lists the 22 S2/S4 biases as non-trainable (layer without .weight) and counts the 840 RBF "
        "centres: 60,000 - 44 = 59,956; 840 + 22 = 862; 59,956 + 862 = 60,818.",
        "C3 runs as one dense 6->16 convolution with its 36 missing kernels held at zero, so its "
        "240,000 MACs include 90,000 multiplications by zero (150,000 real connections x positions).",
        "compute not counted by the flop counter (elementwise): the S2/S4 window sums and scaling, "
        "the tanh, and the RBF's 840 subtract-square-adds.",
    )

    def __init__(self, num_classes: int = 10, in_channels: int = 1, j: float = 0.1) -> None:
        super().__init__(ScaledTanh(), activated=("C1", "S2", "C3", "S4", "C5", "F6"), flatten_at="F6")
        self.j = float(j)
        self.C1 = nn.Conv2d(in_channels, 6, 5)  # [N, 6, 28, 28]
        self.S2 = Subsampling(6)  # [N, 6, 14, 14]
        self.C3 = PartialConv2d(C3_TABLE, 5)  # [N, 16, 10, 10]
        self.S4 = Subsampling(16)  # [N, 16, 5, 5]
        self.C5 = nn.Conv2d(16, 120, 5)  # [N, 120, 1, 1]
        self.F6 = nn.Linear(120, 84)  # [N, 120] -> [N, 84]
        if num_classes == 10:
            centres = digit_centres()
        else:  # no bitmaps beyond the ten digits: fixed random ±1 codes, reproducible
            g = torch.Generator().manual_seed(1998)
            centres = torch.randint(0, 2, (num_classes, 84), generator=g).float() * 2 - 1
        self.output = EuclideanRBF(centres)  # [N, num_classes] = -||x - w_i||²
        self._init_paper()

    def _init_paper(self) -> None:
        # Section II-B: weights uniform in ±2.4/F_i, F_i = number of inputs of the unit.
        fan = {
            self.C1: self.C1.weight[0].numel(),
            self.S2: 4,
            self.S4: 4,
            self.C5: self.C5.weight[0].numel(),
            self.F6: self.F6.in_features,
        }
        with torch.no_grad():
            for m, fi in fan.items():
                for p in (m.weight, m.bias):
                    p.uniform_(-2.4 / fi, 2.4 / fi)
            c3 = self.C3  # fan-in differs per C3 map (75, 100 or 150)
            fi = torch.tensor(c3.fan_in, dtype=torch.float32)
            c3.bias.copy_((torch.rand_like(c3.bias) * 2 - 1) * 2.4 / fi)
            per_conn = fi[c3.positions // c3.in_channels].view(-1, 1, 1)
            c3.weight.copy_((torch.rand_like(c3.weight) * 2 - 1) * 2.4 / per_conn)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The paper's MAP criterion (eq. 9) ``mean(y_target + log(e^{-j} + Σ_i e^{-y_i}))`` for ``outputs``
        ``-y`` ``[N, classes]`` and class indices ``targets`` ``[N]`` (``e^{-j}`` stops classes already far
        away from being pushed further)."""
        y_target = -outputs.gather(1, targets.view(-1, 1)).squeeze(1)
        j = outputs.new_full((outputs.shape[0], 1), -self.j)
        return (y_target + torch.logsumexp(torch.cat([j, outputs], 1), dim=1)).mean()
