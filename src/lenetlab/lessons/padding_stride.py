"""Padding and stride: how big is a convolution's output?

A k-wide kernel fits n - k + 1 times across an n-wide input, so every convolution shrinks the
image. Padding adds p rows or columns of zeros in total (p/2 on each side), giving n - k + p + 1
positions; padding k - 1 in total keeps the size. A stride s moves the kernel s pixels at a time
and keeps one position in s, so the output is floor((n - k + p + s) / s) along each dimension.
The book tries four settings on an 8x8 input; each is worked out by the formula and checked
against torch.nn.Conv2d and lenetlab's from-scratch conv2d.
"""

import torch
import torch.nn as nn

from lenetlab.errors import ConfigError
from lenetlab.lessons.report import Report, format_table
from lenetlab.ops import conv2d

#: The book's cases: (kernel, padding per side, stride), each as (height, width).
CASES = (
    ((3, 3), (1, 1), (1, 1)),
    ((5, 3), (2, 1), (1, 1)),
    ((3, 3), (1, 1), (2, 2)),
    ((3, 5), (0, 1), (3, 4)),
)
MAX_SIZE = 1024


def output_size(n: int, k: int, p: int, s: int) -> int:
    """The book's formula: ``floor((n - k + p + s) / s)`` with ``p`` the *total* padding (both sides)."""
    return (n - k + p + s) // s


def run(report: Report, size: int = 8) -> None:
    """Work out and check the four cases on a ``size`` x ``size`` input."""
    if not 3 <= size <= MAX_SIZE:
        raise ConfigError(
            f"--size: must be between 3 and {MAX_SIZE} (the (3, 5) kernel with stride 3 needs 3), got {size}"
        )
    x = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(0))  # [N=1, C=1, n, n]
    report.say(f"input: {size}x{size}; in the formula p is the total padding, twice the padding per side")
    rows, results = [], []
    for kernel, padding, stride in CASES:
        cells = ["{}x{}".format(*kernel), "{},{}".format(*padding), "{},{}".format(*stride)]
        by_formula = [output_size(size, k, 2 * p, s) for k, p, s in zip(kernel, padding, stride)]
        worked = [f"({size}-{k}+{2 * p}+{s})//{s} = {n}" for k, p, s, n in zip(kernel, padding, stride, by_formula)]
        layer = nn.Conv2d(1, 1, kernel_size=kernel, padding=padding, stride=stride)
        by_torch = list(layer(x).shape[2:])
        by_ops = list(conv2d(x, layer.weight, layer.bias, stride=stride, padding=padding).shape[2:])
        rows.append([*cells, *worked, "x".join(map(str, by_torch)), "x".join(map(str, by_ops))])
        sizes = {"formula": by_formula, "torch": by_torch, "ops": by_ops}
        results.append({"kernel": list(kernel), "padding": list(padding), "stride": list(stride), **sizes})
    head = ["kernel", "padding", "stride", "height by formula", "width by formula", "nn.Conv2d", "ops.conv2d"]
    report.say(format_table(head, rows))
    report.record("cases", results)
    agree = all(r["formula"] == r["torch"] == r["ops"] for r in results)
    report.check("formula", "the formula, torch.nn.Conv2d and lenetlab.ops.conv2d agree on every case", agree)
