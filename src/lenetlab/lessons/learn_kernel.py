"""Learning a kernel: recover [1, -1] from an image and its edge map by gradient descent.

In the edge-detection lesson the kernel was written by hand. A convolutional layer learns its
kernel instead: start from random numbers, compute the layer's output on the 6x8 band image,
measure the squared error against the edge map Y that [1, -1] produced, and step the kernel
against the gradient of that error. After ten steps with learning rate 0.03 the kernel is close
to [1, -1]. The layer here is lenetlab's from-scratch convolution (im2col, or the loop
reference) with its hand-written backward; the same steps with torch.nn.Conv2d from the same
start must end at the same kernel. The loss is a quadratic bowl in the two kernel weights, and
gradient descent on a bowl only converges when the learning rate is below 2 divided by its
steepest curvature (the largest eigenvalue of the Hessian): 1/30 here, so the book's 0.03 is
close to the edge. Try --lr 0.04 and watch the loss explode.
"""

import math

import torch
import torch.nn as nn

from lenetlab.errors import ConfigError
from lenetlab.lessons.edges import vertical_band
from lenetlab.lessons.im2col import windows_as_columns
from lenetlab.lessons.report import Report, format_number, format_table, max_diff
from lenetlab.ops import Conv2d, LoopConv2d, corr2d

TARGET = torch.tensor([[1.0, -1.0]])
# Largest allowed |learned - target| per entry: from any start in [0, 1)^2 the book's 10 steps at
# lr 0.03 end within 0.12 (measured on an 11x11 grid of starts).
TOLERANCE = 0.15


def scratch_layer(impl: str, seed: int) -> nn.Module:
    """A bias-free 1 -> 1 channel, 1x2 from-scratch conv layer with a seeded random kernel."""
    start = torch.rand(1, 1, 1, 2, generator=torch.Generator().manual_seed(seed))  # as d2l's Conv2D: [0, 1)
    if impl == "im2col":
        layer = Conv2d(1, 1, kernel_size=(1, 2), bias=False)
    elif impl == "loop":
        layer = LoopConv2d(1, 1, kernel_size=(1, 2))
        layer.bias.requires_grad_(False)  # the loop layer always has a bias: keep it at 0, untrained
    else:
        raise ConfigError(f"--impl: expected 'im2col' or 'loop', got {impl!r}")
    with torch.no_grad():
        layer.weight.copy_(start)
    return layer


def descend(layer: nn.Module, X: torch.Tensor, Y: torch.Tensor, lr: float, steps: int) -> list[float]:
    """``steps`` gradient-descent steps of ``layer.weight`` on ``sum((layer(X) - Y)^2)`` (``X [1, 1, 6, 8]``,
    ``Y [1, 1, 6, 7]``); the loss before each step."""
    losses = []
    for _ in range(steps):
        loss = ((layer(X) - Y) ** 2).sum()
        layer.zero_grad()
        loss.backward()
        with torch.no_grad():
            layer.weight -= lr * layer.weight.grad
        losses.append(loss.item())
    return losses


def run(report: Report, lr: float = 0.03, steps: int = 10, every: int = 2, seed: int = 0, impl: str = "im2col") -> None:
    """Learn the 1x2 edge kernel back; ``every`` sets how often the loss prints."""
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"--lr: must be a positive number, got {lr}")
    if not 1 <= steps <= 10_000:
        raise ConfigError(f"--steps: must be between 1 and 10000, got {steps}")
    if every < 1:
        raise ConfigError(f"--every: must be a positive integer, got {every}")
    X = vertical_band().reshape(1, 1, 6, 8)
    Y = corr2d(X[0, 0], TARGET).reshape(1, 1, 6, 7)  # the edge map the kernel must reproduce
    layer = scratch_layer(impl, seed)
    reference = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)
    with torch.no_grad():
        reference.weight.copy_(layer.weight)
    report.say(f"layer: {layer.__class__.__module__}.{layer.__class__.__name__} ({impl}), kernel 1x2, no bias")
    report.show("start", "random start", layer.weight.detach().reshape(1, 2))

    # loss(w) = |A w - y|^2 with one row of A per window of X, so its Hessian is 2 A^T A
    A = windows_as_columns(X[0, 0], 1, 2).T  # [42, 2]
    title = "largest stable learning rate: 2 / the largest eigenvalue of the loss's Hessian 2 A^T A"
    title += " (A: the 42 windows of X as rows)"
    lr_limit = report.show("lr_limit", title, 2 / torch.linalg.eigvalsh(2 * A.T @ A).max().item())

    losses = descend(layer, X, Y, lr, steps)
    shown = [[i, format_number(loss)] for i, loss in enumerate(losses, 1) if i % every == 0 or i == steps]
    report.say("")
    report.say(format_table(["step", "loss (sum of squared errors)"], shown, right={0, 1}))
    report.record("losses", losses)
    learned = report.show("kernel", "learned kernel", layer.weight.detach().reshape(1, 2))
    error = report.show("max_error", "largest |learned - [1, -1]|", max_diff(learned, TARGET))
    report.check("learned", f"the learned kernel is within {TOLERANCE} of [1, -1]", error < TOLERANCE)
    if not losses[-1] < losses[0]:
        report.say(
            f"The loss grew instead of shrinking: --lr {lr:g} is above the limit {lr_limit:.4f}, so each step "
            "overshoots the bottom of the bowl by more than it started from."
        )
    descend(reference, X, Y, lr, steps)
    torch_kernel = reference.weight.detach().reshape(1, 2)
    report.record("torch_kernel", torch_kernel)
    same = torch.allclose(torch_kernel, learned, rtol=1e-5, atol=1e-6, equal_nan=True)
    report.check("same_as_torch", "torch.nn.Conv2d from the same start ends at the same kernel", same)
