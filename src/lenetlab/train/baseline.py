"""The tutorials' training recipe that lenetlab's speed is measured against: NNDL's per-sample PIL
pipeline (:class:`PILPipelineDataset` through a shuffling DataLoader, :func:`pil_loader`) feeding NNDL
``lenet5`` trained with plain SGD (:func:`baseline_model`). Used by ``lenet bench train`` and its
``--profile``."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from lenetlab.models import create


class PILPipelineDataset(torch.utils.data.Dataset):
    """NNDL's per-sample PIL pipeline, step by step, without torchvision.

    Like NNDL's ``MNIST_dataset`` the images are held as Python lists of 784 numbers (what its
    json loader gives); item ``i`` does what NNDL does per image: ``np.array(list)`` →
    reshape 28×28 → ``Image.fromarray(uint8, "L")`` → ``Resize(32)`` (PIL bilinear) → ``ToTensor``
    (HWC uint8 → CHW float / 255, as torchvision does it) → ``Normalize(mean, std)``, and returns
    ``(float32 [1, size, size], int)``. ``images`` uint8 ``[N, 28, 28]`` or ``[N, 1, 28, 28]``,
    ``labels`` int64 ``[N]``. ``mean``/``std`` are in [0, 1] pixel units: 0.5/0.5 is the corrected
    normalisation (NNDL's own 127.5/127.5 quirk is replayed by ``normalize=nndl-quirk``).
    """

    def __init__(self, images, labels, size: int = 32, mean: float = 0.5, std: float = 0.5) -> None:
        images = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        self.images = images.reshape(len(images), -1).tolist()  # lists of ints, like NNDL's json lists
        self.labels = (labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)).tolist()
        self.size, self.mean, self.std = size, mean, std

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        image, label = np.array(self.images[i]).astype("float32"), int(self.labels[i])
        image = np.reshape(image, [28, 28])
        img = Image.fromarray(image.astype("uint8"), mode="L").resize((self.size, self.size), Image.BILINEAR)
        # ToTensor: uint8 HWC array -> CHW float in [0, 1]; Normalize: (x - mean) / std
        x = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(self.size, self.size, 1)
        x = x.permute(2, 0, 1).contiguous().float().div(255)
        return x.sub_(self.mean).div_(self.std), label


def pil_loader(
    split, batch_size: int, seed: int, drop_last: bool = False, dataset: PILPipelineDataset | None = None
) -> torch.utils.data.DataLoader:
    """The tutorials' shuffling DataLoader over :class:`PILPipelineDataset` of ``split`` (or over ``dataset``,
    already built): batches ``(float32 [B, 1, 32, 32], int64 [B])``, the order seeded by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    ds = dataset if dataset is not None else PILPipelineDataset(split.x, split.y)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, generator=g, drop_last=drop_last)


def baseline_model(seed: int, lr: float = 0.1):
    """NNDL ``lenet5`` seeded by ``seed`` (in train mode) and its plain SGD optimiser at ``lr``: the tutorials'
    model."""
    torch.manual_seed(seed)
    model = create("lenet5").train()
    return model, torch.optim.SGD(model.parameters(), lr=lr)
