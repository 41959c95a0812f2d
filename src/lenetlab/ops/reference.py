"""Teaching references: convolution and pooling written with explicit loops (NNDL's LeNet-5 chapter), to be
read and checked against PyTorch, not to be fast. Unlike NNDL's code, outputs keep the input's dtype and
device, the max pool is per sample and channel, and non-square inputs work; ``LoopConv2d``'s bias is
NNDL's ``[out_channels, 1]``."""

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["LoopConv2d", "LoopLeNet", "LoopPool2d", "corr2d"]


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _slide(x: torch.Tensor, kh: int, kw: int, stride, reduce) -> torch.Tensor:
    """``reduce`` of every ``[..., kh, kw]`` window of ``x`` ``[..., H, W]``, one at a time: ``[..., Ho, Wo]``."""
    (sh, sw), (h, w) = stride, x.shape[-2:]
    rows = []
    for i in range(0, h - kh + 1, sh):
        row = [reduce(x[..., i : i + kh, j : j + kw]) for j in range(0, w - kw + 1, sw)]
        rows.append(torch.stack(row, dim=-1))  # [..., Wo]
    return torch.stack(rows, dim=-2)


def corr2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """2-D cross-correlation of one image ``X`` ``[H, W]`` with one kernel ``K`` ``[kh, kw]``:
    ``Y[i, j] = sum(X[i:i+kh, j:j+kw] * K)``, ``[H - kh + 1, W - kw + 1]``."""
    if X.dim() != 2 or K.dim() != 2:
        raise ValueError(f"corr2d: X and K must be 2-D, got {tuple(X.shape)} and {tuple(K.shape)}")
    kh, kw = K.shape
    if X.shape[0] < kh or X.shape[1] < kw:
        raise ValueError(f"corr2d: kernel {tuple(K.shape)} is larger than the input {tuple(X.shape)}")
    return _slide(X, kh, kw, (1, 1), lambda window: (window * K).sum())


class LoopConv2d(nn.Module):
    """Loop convolution layer ``[N, in_channels, H, W] -> [N, out_channels, Ho, Wo]``: ``weight``
    ``[out_channels, in_channels, kh, kw]``, ``bias`` ``[out_channels, 1]`` (NNDL's shape), initialised
    like NNDL's (weights 1, bias 0) or, with ``init="torch"``, like ``nn.Conv2d``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, init: str = "seed"):
        super().__init__()
        kh, kw = _pair(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.padding = _pair(stride), _pair(padding)
        if min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"LoopConv2d: stride must be positive and padding non-negative, got {stride}, {padding}")
        self.weight = nn.Parameter(torch.ones(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels, 1))
        if init == "torch":
            ref = nn.Conv2d(in_channels, out_channels, (kh, kw))
            with torch.no_grad():
                self.weight.copy_(ref.weight)
                self.bias.copy_(ref.bias.view(-1, 1))

    def single_forward(self, X: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """One input channel ``X`` ``[N, H, W]`` correlated with one kernel ``[kh, kw]``: ``[N, Ho, Wo]``."""
        ph, pw = self.padding
        new_X = torch.zeros(X.shape[0], X.shape[1] + 2 * ph, X.shape[2] + 2 * pw, dtype=X.dtype, device=X.device)
        new_X[:, ph : ph + X.shape[1], pw : pw + X.shape[2]] = X  # zero padding
        u, v = weight.shape
        if new_X.shape[1] < u or new_X.shape[2] < v:
            raise ValueError(f"LoopConv2d: kernel {(u, v)} is larger than the padded input {tuple(new_X.shape[1:])}")
        return _slide(new_X, u, v, self.stride, lambda window: torch.sum(window * weight, dim=[1, 2]))  # [N, Ho, Wo]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[N, in_channels, H, W] -> [N, out_channels, Ho, Wo]``: one feature map per (kernel, bias) pair."""
        if inputs.dim() != 4 or inputs.shape[1] != self.in_channels:
            raise ValueError(f"LoopConv2d: expected [N, {self.in_channels}, H, W], got {tuple(inputs.shape)}")
        feature_maps = []
        for w, b in zip(self.weight, self.bias):  # each output channel p: kernels w [C, kh, kw], bias b [1]
            multi_outs = [self.single_forward(inputs[:, i], w[i]) for i in range(self.in_channels)]
            feature_maps.append(torch.stack(multi_outs).sum(dim=0) + b)  # sum over input channels
        return torch.stack(feature_maps, dim=1)


class LoopPool2d(nn.Module):
    """Loop pooling layer (``mode="max"`` or ``"avg"``) over ``size`` windows: ``[N, C, H, W] -> [N, C, Ho, Wo]``."""

    def __init__(self, size=(2, 2), mode: str = "max", stride=1):
        super().__init__()
        if mode not in ("max", "avg"):
            raise ValueError(f"LoopPool2d: mode must be 'max' or 'avg', got {mode!r}")
        self.mode = mode
        self.h, self.w = _pair(size)
        self.stride = _pair(stride)
        if min(self.stride) < 1:
            raise ValueError(f"LoopPool2d: stride must be positive, got {stride}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool each window of each sample and channel; ``Ho = (H - h) // stride + 1``."""
        if x.shape[2] < self.h or x.shape[3] < self.w:
            raise ValueError(f"LoopPool2d: window {(self.h, self.w)} is larger than the input {tuple(x.shape[2:])}")
        reduce = torch.amax if self.mode == "max" else torch.mean
        return _slide(x, self.h, self.w, self.stride, lambda window: reduce(window, dim=[2, 3]))  # [N, C, Ho, Wo]


class LoopLeNet(nn.Module):
    """NNDL's ``Model_LeNet`` from the loop layers (``conv1, pool2, ..., linear7``; slow, for comparisons):
    ``[N, in_channels, 32, 32] -> [N, num_classes]``."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.conv1 = LoopConv2d(in_channels, 6, 5, init="torch")
        self.pool2 = LoopPool2d((2, 2), mode="max", stride=2)
        self.conv3 = LoopConv2d(6, 16, 5, init="torch")
        self.pool4 = LoopPool2d((2, 2), mode="avg", stride=2)
        self.conv5 = LoopConv2d(16, 120, 5, init="torch")
        self.linear6 = nn.Linear(120, 84)
        self.linear7 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` for images ``[N, in_channels, 32, 32]``."""
        x = self.pool2(F.relu(self.conv1(x)))
        x = self.pool4(F.relu(self.conv3(x)))
        x = F.relu(self.conv5(x)).flatten(1)
        return self.linear7(F.relu(self.linear6(x)))
