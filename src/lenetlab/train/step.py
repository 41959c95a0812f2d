"""One training step: forward, loss, backward, gradient clipping and the optimiser step.

Used by the :class:`~lenetlab.train.Runner`, the recipe's step timing, the benchmarks and the tests.
Mixed precision has one path, as in nanoGPT: ``torch.autocast(..., enabled=...)`` and a
``torch.amp.GradScaler(enabled=...)`` that is a no-op unless float16 runs on CUDA (:func:`make_scaler`).
"""

from __future__ import annotations

import torch

from lenetlab.errors import ConfigError, first_line


def make_scaler(device: torch.device, amp: torch.dtype | None) -> torch.amp.GradScaler:
    """The loss scaler of a run: enabled only for float16 autocast on CUDA (bfloat16 and float32 need none)."""
    return torch.amp.GradScaler("cuda", enabled=amp is torch.float16 and torch.device(device).type == "cuda")


def train_step(
    model,
    optimizer,
    xb: torch.Tensor,
    yb: torch.Tensor,
    loss_fn,
    scaler: torch.amp.GradScaler,
    *,
    amp: torch.dtype | None = None,
    grad_clip: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step of ``model`` on the batch ``xb`` (float ``[B, C, H, W]``, on the model's device)
    with targets ``yb`` (int64 ``[B]``): ``loss_fn(outputs.float(), yb)`` under autocast to ``amp`` (None:
    full precision), backward through ``scaler``, gradients clipped to norm ``grad_clip`` (0: no clipping).

    Returns ``(loss, outputs)``, both detached and still on the device (no host synchronisation). A
    batch of one example that the model's batch norm cannot take is a one-line ConfigError (the loader
    never makes one unless the batch size or the training split is one).
    """
    try:
        with torch.autocast(xb.device.type, dtype=amp, enabled=amp is not None):
            out = model(xb)
            loss = loss_fn(out.float(), yb)
    except ValueError as e:
        if xb.shape[0] != 1:
            raise
        raise ConfigError(
            f"field 'batch_size': a batch of one example cannot train this model ({first_line(e, 100)}); "
            f"train in batches of 2 or more, on 2 or more images"
        ) from None
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), out.detach()
