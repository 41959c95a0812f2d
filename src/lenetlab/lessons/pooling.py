"""Pooling: the largest or the average value of each window.

A pooling layer slides a window like a convolution but has no kernel to learn: it outputs the
maximum (max pooling) or the mean (average pooling) of each window. A feature that moves by a
pixel often stays inside the same window, so pooling makes the next layer less sensitive to
exact positions, and with a stride above 1 it shrinks the image. Padding and stride work as for
convolutions (max pooling pads with minus infinity, so a padded border never wins). With several
channels each channel is pooled on its own: the channel count stays the same.
"""

import torch
import torch.nn as nn

from lenetlab.lessons.report import Report
from lenetlab.ops import AvgPool2d, LoopPool2d, MaxPool2d

#: The book's padding and stride settings on a 4x4 input, ``(kernel, padding, stride)``, and its results.
SETTINGS = (
    (3, 0, 3, [[10]]),  # nn.MaxPool2d(3): the stride defaults to the window size
    (3, 1, 2, [[5, 7], [13, 15]]),
    ((2, 3), (0, 1), (2, 3), [[5, 7], [13, 15]]),
    ((2, 3), (1, 1), (2, 3), [[1, 3], [9, 11], [13, 15]]),
)


def run(report: Report) -> None:
    """Pool the book's 3x3 and 4x4 examples and check lenetlab's operators against PyTorch's."""
    report.section("2x2 max and average pooling of a 3x3 input (stride 1)")
    X = torch.arange(9.0).reshape(1, 1, 3, 3)  # [N, C, H, W]
    report.show("X3", "X", X[0, 0])
    Ymax = report.show("max", "max pooling (loop LoopPool2d)", LoopPool2d((2, 2), mode="max")(X)[0, 0])
    Yavg = report.show("avg", "average pooling (loop LoopPool2d)", LoopPool2d((2, 2), mode="avg")(X)[0, 0])
    book = Ymax.tolist() == [[4, 5], [7, 8]] and Yavg.tolist() == [[2, 3], [5, 6]]
    report.check("book_3x3", "the book's [[4, 5], [7, 8]] and [[2, 3], [5, 6]]", book)
    same = (
        torch.equal(MaxPool2d(2, stride=1)(X)[0, 0], Ymax)
        and torch.equal(AvgPool2d(2, stride=1)(X)[0, 0], Yavg)
        and torch.equal(nn.MaxPool2d(2, stride=1)(X)[0, 0], Ymax)
    )
    report.check("ops_3x3", "lenetlab.ops.MaxPool2d / AvgPool2d and nn.MaxPool2d agree", same)

    report.section("Padding and stride on a 4x4 input")
    X = torch.arange(16.0).reshape(1, 1, 4, 4)
    report.show("X4", "X", X[0, 0])
    book = agree = True
    for i, (kernel, padding, stride, expected) in enumerate(SETTINGS):
        title = f"MaxPool2d({kernel}, padding={padding}, stride={stride})"
        ours = report.show(f"setting{i}", title, MaxPool2d(kernel, stride, padding)(X)[0, 0])
        book = book and ours.tolist() == expected
        agree = agree and torch.equal(ours, nn.MaxPool2d(kernel, padding=padding, stride=stride)(X)[0, 0])
    claim = "the book's [[10]], [[5, 7], [13, 15]] twice, and [[1, 3], [9, 11], [13, 15]]"
    report.check("book_4x4", claim, book)
    report.check("ops_4x4", "nn.MaxPool2d gives the same four results", agree)

    report.section("Several channels: each is pooled on its own")
    X2 = torch.cat((X, X + 1), dim=1)  # [1, 2, 4, 4]
    report.say(f"X2 = cat(X, X + 1) along channels: shape {list(X2.shape)}")
    Y2 = report.show("channels", "MaxPool2d(3, padding=1, stride=2)(X2)  [2, 2, 2]", MaxPool2d(3, 2, 1)(X2)[0])
    book = Y2.tolist() == [[[5, 7], [13, 15]], [[6, 8], [14, 16]]]
    same = torch.equal(nn.MaxPool2d(3, padding=1, stride=2)(X2)[0], Y2)
    report.check("two_channels", "two channels in, two out: [[5, 7], [13, 15]] and [[6, 8], [14, 16]]", book and same)
