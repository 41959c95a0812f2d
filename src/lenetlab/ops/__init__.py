"""From-scratch operators: loop teaching references (:mod:`lenetlab.ops.reference`: ``corr2d``, ``LoopConv2d``,
``LoopPool2d``, NNDL's ``LoopLeNet``), fast versions with ``torch.nn.functional`` signatures from tensor
views and matrix multiplies (:mod:`lenetlab.ops.functional`), and layers on them interchangeable with
torch's (:mod:`lenetlab.ops.modules`).
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
