"""The d2l CNN chapter zoo (AlexNet, VGG-11, NiN, GoogLeNet, ResNet-18), each in a full 224×224 form
with the book's channel widths and a small form for 28/32-pixel digits that trains in minutes on a CPU.

Importing this package registers every zoo model.
"""

# in the book's chapter order, which is the order `lenet models` lists them
from lenetlab.models.zoo import alexnet  # noqa: F401, I001
from lenetlab.models.zoo import vgg  # noqa: F401
from lenetlab.models.zoo import nin  # noqa: F401
from lenetlab.models.zoo import googlenet  # noqa: F401
from lenetlab.models.zoo import resnet  # noqa: F401
