"""Batch normalisation with ``torch.nn.functional.batch_norm``'s signature, from tensor ops (autograd)."""

from __future__ import annotations

import torch

__all__ = ["batch_norm"]


def batch_norm(
    input: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Batch normalisation like ``torch.nn.functional.batch_norm`` over ``[N, C, *]`` inputs.

    Training: normalise with the batch mean and biased variance over all dims but C, and update
    ``running_mean``/``running_var`` (``[C]``) in place as ``(1 - momentum) * running + momentum *
    batch`` with the *unbiased* variance. Evaluation: normalise with the running statistics.
    ``weight``/``bias`` (``[C]``) scale and shift. Returns a tensor shaped like ``input``.
    """
    if not isinstance(input, torch.Tensor) or input.dim() < 2:
        raise ValueError(
            f"batch_norm: input must be [N, C, *], got "
            f"{tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__}"
        )
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != c:
            raise ValueError(f"batch_norm: {name} must have {c} elements, got shape {tuple(t.shape)}")
    if eps <= 0:
        raise ValueError(f"batch_norm: eps must be positive, got {eps}")
    shape = (1, c) + (1,) * (input.dim() - 2)
    if training:
        dims = [0] + list(range(2, input.dim()))
        count = input.numel() // c
        if count <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input {tuple(input.shape)}"
            )
        mean = input.mean(dim=dims)
        var = input.var(dim=dims, unbiased=False)
        if running_mean is not None or running_var is not None:
            with torch.no_grad():
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(mean.detach().to(running_mean.dtype), alpha=momentum)
                if running_var is not None:
                    unbiased = var.detach() * (count / (count - 1))
                    running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are required when training=False")
        mean, var = running_mean, running_var
    out = (input - mean.view(shape)) * torch.rsqrt(var.view(shape) + eps)
    if weight is not None:
        out = out * weight.view(shape)
    if bias is not None:
        out = out + bias.view(shape)
    return out
