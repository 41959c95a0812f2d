"""Multiple input and output channels, and the 1x1 convolution.

A colour image or a hidden layer has several channels. With c_i input channels the kernel has
c_i slices: each channel is cross-correlated with its own slice and the results are summed into
one output channel. For c_o output channels there are c_o such kernels, a c_o x c_i x k_h x k_w
tensor, and their outputs are stacked. A 1x1 kernel sees no neighbours at all: each output pixel
is a weighted sum of the c_i values at the same pixel, which is exactly a fully connected layer
with c_i inputs and c_o outputs applied at every pixel, with the same weights everywhere.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.lessons.report import Report, max_diff
from lenetlab.ops import conv2d, corr2d


def corr2d_multi_in(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Sum over channels of ``corr2d``: ``X`` ``[c_i, H, W]``, ``K`` ``[c_i, kh, kw]`` -> ``[Ho, Wo]``."""
    return sum(corr2d(x, k) for x, k in zip(X, K))


def corr2d_multi_in_out(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """One :func:`corr2d_multi_in` per output channel: ``K`` ``[c_o, c_i, kh, kw]`` -> ``[c_o, Ho, Wo]``."""
    return torch.stack([corr2d_multi_in(X, k) for k in K])


def corr2d_1x1(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution as one matrix multiply: ``X [c_i, H, W]``, ``K [c_o, c_i, 1, 1]`` -> ``[c_o, H, W]``."""
    c_i, h, w = X.shape
    return (K.reshape(-1, c_i) @ X.reshape(c_i, h * w)).reshape(-1, h, w)


def run(report: Report, seed: int = 0) -> None:
    """The book's two-channel example, three output channels, and 1x1 = fully connected (random, ``seed``)."""
    report.section("Two input channels")
    X = torch.arange(9.0).reshape(3, 3)
    X, K = torch.stack((X, X + 1)), torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    report.show("X", "X  [2, 3, 3]", X)
    report.show("K", "K  [2, 2, 2]", K)
    Y = corr2d_multi_in(X, K)
    report.show("Y_multi_in", "corr2d_multi_in(X, K) = corr2d(X[0], K[0]) + corr2d(X[1], K[1])", Y)
    report.check("multi_in_book", "the book's [[56, 72], [104, 120]]", Y.tolist() == [[56, 72], [104, 120]])
    same = torch.equal(conv2d(X[None], K[None])[0, 0], Y)
    report.check("multi_in_ops", "lenetlab.ops.conv2d with a [1, 2, 2, 2] weight gives the same", same)

    report.section("Three output channels")
    K3 = torch.stack((K, K + 1, K + 2))
    report.say(f"K3 = stack(K, K + 1, K + 2): shape {list(K3.shape)} = c_o x c_i x k_h x k_w")
    Y3 = report.show("Y_multi_out", "corr2d_multi_in_out(X, K3)  [3, 2, 2]", corr2d_multi_in_out(X, K3))
    book = [[[56, 72], [104, 120]], [[76, 100], [148, 172]], [[96, 128], [192, 224]]]
    report.check("multi_out_book", "the book's three 2x2 maps", Y3.tolist() == book)
    same = torch.equal(conv2d(X[None], K3)[0], Y3) and torch.equal(F.conv2d(X[None], K3)[0], Y3)
    report.check("multi_out_ops", "lenetlab.ops.conv2d and torch.nn.functional.conv2d give the same", same)

    report.section("A 1x1 convolution is a fully connected layer at every pixel")
    gen = torch.Generator().manual_seed(seed)
    X = torch.normal(0.0, 1.0, (3, 3, 3), generator=gen)  # [c_i=3, 3, 3]
    K = torch.normal(0.0, 1.0, (2, 3, 1, 1), generator=gen)  # [c_o=2, c_i=3, 1, 1]
    by_matmul = report.show("Y_1x1", "corr2d_1x1(X, K) = K[2, 3] @ X[3, 9], reshaped  [2, 3, 3]", corr2d_1x1(X, K))
    fc = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(K.reshape(2, 3))
    diffs = {
        "loops (corr2d_multi_in_out)": max_diff(corr2d_multi_in_out(X, K), by_matmul),
        "nn.Linear per pixel": max_diff(fc(X.permute(1, 2, 0)).permute(2, 0, 1), by_matmul),  # 3 values -> 2
        "ops.conv2d": max_diff(conv2d(X[None], K)[0], by_matmul),
    }
    largest = report.differences("max_diffs", "largest difference from the matrix multiply", diffs)
    claim = "the 1x1 convolution equals nn.Linear(3, 2) applied at every pixel (within 1e-6)"
    report.check("one_by_one", claim, largest < 1e-6)
    report.say(f"parameters: 1x1 conv {K.numel()} (c_o x c_i) = nn.Linear(3, 2, bias=False) {fc.weight.numel()}")
