"""From-scratch operators: loop teaching references and fast im2col versions.

* :mod:`lenetlab.ops.reference` — ``corr2d``, loop ``Conv2D`` (bias ``[C, 1]``) and ``Pool2D``,
  and ``LoopLeNet`` (NNDL's ``Model_LeNet``), written to be read.
* :mod:`lenetlab.ops.functional` — ``conv2d``, ``max_pool2d``, ``avg_pool2d``, ``batch_norm`` with
  ``torch.nn.functional`` signatures, built from tensor views and matrix multiplies only.
* :mod:`lenetlab.ops.modules` — ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, ``BatchNorm2d`` with
  torch-compatible state dicts.
"""

from lenetlab.ops.functional import avg_pool2d, batch_norm, conv2d, max_pool2d
from lenetlab.ops.modules import AvgPool2d, BatchNorm2d, Conv2d, MaxPool2d
from lenetlab.ops.reference import Conv2D, LoopLeNet, Pool2D, corr2d

__all__ = [
    "AvgPool2d",
    "BatchNorm2d",
    "Conv2D",
    "Conv2d",
    "LoopLeNet",
    "MaxPool2d",
    "Pool2D",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "corr2d",
    "max_pool2d",
]
