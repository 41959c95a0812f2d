"""Train-time augmentation on whole batches as tensors: random affine maps and elastic distortions.

The distortions LeCun et al. (1998) trained with — translations, scaling, squeezing, shearing —
plus rotation, and the elastic distortions of Simard, Steinkraus & Platt (2003): a random
displacement field (uniform in [-1, 1] per pixel) smoothed by a Gaussian of ``elastic_sigma``
pixels and scaled by ``elastic_alpha`` pixels. Everything is one ``affine_grid`` + one
``grid_sample`` on the prepared float batch ``[N, C, H, W]``, on whatever device it lives, with
random numbers from torch's global generator of the batch's device (the runner's RNG states are in
``last.pt``, so a resumed run draws the same distortions).

Pixels brought in from outside the image replicate the border (``padding_mode="border"``): the
border of a padded digit is background, whatever the normalisation made of background's value.

Usage (what the runner does; off by default, train batches only)::

    aug = build_augment("affine+elastic", rotate=10)   # None for "none"; global RNG
    xb = aug(xb)                                        # float [N, C, H, W] → same shape
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from lenetlab.errors import ConfigError

__all__ = ["PRESETS", "Augment", "Augmenter", "build_augment"]


@dataclass(frozen=True)
class Augment:
    """Distortion ranges; each is sampled uniformly per image, 0 turns that distortion off.

    ``shift``: max translation as a fraction of the image side; ``rotate``: max rotation (degrees);
    ``scale``: max relative change of size (0.1 → ×0.9..1.1); ``squeeze``: max anisotropic change
    (horizontal ×(1-q) with vertical ×1/(1-q), or the reverse); ``shear``: max horizontal shear
    (degrees); ``elastic_alpha``/``elastic_sigma``: Simard's elastic field strength and smoothness,
    in pixels of the input; ``p``: probability that an image is distorted at all.
    """

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


#: Named presets for ``RunConfig.augment``; ``augment_kwargs`` override single fields.
#: The affine ranges follow the 1998 paper's spirit (a few pixels, ~10 %); elastic is Simard's
#: alpha 34 / sigma 4 for 28-pixel digits.
PRESETS: dict[str, Augment] = {
    "none": Augment(),
    "affine": Augment(shift=0.08, rotate=10.0, scale=0.1, squeeze=0.1, shear=10.0),
    "elastic": Augment(elastic_alpha=34.0, elastic_sigma=4.0),
    "affine+elastic": Augment(
        shift=0.08, rotate=10.0, scale=0.1, squeeze=0.1, shear=10.0, elastic_alpha=34.0, elastic_sigma=4.0
    ),
}


def _gaussian_kernel(sigma: float, device, dtype) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


class Augmenter:
    """Callable applying :class:`Augment` distortions to float batches ``[N, C, H, W]``, with random
    numbers from torch's global generator of the batch's device (the runner saves its state in
    ``last.pt``, so a resumed run draws the same distortions)."""

    def __init__(self, config: Augment) -> None:
        self.config = config

    def __repr__(self) -> str:
        return f"Augmenter({self.config})"

    def _theta(self, n: int, h: int, w: int, device, dtype) -> torch.Tensor:
        """Per-image affine maps ``[n, 2, 3]`` from output to input in normalised coordinates."""
        c = self.config
        u = lambda: torch.rand(n, device=device, dtype=dtype) * 2 - 1  # noqa: E731 - one draw of n values in [-1, 1]
        ang = torch.deg2rad(u() * c.rotate)
        shear = torch.tan(torch.deg2rad(u() * c.shear))
        s = 1.0 + u() * c.scale
        q = 1.0 + u() * c.squeeze
        sx, sy = s * q, s / q
        cos, sin = torch.cos(ang), torch.sin(ang)
        # pixel-space linear map A = R · Shear · Scale (forward), applied through its inverse
        a11, a12 = cos * sx, (cos * shear - sin) * sy
        a21, a22 = sin * sx, (sin * shear + cos) * sy
        det = a11 * a22 - a12 * a21
        i11, i12, i21, i22 = a22 / det, -a12 / det, -a21 / det, a11 / det
        # normalised coords: x_n = x_pix / (w/2); conjugating by diag(w/2, h/2) handles H != W
        r = h / w
        theta = torch.zeros(n, 2, 3, device=device, dtype=dtype)
        theta[:, 0, 0], theta[:, 0, 1] = i11, i12 * r
        theta[:, 1, 0], theta[:, 1, 1] = i21 / r, i22
        theta[:, 0, 2] = -u() * c.shift * 2.0
        theta[:, 1, 2] = -u() * c.shift * 2.0
        return theta

    def _elastic(self, n: int, h: int, w: int, device, dtype) -> torch.Tensor:
        """Smoothed displacement field ``[n, h, w, 2]`` in normalised units (Simard et al. 2003)."""
        c = self.config
        field = torch.rand(n, 2, h, w, device=device, dtype=dtype) * 2 - 1
        k = _gaussian_kernel(c.elastic_sigma, device, dtype)
        r = k.numel() // 2
        field = field.reshape(n * 2, 1, h, w)
        field = F.conv2d(F.pad(field, (r, r, 0, 0), mode="constant"), k.view(1, 1, 1, -1))
        field = F.conv2d(F.pad(field, (0, 0, r, r), mode="constant"), k.view(1, 1, -1, 1))
        field = field.view(n, 2, h, w) * c.elastic_alpha
        scale = torch.tensor([2.0 / w, 2.0 / h], device=device, dtype=dtype).view(1, 2, 1, 1)
        return (field * scale).permute(0, 2, 3, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Distort a float batch ``x`` ``[N, C, H, W]``; returns a new tensor of the same shape.

        Labels are untouched (the runner keeps them). A disabled config returns ``x`` itself.
        """
        c = self.config
        if not c.enabled or x.shape[0] == 0:
            return x
        if x.dim() != 4 or not x.is_floating_point():
            raise ValueError(f"augmentation expects a float batch [N, C, H, W], got {x.dtype} {list(x.shape)}")
        n, _, h, w = x.shape
        dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        theta = (
            self._theta(n, h, w, x.device, dtype)
            if c.affine
            else torch.eye(2, 3, device=x.device, dtype=dtype).expand(n, 2, 3)
        )
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        if c.elastic:
            grid = grid + self._elastic(n, h, w, x.device, dtype)
        if c.p < 1.0:
            keep = torch.rand(n, device=x.device, dtype=dtype) >= c.p
            ident = F.affine_grid(
                torch.eye(2, 3, device=x.device, dtype=dtype).expand(n, 2, 3), [n, 1, h, w], align_corners=False
            )
            grid = torch.where(keep.view(n, 1, 1, 1), ident, grid)
        xf = x.to(dtype)
        out = F.grid_sample(xf.contiguous(), grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out.to(x.dtype)


def build_augment(name: str | Augment | None = "none", **overrides) -> Augmenter | None:
    """The train-time augmenter for ``RunConfig.augment``/``augment_kwargs``; None when it changes nothing.

    ``name`` is a preset (``none``, ``affine``, ``elastic``, ``affine+elastic``) or an
    :class:`Augment`; ``overrides`` set single fields (``rotate=15``, ``elastic_alpha=20``...).
    Returns a callable ``fn(x float [B, C, H, W]) -> float [B, C, H, W]`` drawing from torch's global
    RNG. Unknown presets or fields, and negative or out-of-range values, raise a one-line ConfigError.
    """
    if name is None:
        name = "none"
    if isinstance(name, Augment):
        base = name
    else:
        if name not in PRESETS:
            raise ConfigError(f"field 'augment' must be one of {', '.join(PRESETS)} (got {name!r})")
        base = PRESETS[name]
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
    """Shifted copies of a batch ``x`` ``[N, C, H, W]`` (any dtype), one per ``(dx, dy)`` in ``shifts``;
    the pixels uncovered at the border repeat the edge (so the background stays background).

    Averaging a model's probabilities over these views is test-time augmentation: the prediction
    no longer hinges on where exactly the object sits on the pixel grid.
    """
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
