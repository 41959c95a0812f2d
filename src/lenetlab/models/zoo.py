"""The d2l CNN chapter zoo, in the book's order (the order ``lenet models`` lists them): AlexNet, VGG-11,
NiN, GoogLeNet and ResNet-18, each in a full 224×224 form with the book's channel widths and a small
form for 28/32-pixel digits that trains in minutes on a CPU.
"""

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenetlab.models.registry import register_model


def conv_relu(in_channels: int, spec) -> nn.Sequential:
    """A conv + ReLU for each ``(out_channels, kernel, stride, padding)`` of ``spec``, a max pool for each
    ``(kernel, stride)`` or ``(kernel, stride, padding)``."""
    layers: list[nn.Module] = []
    for entry in spec:
        if len(entry) < 4:
            layers.append(nn.MaxPool2d(*entry))
        else:
            layers += [nn.Conv2d(in_channels, *entry), nn.ReLU()]
            in_channels = entry[0]
    return nn.Sequential(*layers)


# ---------------------------------------- AlexNet (d2l §8.1): alexnet, alexnet-small (28×28)
class AlexNet(nn.Module):
    """``features`` (``[N, C, H, W] -> [N, flat]`` once flattened), then three fully connected layers
    with ReLU and dropout (``classifier``) giving scores ``[N, num_classes]``. VGG has the same shape."""

    def __init__(self, features: nn.Sequential, flat: int, hidden: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(
            nn.Linear(flat, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, H, W]``."""
        return self.classifier(torch.flatten(self.features(x), 1))


@register_model(
    "alexnet",
    input_size=(1, 224, 224),
    description="d2l AlexNet: 96-256-384-384-256 convs, 4096-4096 FC, dropout (224x224)",
)
def alexnet(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """d2l's AlexNet for ``[N, in_channels, 224, 224]`` inputs."""
    convs = [(96, 11, 4, 1), (3, 2), (256, 5, 1, 2), (3, 2), (384, 3, 1, 1), (384, 3, 1, 1), (256, 3, 1, 1), (3, 2)]
    features = conv_relu(in_channels, convs)  # 96x54x54, pool 26x26, 256 maps, pool 12x12 ... pool 256x5x5
    return AlexNet(features, 256 * 5 * 5, 4096, num_classes)


@register_model(
    "alexnet-small",
    input_size=(1, 28, 28),
    description="AlexNet layout for 28x28: 3x3 convs 32-64-96-96-64, 256-256 FC, dropout",
)
def alexnet_small(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """AlexNet's layout for ``[N, in_channels, 28, 28]``: the 11×11 stride-4 stem would leave nothing of
    a 28-pixel digit, so every convolution is 3×3 stride 1, and the widths are divided by 3-4."""
    convs = [(32, 3, 1, 1), (2, 2), (64, 3, 1, 1), (2, 2), (96, 3, 1, 1), (96, 3, 1, 1), (64, 3, 1, 1), (3, 2)]
    features = conv_relu(in_channels, convs)  # 32x28x28, pool 14x14, 64 maps, pool 7x7 ... pool 64x3x3
    return AlexNet(features, 64 * 3 * 3, 256, num_classes)


# ---------------------------------------- VGG-11 (d2l §8.2): vgg11, vgg11-small (32×32, d2l's widths / 4)
VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))  # (convolutions, channels) per block


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """``num_convs`` 3×3 same-padding conv+ReLU layers then a 2×2 max pool (halves H and W)."""
    return conv_relu(in_channels, [(out_channels, 3, 1, 1)] * num_convs + [(2, 2)])


@register_model(
    "vgg11", input_size=(1, 224, 224), description="d2l VGG-11: 8 convs 64-128-256-256-512x4, 4096-4096 FC (224x224)"
)
class VGG(AlexNet):
    """VGG: blocks of 3×3 convs (``arch``'s channels / ``width``), then AlexNet's classifier;
    ``[N, C, H, W]`` with H = W = ``spatial``·2^5 → scores ``[N, num_classes]``."""

    def __init__(self, num_classes=10, in_channels=1, arch=VGG11_ARCH, width=1, spatial=7, hidden=4096) -> None:
        blocks = []
        for num_convs, out_channels in arch:
            blocks.append(vgg_block(num_convs, in_channels, out_channels // width))
            in_channels = out_channels // width
        super().__init__(nn.Sequential(*blocks), in_channels * spatial * spatial, hidden, num_classes)


register_model(
    "vgg11-small",
    input_size=(1, 32, 32),
    description="VGG-11 layout with d2l's 1/4 widths (16..128) and 512-unit FC, 32x32",
)(partial(VGG, width=4, spatial=1, hidden=512))


# ---------------------------------------- Network in Network (d2l §8.3): nin, nin-small (28×28)
def nin_block(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> nn.Sequential:
    """One conv then two 1×1 convs (a per-pixel MLP), each followed by ReLU."""
    one_by_one = (out_channels, 1, 1, 0)
    return conv_relu(in_channels, [(out_channels, kernel_size, stride, padding), one_by_one, one_by_one])


@register_model(
    "nin",
    input_size=(1, 224, 224),
    description="d2l NiN: NiN blocks 96-256-384-classes, global average pooling (224x224)",
)
class NiN(nn.Module):
    """NiN: four NiN blocks (``widths`` channels, then one map per class) and global average pooling;
    ``stem`` = (kernel, stride, padding) of block 1."""

    def __init__(
        self, num_classes=10, in_channels=1, widths=(96, 256, 384), stem=(11, 4, 0), dropout: float = 0.5
    ) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.net = nn.Sequential(
            nin_block(in_channels, w1, *stem),
            nn.MaxPool2d(3, stride=2),
            nin_block(w1, w2, 5, 1, 2),
            nn.MaxPool2d(3, stride=2),
            nin_block(w2, w3, 3, 1, 1),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout(dropout),
            nin_block(w3, num_classes, 3, 1, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, H, W]``."""
        return self.net(x)


register_model(
    "nin-small",
    input_size=(1, 28, 28),
    description="NiN for 28x28: 5x5 stride-1 stem, blocks 32-64-96-classes, global avg pool",
)(partial(NiN, widths=(32, 64, 96), stem=(5, 1, 2)))  # 28 -> 13 -> 6 -> 2


# ---------------------------------------- GoogLeNet (d2l §8.4): googlenet, googlenet-small (28×28)
# (c1, (c2a, c2b), (c3a, c3b), c4) of the nine Inception blocks in d2l, by stage
INCEPTIONS = (
    ((64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)),
    (
        (192, (96, 208), (16, 48), 64),
        (160, (112, 224), (24, 64), 64),
        (128, (128, 256), (24, 64), 64),
        (112, (144, 288), (32, 64), 64),
        (256, (160, 320), (32, 128), 128),
    ),
    ((256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)),
)


class Inception(nn.Module):
    """Four parallel paths (1×1; 1×1→3×3; 1×1→5×5; 3×3 max pool→1×1) concatenated on channels:
    ``[N, in, H, W] -> [N, c1 + c2[1] + c3[1] + c4, H, W]``."""

    def __init__(self, in_channels: int, c1: int, c2, c3, c4: int) -> None:
        super().__init__()
        self.p1_1 = nn.Conv2d(in_channels, c1, 1)
        self.p2_1 = nn.Conv2d(in_channels, c2[0], 1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], 3, padding=1)
        self.p3_1 = nn.Conv2d(in_channels, c3[0], 1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], 5, padding=2)
        self.p4_1 = nn.MaxPool2d(3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the four paths' outputs along channels."""
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        return torch.cat((p1, p2, p3, p4), dim=1)


def _stage(in_channels: int, specs, d: int, pool: bool):
    """Inception blocks of ``specs`` at 1/``d`` width (then a stride-2 max pool): ``(stage, out channels)``."""
    layers: list[nn.Module] = []
    for c1, (c2a, c2b), (c3a, c3b), c4 in specs:
        c1, c2, c3, c4 = c1 // d, (c2a // d, c2b // d), (c3a // d, c3b // d), c4 // d
        layers.append(Inception(in_channels, c1, c2, c3, c4))
        in_channels = c1 + c2[1] + c3[1] + c4
    if pool:
        layers.append(nn.MaxPool2d(3, stride=2, padding=1))
    return nn.Sequential(*layers), in_channels


@register_model(
    "googlenet",
    input_size=(1, 224, 224),
    description="d2l GoogLeNet: 9 Inception blocks, global average pool, 1024 -> classes (224x224)",
)
class GoogLeNet(nn.Module):
    """d2l's GoogLeNet: stem (b1, b2), Inception stages b3-b5, global average pool, linear head.

    ``divisor`` divides every width. ``small`` swaps the 7×7/2 stem and its two stride-2 pools for 3×3
    stride-1 convs and one pool, for 28×28 inputs (28→14→7→4). d2l trains the full form at 96×96.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, divisor: int = 1, small: bool = False) -> None:
        super().__init__()
        d = divisor
        pool = (3, 2, 1)
        if small:
            self.b1 = conv_relu(in_channels, [(64 // d, 3, 1, 1)])
            self.b2 = conv_relu(64 // d, [(192 // d, 3, 1, 1), pool])
        else:
            self.b1 = conv_relu(in_channels, [(64, 7, 2, 3), pool])
            self.b2 = conv_relu(64, [(64, 1, 1, 0), (192, 3, 1, 1), pool])
        self.b3, c = _stage(192 // d, INCEPTIONS[0], d, pool=True)
        self.b4, c = _stage(c, INCEPTIONS[1], d, pool=True)
        b5, c = _stage(c, INCEPTIONS[2], d, pool=False)
        self.b5 = nn.Sequential(*b5, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, H, W]``."""
        return self.fc(self.b5(self.b4(self.b3(self.b2(self.b1(x))))))


register_model(
    "googlenet-small",
    input_size=(1, 28, 28),
    description="GoogLeNet with 1/4 widths and a 3x3 stride-1 stem for 28x28 digits",
)(partial(GoogLeNet, divisor=4, small=True))


# ---------------------------------------- ResNet-18 (d2l §8.6): resnet18, resnet18-small (28×28)
class Residual(nn.Module):
    """Two 3×3 conv-BN layers plus a shortcut (a 1×1 conv when the shape changes):
    ``[N, in, H, W] -> [N, out, H/stride, W/stride]``."""

    def __init__(self, in_channels: int, out_channels: int, use_1x1conv: bool = False, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1, stride=stride) if use_1x1conv else None
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return F.relu(y + x)


def resnet_block(in_channels: int, out_channels: int, num_residuals: int, first_block: bool = False) -> nn.Sequential:
    """A stage of residual blocks; all but the first stage halve H and W in their first block."""
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blocks.append(Residual(in_channels, out_channels, use_1x1conv=True, stride=2))
        else:
            blocks.append(Residual(out_channels, out_channels))
    return nn.Sequential(*blocks)


@register_model(
    "resnet18",
    input_size=(1, 224, 224),
    description="d2l ResNet-18: 7x7 stem, stages 64-128-256-512, global average pool (224x224)",
)
class ResNet18(nn.Module):
    """d2l's ResNet-18: stem b1, four stages of two residual blocks, global average pool, linear.

    ``widths``: the four stages' channels; ``small``: a 3×3 stride-1 stem without max pool. d2l trains
    the full form at 96×96.
    """

    def __init__(self, num_classes=10, in_channels=1, widths=(64, 128, 256, 512), small: bool = False) -> None:
        super().__init__()
        w = widths
        if small:
            self.b1 = nn.Sequential(nn.Conv2d(in_channels, w[0], 3, padding=1), nn.BatchNorm2d(w[0]), nn.ReLU())
        else:
            self.b1 = nn.Sequential(
                nn.Conv2d(in_channels, w[0], 7, stride=2, padding=3),
                nn.BatchNorm2d(w[0]),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        self.b2 = resnet_block(w[0], w[0], 2, first_block=True)
        self.b3 = resnet_block(w[0], w[1], 2)
        self.b4 = resnet_block(w[1], w[2], 2)
        self.b5 = resnet_block(w[2], w[3], 2)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w[3], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, num_classes]`` from ``x`` ``[N, C, H, W]``."""
        return self.head(self.b5(self.b4(self.b3(self.b2(self.b1(x))))))


register_model(
    "resnet18-small",
    input_size=(1, 28, 28),
    description="ResNet-18 with 1/4 widths (16-32-64-128) and a 3x3 stride-1 stem for 28x28",
)(partial(ResNet18, widths=(16, 32, 64, 128), small=True))  # 28 -> 28 -> 14 -> 7 -> 4
