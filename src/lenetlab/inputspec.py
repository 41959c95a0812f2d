""":class:`InputSpec`: how raw ``uint8`` images become a model's input, written into every checkpoint and
exported model and checked when read back. A leaf: ``data`` applies a spec, ``models`` checks one."""

import math
from dataclasses import asdict, dataclass

from lenetlab.errors import CheckpointError

#: The input sizes (pixels) a spec may ask for: 512 covers every registered model (224 for the d2l zoo);
#: a larger value is a broken or hostile file, and would make each request allocate gigabytes.
SIZES = (8, 512)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class InputSpec:
    """How raw ``uint8`` images become a model's input: ``(x / 255 - mean) / std`` per channel, after
    ``resize`` ``"pad"`` (zero-pad symmetrically, LeNet-5's 28→32) or ``"resize"`` (bilinear) to ``size``.
    NNDL's ``Normalize(127.5, 127.5)`` on 0..255 pixels is ``mean = std = 0.5`` (its quirk, after
    ``ToTensor``, ``127.5``). ``digit_width`` (pixels, 0 = off) first stretches each image horizontally
    so that its ink is that wide, as Ciresan et al. 2012 preprocess their committee's inputs."""

    channels: int = 1
    size: int = 32
    resize: str = "pad"
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    digit_width: int = 0

    def to_dict(self) -> dict:
        """A JSON- and checkpoint-safe dict (lists, not tuples)."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, spec, source="checkpoint", field: str = "input_spec") -> "InputSpec":
        """Rebuild from :meth:`to_dict` output, checked: ``channels`` 1 or 3, ``size`` in :data:`SIZES`,
        ``resize`` pad|resize, ``mean``/``std`` ``channels`` finite numbers with ``std > 0``, an optional
        ``digit_width``; else a one-line :class:`CheckpointError` naming ``source`` and ``field.key``."""

        def bad(key: str | None, what: str) -> CheckpointError:
            return CheckpointError(f"{source}: field {field + ('.' + key if key else '')!r} {what}")

        if not isinstance(spec, dict):
            raise bad(None, f"must be a dict, got {type(spec).__name__}")
        for key in ("channels", "size", "resize", "mean", "std"):
            if key not in spec:
                raise bad(key, "is missing")
        ch, size, width = spec["channels"], spec["size"], spec.get("digit_width", 0)
        if not _is_int(ch) or ch not in (1, 3):
            raise bad("channels", f"must be 1 or 3, got {ch!r}")
        lo, hi = SIZES
        if not _is_int(size) or not lo <= size <= hi:
            raise bad("size", f"must be an integer from {lo} to {hi} pixels, got {size!r}")
        if spec["resize"] not in ("pad", "resize"):
            raise bad("resize", f"must be 'pad' or 'resize', got {spec['resize']!r}")
        for key in ("mean", "std"):
            vals = spec[key]
            if not isinstance(vals, (list, tuple)) or len(vals) != ch:
                raise bad(key, f"must list {ch} number(s), one per channel, got {vals!r}")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals):
                raise bad(key, f"must hold finite numbers, got {vals!r}")
        if not all(v > 0 for v in spec["std"]):
            raise bad("std", f"must be positive, got {spec['std']!r}")
        if not _is_int(width) or not 0 <= width <= hi:
            raise bad("digit_width", f"must be 0 (off) or a whole number of pixels up to {hi}, got {width!r}")
        mean, std = tuple(map(float, spec["mean"])), tuple(map(float, spec["std"]))
        return cls(channels=ch, size=size, resize=spec["resize"], mean=mean, std=std, digit_width=width)
