"""``nn.Module`` layers on the from-scratch operators: each subclasses its ``torch.nn`` twin (arguments,
parameters, initialisation and state dicts are torch's own) and replaces only ``forward``."""

import torch
import torch.nn as nn

from lenetlab.ops import functional as OF

__all__ = ["AvgPool2d", "BatchNorm2d", "Conv2d", "MaxPool2d"]


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` computed by :func:`conv2d` (im2col): ``[N, in_channels, H, W] -> [N, out_channels, Ho, Wo]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in_channels, H, W] -> [N, out_channels, Ho, Wo]`` (zero padding only)."""
        if self.padding_mode != "zeros":
            raise ValueError(f"Conv2d: only zero padding is written from scratch, not {self.padding_mode!r}")
        return OF.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` computed by :func:`max_pool2d`."""

    def forward(self, x: torch.Tensor):
        """``[N, C, H, W] -> [N, C, Ho, Wo]`` (and the indices if ``return_indices``)."""
        return OF.max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
        )


class AvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` computed by :func:`avg_pool2d`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, C, Ho, Wo]``."""
        args = (self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)
        return OF.avg_pool2d(x, *args, self.divisor_override)


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` computed by :func:`batch_norm`: the same running statistics (``momentum=None``:
    a cumulative moving average)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, C, H, W]``; updates the running statistics in training mode."""
        if x.dim() != 4:
            raise ValueError(f"BatchNorm2d: expected a 4-D input [N, C, H, W], got shape {tuple(x.shape)}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        mean, var = (self.running_mean, self.running_var) if track else (None, None)
        return OF.batch_norm(x, mean, var, self.weight, self.bias, use_batch, factor, self.eps)
