"""From-scratch operators: loop teaching references and fast im2col versions.

* :mod:`lenetlab.ops.reference` — ``corr2d``, loop ``LoopConv2d`` (bias ``[C, 1]``) and ``LoopPool2d``,
  and ``LoopLeNet`` (NNDL's ``Model_LeNet``), written to be read.
* :mod:`lenetlab.ops.functional` — ``conv2d``, ``max_pool2d``, ``avg_pool2d``, ``batch_norm`` with
  ``torch.nn.functional`` signatures, built from tensor views and matrix multiplies only.
* :mod:`lenetlab.ops.modules` — ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, ``BatchNorm2d`` with
  torch-compatible state dicts.
"""

from lenetlab.ops.functional import avg_pool2d, batch_norm, conv2d, max_pool2d
from lenetlab.ops.modules import AvgPool2d, BatchNorm2d, Conv2d, MaxPool2d
from lenetlab.ops.reference import LoopConv2d, LoopLeNet, LoopPool2d, corr2d

__all__ = [
    "AvgPool2d",
    "BatchNorm2d",
    "Conv2d",
    "LoopConv2d",
    "LoopLeNet",
    "LoopPool2d",
    "MaxPool2d",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "corr2d",
    "max_pool2d",
]
