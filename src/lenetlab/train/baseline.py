"""The tutorials' training recipe ``lenet bench train`` measures lenetlab against: NNDL's per-sample PIL
pipeline feeding NNDL ``lenet5`` trained with plain SGD."""

import numpy as np
import torch
from PIL import Image

from lenetlab.models import create


class PILPipelineDataset(torch.utils.data.Dataset):
    """NNDL's per-sample PIL pipeline without torchvision: images (uint8 ``[N, 28, 28]`` or ``[N, 1, 28,
    28]``) held as Python lists, as NNDL's json loader gives them; item ``i`` goes list → 28×28 uint8 PIL
    image → bilinear ``Resize(size)`` → ``ToTensor`` → ``Normalize(mean, std)`` (in [0, 1] units) and
    returns ``(float32 [1, size, size], int label)``."""

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
