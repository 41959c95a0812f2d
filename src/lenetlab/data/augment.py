"""Train-time augmentation of whole float batches ``[N, C, H, W]``: LeCun et al. 1998's affine distortions
and Simard et al. 2003's elastic ones, as one ``affine_grid`` + ``grid_sample`` on the batch's device, drawn
from that device's global generator (saved in ``last.pt``: a resumed run draws the same); the border
replicates. ``build_augment("affine+elastic", rotate=10)(xb)`` distorts a batch."""

import math
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from lenetlab.errors import ConfigError

__all__ = ["PRESETS", "Augment", "Augmenter", "build_augment"]


@dataclass(frozen=True)
class Augment:
    """Distortion ranges, each sampled uniformly per image (0: off): ``shift`` (fraction of the side),
    ``rotate`` and ``shear`` (degrees), ``scale`` (0.1 → ×0.9..1.1), ``squeeze`` (×(1-q) one way, ×1/(1-q) the
    other); the elastic field, uniform in [-1, 1], is smoothed by a Gaussian of ``elastic_sigma`` pixels and
    scaled by ``elastic_alpha`` pixels; ``p``: the probability that an image is distorted at all."""

    shift: float = 0.0
    rotate: float = 0.0
    scale: float = 0.0
    squeeze: float = 0.0
    shear: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 4.0
    p: float = 1.0

    @property
    def affine(self) -> bool:
        """Whether any affine distortion is on."""
        return any((self.shift, self.rotate, self.scale, self.squeeze, self.shear))

    @property
    def elastic(self) -> bool:
        """Whether elastic distortion is on."""
        return self.elastic_alpha > 0

    @property
    def enabled(self) -> bool:
        """Whether this config changes anything."""
        return self.p > 0 and (self.affine or self.elastic)


_AFFINE = Augment(shift=0.08, rotate=10.0, scale=0.1, squeeze=0.1, shear=10.0)  # the 1998 paper's few pixels, ~10 %
_ELASTIC = {"elastic_alpha": 34.0, "elastic_sigma": 4.0}  # Simard's, for 28-pixel digits
#: Named presets for ``RunConfig.augment``; ``augment_kwargs`` override single fields.
PRESETS: dict[str, Augment] = {
    "none": Augment(),
    "affine": _AFFINE,
    "elastic": Augment(**_ELASTIC),
    "affine+elastic": replace(_AFFINE, **_ELASTIC),
}


