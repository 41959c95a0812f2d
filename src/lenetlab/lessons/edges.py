"""Cross-correlation, and a two-pixel kernel that finds edges.

A convolutional layer slides a small kernel over its input and, at every position, multiplies
the overlapping numbers and adds them up (deep-learning libraries call this "convolution", but
without flipping the kernel it is a cross-correlation). A 3x3 input and a 2x2 kernel give a
2x2 output. The kernel [1, -1] subtracts each pixel's right-hand neighbour from it: where the
image does not change the result is 0, where white (1) turns to black (0) it is +1, where black
turns back to white it is -1. It only looks along rows, so it cannot see the horizontal edges
of the transposed image, until it is transposed too.
"""

import torch
import torch.nn.functional as F

from lenetlab.errors import ConfigError
from lenetlab.lessons.report import Report
from lenetlab.ops import conv2d, corr2d


def parse_kernel(text: str) -> torch.Tensor:
    """A kernel from text: numbers separated by commas, rows by ``;`` (``"1,-1"`` is ``[[1., -1.]]``)."""
    try:
        rows = [[float(v) for v in row.split(",")] for row in text.split(";")]
    except ValueError:
        raise ConfigError(f"--kernel: expected numbers separated by ',' and rows by ';', got {text!r}") from None
    if len({len(r) for r in rows}) != 1:
        raise ConfigError(f"--kernel: every row needs the same number of values, got {text!r}")
    if len(rows) > 6 or len(rows[0]) > 8:
        raise ConfigError(f"--kernel: at most 6 rows of 8 values (the image is 6x8), got {len(rows)}x{len(rows[0])}")
    return torch.tensor(rows)


def vertical_band() -> torch.Tensor:
    """The book's 6x8 image ``[6, 8]``: ones (white) with a dark band of zeros in columns 2 to 5."""
    X = torch.ones(6, 8)
    X[:, 2:6] = 0
    return X


def run(report: Report, kernel: str = "1,-1") -> None:
    """Correlate the book's examples and the 6x8 band image with ``kernel``."""
    report.section("Cross-correlation of a 3x3 input with a 2x2 kernel")
    X, K = torch.arange(9.0).reshape(3, 3), torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    report.show("X3", "X", X)
    report.show("K2", "K", K)
    Y = report.show("Y3", "corr2d(X, K)  (top left: 0*0 + 1*1 + 3*2 + 4*3 = 19)", corr2d(X, K))
    report.check("corr2d_book", "corr2d(X, K) is the book's [[19, 25], [37, 43]]", Y.tolist() == [[19, 25], [37, 43]])

    report.section("Edges of a vertical band")
    K = parse_kernel(kernel)
    X = report.show("X", "X: a 6x8 image, white (1) with a black band (0) in columns 2-5", vertical_band())
    report.show("K", "K", K)
    Y = report.show("Y", "Y = corr2d(X, K)", corr2d(X, K))
    book_kernel = K.tolist() == [[1, -1]]
    if book_kernel:
        report.say("Column 1 holds +1 (white -> black), column 5 holds -1 (black -> white); the rest is 0.")
        report.check("edges", "+1 and -1 exactly at the two edges", Y.tolist() == [[0, 1, 0, 0, 0, -1, 0]] * 6)
    # The same arithmetic, two more ways: lenetlab's im2col operator and PyTorch's own.
    same = torch.equal(conv2d(X[None, None], K[None, None])[0, 0], Y)
    report.check("same_as_ops", "lenetlab.ops.conv2d (im2col) gives the same Y", same)
    same = torch.allclose(F.conv2d(X[None, None], K[None, None])[0, 0], Y)
    report.check("same_as_torch", "torch.nn.functional.conv2d gives the same Y", same)

    report.section("The transposed image: the edges are horizontal now")
    Yt = report.show("Y_transposed", "corr2d(X.T, K)", corr2d(X.T, K))
    if book_kernel:
        report.check("blind", "K finds nothing in X.T (all zeros)", not Yt.any().item())
    title = "corr2d(X.T, K.T): the transposed kernel sees X.T as K sees X"
    Ytt = report.show("Y_transposed_kernel", title, corr2d(X.T, K.T))
    report.check("transpose", "corr2d(X.T, K.T) is corr2d(X, K) transposed", torch.equal(Ytt, Y.T))
