"""Width normalisation and the input spec (lenetlab.data.transforms)."""

from __future__ import annotations

import pytest
import torch

from lenetlab.data.transforms import InputSpec, normalize_width, prepare


def _ink_columns(x: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last column holding a pixel above ``threshold``, per image of ``x`` ``[N, C, H, W]``
    (half intensity: the bars' hard edges, blurred by the bilinear resampling, cross it where the
    edge of the scaled bar lies)."""
    cols = (x > threshold).any(2).any(1)
    pos = torch.arange(x.shape[-1])
    return torch.where(cols, pos, 99).amin(1), torch.where(cols, pos, -1).amax(1)


def _bar(width: int, left: int, size: int = 28) -> torch.Tensor:
    """A white bar ``width`` columns wide starting at column ``left``, rows 4-23, as ``[1, 1, size, size]``."""
    x = torch.zeros(1, 1, size, size)
    x[..., 4:24, left : left + width] = 1.0
    return x


@pytest.mark.parametrize("target", [10, 14, 20])
@pytest.mark.parametrize("width,left", [(4, 2), (8, 10), (20, 4)])
def test_normalize_width_gives_the_ink_the_asked_width_centred(width, left, target):
    out = normalize_width(_bar(width, left), target)
    first, last = _ink_columns(out)
    assert abs(int(last - first + 1) - target) <= 1
    assert abs(float(first + last) / 2 - 13.5) <= 0.5  # centred in the 28-pixel frame
    assert torch.equal(_ink_columns(out.transpose(2, 3))[0], _ink_columns(_bar(width, left).transpose(2, 3))[0])


def test_normalize_width_treats_each_image_on_its_own_and_keeps_blank_ones():
    batch = torch.cat([_bar(4, 2), torch.zeros(1, 1, 28, 28), _bar(20, 4)])
    out = normalize_width(batch, 12)
    assert torch.equal(out[1], batch[1])  # nothing to measure: unchanged
    assert torch.allclose(out[0], normalize_width(batch[:1], 12)[0]) and torch.allclose(
        out[2], normalize_width(batch[2:], 12)[0]
    )
    first, last = _ink_columns(out[[0, 2]])
    assert ((last - first + 1 - 12).abs() <= 1).all()
    assert normalize_width(torch.zeros(0, 1, 28, 28), 12).shape == (0, 1, 28, 28)


def test_prepare_normalises_the_width_before_padding_and_the_spec_round_trips():
    img = (_bar(6, 3) * 255).to(torch.uint8)
    spec = InputSpec(size=32, resize="pad", mean=(0.0,), std=(1.0,), digit_width=16)
    first, last = _ink_columns(prepare(img, spec))
    assert abs(int(last - first + 1) - 16) <= 1 and abs(float(first + last) / 2 - 15.5) <= 0.5  # 28 -> 32: +2
    assert InputSpec.from_dict(spec.to_dict()) == spec
    old = spec.to_dict()
    del old["digit_width"]  # a checkpoint written before the field existed
    assert InputSpec.from_dict(old).digit_width == 0
    assert torch.equal(
        prepare(img, InputSpec(mean=(0.0,), std=(1.0,))),
        prepare(img, InputSpec(mean=(0.0,), std=(1.0,), digit_width=0)),
    )