@dataclass(frozen=True)
class Augmenter:
    """Callable applying :class:`Augment` distortions to float batches ``[N, C, H, W]``."""

    config: Augment

    def _theta(self, n: int, h: int, w: int, device, dtype) -> torch.Tensor:
        """Per-image affine maps ``[n, 2, 3]`` from output to input in normalised coordinates: the inverse
        of rotation · shear · scale in pixels, conjugated by ``diag(w, h)`` so that H != W works."""
        c = self.config
        u = lambda: torch.rand(n, device=device, dtype=dtype) * 2 - 1  # noqa: E731 - one draw of n values in [-1, 1]
        ang = torch.deg2rad(u() * c.rotate)
        shear = torch.tan(torch.deg2rad(u() * c.shear))
        s, q = 1.0 + u() * c.scale, 1.0 + u() * c.squeeze
        sx, sy, cos, sin, r = s * q, s / q, torch.cos(ang), torch.sin(ang), h / w
        row0 = [(cos + shear * sin) / sx, (sin - shear * cos) / sx * r, -u() * c.shift * 2.0]
        row1 = [-sin / sy / r, cos / sy, -u() * c.shift * 2.0]
        return torch.stack(row0 + row1, 1).view(n, 2, 3)

    def _elastic(self, n: int, h: int, w: int, device, dtype) -> torch.Tensor:
        """Smoothed displacement field ``[n, h, w, 2]`` in normalised units (Simard et al. 2003)."""
        c = self.config
        field = torch.rand(n * 2, 1, h, w, device=device, dtype=dtype) * 2 - 1
        r = max(1, math.ceil(3.0 * c.elastic_sigma))
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, device=device, dtype=dtype) / c.elastic_sigma) ** 2)
        k = k / k.sum()
        field = F.conv2d(F.pad(field, (r, r, 0, 0)), k.view(1, 1, 1, -1))  # separable Gaussian, zero padded
        field = F.conv2d(F.pad(field, (0, 0, r, r)), k.view(1, 1, -1, 1))
        scale = torch.tensor([2.0 / w, 2.0 / h], device=device, dtype=dtype).view(1, 2, 1, 1)
        return (field.view(n, 2, h, w) * c.elastic_alpha * scale).permute(0, 2, 3, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """A float batch ``x`` ``[N, C, H, W]`` distorted (``x`` itself when the config is disabled)."""
        c = self.config
        if not c.enabled or x.shape[0] == 0:
            return x
        if x.dim() != 4 or not x.is_floating_point():
            raise ValueError(f"augmentation expects a float batch [N, C, H, W], got {x.dtype} {list(x.shape)}")
        n, _, h, w = x.shape
        dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        if c.affine:
            theta = self._theta(n, h, w, x.device, dtype)
        else:
            theta = torch.eye(2, 3, device=x.device, dtype=dtype).expand(n, 2, 3)
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        if c.elastic:
            grid = grid + self._elastic(n, h, w, x.device, dtype)
        xf = x.to(dtype).contiguous()
        out = F.grid_sample(xf, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if c.p < 1.0:
            keep = torch.rand(n, device=x.device, dtype=dtype) >= c.p
            out = torch.where(keep.view(n, 1, 1, 1), xf, out)
        return out.to(x.dtype)


def build_augment(name: str | Augment | None = "none", **overrides) -> Augmenter | None:
    """The augmenter of a preset of :data:`PRESETS` (or an :class:`Augment`) with single fields overridden
    (``rotate=15``), or None when it changes nothing; bad values: ConfigError."""
    name = "none" if name is None else name
    if not isinstance(name, Augment) and name not in PRESETS:
        raise ConfigError(f"field 'augment' must be one of {', '.join(PRESETS)} (got {name!r})")
    base = name if isinstance(name, Augment) else PRESETS[name]
    known = {f.name for f in fields(Augment)}
    for key, value in overrides.items():
        if key not in known:
            raise ConfigError(f"field 'augment_kwargs': unknown key {key!r} (known: {', '.join(sorted(known))})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"field 'augment_kwargs': {key!r} must be a non-negative number (got {value!r})")
    cfg = replace(base, **{k: float(v) for k, v in overrides.items()})
    if cfg.p > 1:
        raise ConfigError(f"field 'augment_kwargs': 'p' must be in [0, 1] (got {cfg.p})")
    if cfg.squeeze >= 1 or cfg.scale >= 1:
        raise ConfigError("field 'augment_kwargs': 'scale' and 'squeeze' must be below 1")
    if cfg.elastic and cfg.elastic_sigma <= 0:
        raise ConfigError("field 'augment_kwargs': 'elastic_sigma' must be > 0")
    return Augmenter(cfg) if cfg.enabled else None


#: Test-time augmentation: the image itself and four one-pixel shifts (right, left, down, up).
TTA_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def tta_views(x: torch.Tensor, shifts=TTA_SHIFTS) -> list[torch.Tensor]:
    """Copies of a batch ``x`` ``[N, C, H, W]`` shifted by each ``(dx, dy)`` of ``shifts``, the edge repeated."""

    out = []
    h, w = x.shape[-2:]
    for dx, dy in shifts:
        if dx == 0 and dy == 0:
            out.append(x)
            continue
        px = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))  # left, right, top, bottom
        padded = F.pad(x.float(), px, mode="replicate").to(x.dtype)
        top, left = max(-dy, 0), max(-dx, 0)
        out.append(padded[..., top : top + h, left : left + w].contiguous())
    return out
