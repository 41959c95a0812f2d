"""im2col: a convolution as one matrix multiply.

The loop cross-correlation visits every output position and multiplies a window by the kernel:
many small steps. im2col ("image to columns") instead copies every window into one column of a
matrix, so the whole convolution becomes a single matrix product of the flattened kernel with
that matrix, the operation computers do fastest. lenetlab.ops.conv2d works this way (with every
channel and every image of the batch in the same matrix). The price is memory: each input value
is copied once for every window it falls in, k_h x k_w times for a stride-1 convolution.
"""

import torch

from lenetlab.lessons.report import Report
from lenetlab.ops import conv2d, corr2d


def windows_as_columns(X: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Each ``kh x kw`` window of ``X`` ``[H, W]``, flattened, as one column: ``[kh*kw, Ho*Wo]``."""
    ho, wo = X.shape[0] - kh + 1, X.shape[1] - kw + 1
    columns = [X[i : i + kh, j : j + kw].reshape(-1) for i in range(ho) for j in range(wo)]
    return torch.stack(columns, dim=1)


def run(report: Report) -> None:
    """Unfold the book's 3x3 example into columns, multiply, and count the memory for LeNet-5's C1."""
    X, K = torch.arange(9.0).reshape(3, 3), torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    report.show("X", "X", X)
    report.show("K", "K", K)
    title = "the 2x2 windows of X as columns (window (0,0) first)  [4, 4]"
    cols = report.show("columns", title, windows_as_columns(X, 2, 2))
    row = report.show("kernel_row", "K flattened to a row  [1, 4]", K.reshape(1, -1))
    Y = report.show("Y", "row @ columns, reshaped to 2x2", (row @ cols).reshape(2, 2))
    claim = "one matrix multiply gives corr2d's [[19, 25], [37, 43]]"
    report.check("same_as_loops", claim, torch.equal(Y, corr2d(X, K)))
    same = torch.equal(conv2d(X[None, None], K[None, None])[0, 0], Y)
    report.check("same_as_ops", "lenetlab.ops.conv2d (im2col inside) agrees", same)

    report.section("The memory price, for LeNet-5's first layer at batch 256")
    n, size, k, c_o = 256, 32, 5, 6
    out = size - k + 1
    inputs, columns = n * size * size, k * k * n * out * out
    report.record("lenet_c1", {"input_values": inputs, "column_values": columns})
    report.say(f"input [256, 1, 32, 32]: {inputs:,} values ({inputs * 4 / 2**20:.1f} MiB in float32)")
    report.say(
        f"columns [5x5, 256x28x28]: {columns:,} values ({columns * 4 / 2**20:.1f} MiB), "
        f"{columns / inputs:.1f} times the input"
    )
    report.say(f"then one [6, 25] x [25, {n * out * out:,}] matrix multiply gives all {c_o * n * out * out:,} outputs")
    report.say("`lenet bench ops` times this against the loop version and PyTorch's own convolution.")
