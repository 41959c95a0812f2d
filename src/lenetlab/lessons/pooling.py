"""Pooling: the largest or the average value of each window.

A pooling layer slides a window like a convolution but has no kernel to learn: it outputs the
maximum (max pooling) or the mean (average pooling) of each window. A feature that moves by a
pixel often stays inside the same window, so pooling makes the next layer less sensitive to
exact positions, and with a stride above 1 it shrinks the image. Padding and stride work as for
convolutions (max pooling pads with minus infinity, so a padded border never wins). With several
channels each channel is pooled on its own: the channel count stays the same.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from lenetlab.lessons.report import Report
from lenetlab.ops import AvgPool2d, LoopPool2d, MaxPool2d

#: The book's padding and stride settings on a 4x4 input: (kernel, padding, stride).
SETTINGS = (
    (3, 0, 3),  # nn.MaxPool2d(3): the stride defaults to the window size
    (3, 1, 2),
    ((2, 3), (0, 1), (2, 3)),
    ((2, 3), (1, 1), (2, 3)),
)


def _args(kernel, padding, stride) -> str:
    return f"MaxPool2d({kernel}, padding={padding}, stride={stride})"


def run(report: Report) -> None:
    """Pool the book's 3x3 and 4x4 examples and check lenetlab's operators against PyTorch's."""
    report.section("2x2 max and average pooling of a 3x3 input (stride 1)")
    X = torch.arange(9.0).reshape(1, 1, 3, 3)  # [N, C, H, W]
    report.show("X3", "X", X[0, 0])
    Ymax = report.show("max", "max pooling (loop LoopPool2d)", LoopPool2d((2, 2), mode="max")(X)[0, 0])
    Yavg = report.show("avg", "average pooling (loop LoopPool2d)", LoopPool2d((2, 2), mode="avg")(X)[0, 0])
    report.check(
        "book_3x3",
        "the book's [[4, 5], [7, 8]] and [[2, 3], [5, 6]]",
        torch.equal(Ymax, torch.tensor([[4.0, 5.0], [7.0, 8.0]]))
        and torch.equal(Yavg, torch.tensor([[2.0, 3.0], [5.0, 6.0]])),
    )
    same = (
        torch.equal(MaxPool2d(2, stride=1)(X)[0, 0], Ymax)
        and torch.equal(AvgPool2d(2, stride=1)(X)[0, 0], Yavg)
        and torch.equal(nn.MaxPool2d(2, stride=1)(X)[0, 0], Ymax)
    )
    report.check("ops_3x3", "lenetlab.ops.MaxPool2d / AvgPool2d and nn.MaxPool2d agree", same)

    report.section("Padding and stride on a 4x4 input")
    X = torch.arange(16.0).reshape(1, 1, 4, 4)
    report.show("X4", "X", X[0, 0])
    results, agree = [], True
    for i, (kernel, padding, stride) in enumerate(SETTINGS):
        theirs = nn.MaxPool2d(kernel, padding=padding, stride=stride)(X)[0, 0]
        ours = report.show(f"setting{i}", _args(kernel, padding, stride), MaxPool2d(kernel, stride, padding)(X)[0, 0])
        results.append(ours)
        agree = agree and torch.equal(ours, theirs)
    report.check(
        "book_4x4",
        "the book's [[10]], [[5, 7], [13, 15]] twice, and [[1, 3], [9, 11], [13, 15]]",
        torch.equal(results[0], torch.tensor([[10.0]]))
        and torch.equal(results[1], torch.tensor([[5.0, 7.0], [13.0, 15.0]]))
        and torch.equal(results[2], results[1])
        and torch.equal(results[3], torch.tensor([[1.0, 3.0], [9.0, 11.0], [13.0, 15.0]])),
    )
    report.check("ops_4x4", "nn.MaxPool2d gives the same four results", agree)

    report.section("Several channels: each is pooled on its own")
    X2 = torch.cat((X, X + 1), dim=1)  # [1, 2, 4, 4]
    report.say(f"X2 = cat(X, X + 1) along channels: shape {list(X2.shape)}")
    Y2 = report.show("channels", "MaxPool2d(3, padding=1, stride=2)(X2)  [2, 2, 2]", MaxPool2d(3, 2, 1)(X2)[0])
    report.check(
        "two_channels",
        "two channels in, two out: [[5, 7], [13, 15]] and [[6, 8], [14, 16]]",
        torch.equal(Y2, torch.tensor([[[5.0, 7.0], [13.0, 15.0]], [[6.0, 8.0], [14.0, 16.0]]]))
        and torch.equal(nn.MaxPool2d(3, padding=1, stride=2)(X2)[0], Y2),
    )
