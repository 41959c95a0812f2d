"""One training step (forward, loss, backward, clipping, optimiser step), used by the Runner, the recipe's
step timing, the benchmarks and the tests; one mixed-precision path: autocast and a GradScaler, both
``enabled=...``."""

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
    """One optimiser step of ``model`` on ``xb`` (float ``[B, C, H, W]``) and ``yb`` (int64 ``[B]``):
    ``loss_fn(outputs.float(), yb)`` under autocast to ``amp`` (None: off), backward through ``scaler``,
    gradient norm clipped to ``grad_clip`` (0: off). Returns ``(loss, outputs)``, detached, on the device.
    A one-example batch the model's batch norm refuses is a one-line ConfigError."""
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
