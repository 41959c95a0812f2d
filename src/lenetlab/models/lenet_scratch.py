"""``lenet5-scratch``: NNDL's LeNet-5 on the convolutions and pooling of :mod:`lenetlab.ops`, with ``lenet5``'s
state-dict keys, and state-dict converters checked key by key: :func:`torch_to_scratch` / :func:`scratch_to_torch`,
and :func:`to_loop_reference` / :func:`from_loop_reference` for :class:`lenetlab.ops.LoopLeNet`."""

from lenetlab import ops as scratch_ops
from lenetlab.errors import CheckpointError
from lenetlab.models.lenet import LeNet5
from lenetlab.models.registry import register_model

__all__ = ["LeNet5Scratch", "from_loop_reference", "scratch_to_torch", "to_loop_reference", "torch_to_scratch"]

# lenet5 / lenet5-scratch layer -> NNDL's Model_LeNet layer (pooling layers have no weights)
LOOP_NAMES = {"C1": "conv1", "C3": "conv3", "C5": "conv5", "F6": "linear6", "output": "linear7"}
CONV_LAYERS = ("C1", "C3", "C5")
KEYS = [f"{layer}.{p}" for layer in LOOP_NAMES for p in ("weight", "bias")]


@register_model(
    "lenet5-scratch",
    input_size=(1, 32, 32),
    description="lenet5 built from lenetlab.ops (im2col conv, hand-written pooling); same state dict",
)
class LeNet5Scratch(LeNet5):
    """LeNet-5 (NNDL) on the im2col operators: ``[N, in_channels, 32, 32] -> [N, num_classes]``."""

    ops = scratch_ops
    formula_name = None
    profile_notes = (
        "the im2col GEMM carries each conv bias as one more column against a row of ones, so the flop "
        "counter sees one bias multiply-add per conv output: C1 4,704 + C3 1,600 + C5 120 = 6,424 MACs "
        "more than lenet5's 416,520 at 1x32x32 (422,944); the arithmetic is otherwise the same.",
    )


def _check(state: dict, what: str) -> None:
    missing, extra = [k for k in KEYS if k not in state], sorted(set(state) - set(KEYS))
    if missing or extra:
        raise CheckpointError(
            f"{what}: not a LeNet-5 state dict (missing {missing or 'none'}, unexpected {extra or 'none'})"
        )


def _renamed(state: dict, names: dict, bias_shape: tuple[int, ...], what: str) -> dict:
    """``state`` with its layers renamed by ``names`` and convolution biases reshaped; tensors cloned."""
    out = {}
    for key, value in state.items():
        layer, param = key.split(".", 1)
        if layer not in names:
            raise CheckpointError(f"{what}: unexpected key {key!r}")
        conv_bias = param == "bias" and (layer in CONV_LAYERS or names[layer] in CONV_LAYERS)
        out[f"{names[layer]}.{param}"] = value.detach().clone().reshape(bias_shape if conv_bias else value.shape)
    return out


def torch_to_scratch(state: dict) -> dict:
    """A ``lenet5`` state dict as a ``lenet5-scratch`` one (same keys and shapes; tensors cloned)."""
    _check(state, "lenet5 state dict")
    return {k: v.detach().clone() for k, v in state.items()}


def scratch_to_torch(state: dict) -> dict:
    """A ``lenet5-scratch`` state dict as a ``lenet5`` one (same keys and shapes; tensors cloned)."""
    _check(state, "lenet5-scratch state dict")
    return {k: v.detach().clone() for k, v in state.items()}


def to_loop_reference(state: dict) -> dict:
    """A ``lenet5``/``lenet5-scratch`` state dict for :class:`lenetlab.ops.LoopLeNet`: ``C1 -> conv1``, ...,
    ``output -> linear7``, convolution biases ``[C] -> [C, 1]``."""
    _check(state, "lenet5 state dict")
    return _renamed(state, LOOP_NAMES, (-1, 1), "lenet5 state dict")


def from_loop_reference(state: dict) -> dict:
    """A :class:`lenetlab.ops.LoopLeNet` state dict as a ``lenet5``/``lenet5-scratch`` one (the inverse of
    :func:`to_loop_reference`)."""
    out = _renamed(state, {v: k for k, v in LOOP_NAMES.items()}, (-1,), "loop LeNet state dict")
    _check(out, "loop LeNet state dict")
    return out
