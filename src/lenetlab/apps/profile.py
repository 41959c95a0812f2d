"""``lenet profile MODEL``: per-layer output shapes, parameters, MACs and FLOPs of a registered model."""

from lenetlab.models.profile import format_profile, profile_model
from lenetlab.textfmt import Output


def run_profile(name: str, input_size=None, num_classes: int = 10) -> Output:
    """:func:`~lenetlab.models.profile.profile_model` as a table (JSON: the profile's dict)."""
    p = profile_model(name, input_size=input_size, num_classes=num_classes)
    return Output(p.to_dict(), format_profile(p))
