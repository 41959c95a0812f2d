"""Stochastic diagonal Levenberg-Marquardt (SDLM), the optimiser of LeCun et al. 1998, appendix C
(docs/training.md): each weight ``w_k`` steps by ``eta / (mu + h_kk)``, ``h_kk`` the Gauss-Newton
estimate of the diagonal Hessian of the per-example loss, re-estimated before each pass.

:func:`gauss_newton_diagonal` computes ``h_kk`` with one "squared shadow" backward pass (Becker &
LeCun 1989): the model runs again with squared parameters and inputs, each squashing function
replaced by one returning its activation squared whose backward multiplies by ``f'(a)^2``, and the
output's exact second derivative is back-propagated. That is exact only through layers linear in
their input and weights (:data:`BILINEAR`), squashing functions and reshapes (:func:`check_supported`).
"""

import torch
import torch.nn as nn
from torch.func import functional_call

from lenetlab.errors import ConfigError
from lenetlab.models.lenet1998 import EuclideanRBF, PartialConv2d, ScaledTanh, Subsampling
from lenetlab.models.trace import trace

#: Layers linear in their input and in their weights: the squared shadow pass is exact through them.
BILINEAR = (nn.Conv2d, nn.Linear, PartialConv2d, Subsampling)
#: Elementwise squashing functions and their derivatives ``f'(a)``.
SQUASH = {
    ScaledTanh: lambda a: ScaledTanh.A * ScaledTanh.S * (1 - torch.tanh(ScaledTanh.S * a) ** 2),
    nn.Tanh: lambda a: 1 - torch.tanh(a) ** 2,
    nn.Sigmoid: lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a)),
    nn.ReLU: lambda a: (a > 0).to(a.dtype),
}
#: Modules that only reshape (coefficients 0 and 1, so their square is themselves).
RESHAPE = (nn.Flatten, nn.Identity)


class SDLM(torch.optim.Optimizer):
    """``w -= lr * batch_size / (mu + h) * grad`` per element: ``lr`` is the paper's global ``eta``, ``mu``
    the damping, ``batch_size`` the examples the loss averages (a batch step moves as far as that many
    per-example steps). ``h`` (:meth:`set_curvature`) lives in the optimiser's state, so checkpoints keep it."""

    def __init__(self, params, lr: float = 5e-4, mu: float = 0.02, batch_size: int = 1) -> None:
        if lr < 0 or mu <= 0 or batch_size < 1:
            raise ValueError(f"sdlm needs lr >= 0, mu > 0 and batch_size >= 1 (got {lr}, {mu}, {batch_size})")
        super().__init__(params, {"lr": lr, "mu": mu, "batch_size": batch_size})

    @torch.no_grad()
    def set_curvature(self, h: dict) -> None:
        """Store ``h[p]`` (the diagonal Hessian estimate, shaped like ``p``) for every parameter ``p``."""
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["h"] = h[p].detach().to(p.device, p.dtype).clone()

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient (``closure`` as in torch.optim)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            scale = group["lr"] * group["batch_size"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                h = self.state[p].get("h")
                denom = group["mu"] + (h if h is not None else torch.zeros_like(p))
                p.addcdiv_(p.grad, denom, value=-scale)
        return loss


def check_supported(model: nn.Module, name: str = "the model") -> None:
    """A one-line ConfigError unless every leaf module of ``model`` is :data:`BILINEAR`, in :data:`SQUASH`,
    in :data:`RESHAPE` or an :class:`EuclideanRBF` output."""
    allowed = BILINEAR + tuple(SQUASH) + RESHAPE + (EuclideanRBF,)
    bad = sorted({type(m).__name__ for m in model.modules() if not list(m.children()) and not isinstance(m, allowed)})
    if bad:
        raise ConfigError(
            f"field 'optimizer': sdlm's second-derivative pass does not support {name}'s "
            f"{', '.join(bad)} (it needs convolution/linear layers, trainable subsampling and "
            f"squashing functions, as in lenet5-1998)"
        )


def rbf_map_curvature(x: torch.Tensor, centres: torch.Tensor, j: float) -> torch.Tensor:
    """Exact ``d2E/dx_j^2`` ``[N, F]`` of LeNet1998's MAP criterion at the RBF inputs ``x`` ``[N, F]``
    (centres ``[C, F]``): ``2 q + 4 (sum_i p_i d_ij^2 - (sum_i p_i d_ij)^2)`` with ``d_ij = x_j - w_ij``,
    ``p_i = e^-y_i / Z``, ``q = e^-j / Z``; non-negative and independent of the target."""
    d = x.unsqueeze(1) - centres  # [N, C, F]
    y = d.pow(2).sum(-1)  # [N, C]
    logits = torch.cat([x.new_full((x.shape[0], 1), -j), -y], 1)
    probs = torch.softmax(logits, 1)
    q, p = probs[:, :1], probs[:, 1:].unsqueeze(-1)  # [N, 1], [N, C, 1]
    m1, m2 = (p * d).sum(1), (p * d * d).sum(1)  # [N, F]
    return 2 * q + 4 * (m2 - m1 * m1).clamp_min(0)


class _Squared(torch.autograd.Function):
    """Forward: the real activation squared ``f(a)^2``; backward: times ``f'(a)^2`` (``shadow`` carries the graph)."""

    @staticmethod
    def forward(ctx, shadow, fa, fprime):
        ctx.save_for_backward(fprime)
        return fa * fa

    @staticmethod
    def backward(ctx, grad):
        (fprime,) = ctx.saved_tensors
        return grad * fprime * fprime, None, None


def gauss_newton_diagonal(model: nn.Module, x: torch.Tensor, output_curvature=None) -> dict:
    """The Gauss-Newton diagonal Hessian ``{parameter: h}`` (shaped like it, non-negative) of the
    per-example loss averaged over the batch ``x`` ``[N, ...]``: the MAP criterion for an
    :class:`EuclideanRBF` output, else cross-entropy. ``output_curvature(outputs) -> d2E/d(outputs)^2``
    (both ``[N, K]``) replaces the loss's."""
    check_supported(model)
    rbf = [m for m in model.modules() if isinstance(m, EuclideanRBF)]
    head = rbf[0] if rbf else None
    squash = [(n, m) for n, m in model.named_modules() if type(m) in SQUASH]
    was_training = model.training
    model.eval()  # no module here behaves differently, but a caller's hooks may
    try:
        with trace(squash + ([("head", head)] if head is not None else []), keep_inputs=True) as calls, torch.no_grad():
            out = model(x)
            if output_curvature is not None:
                head = None
                d2 = output_curvature(out)
            elif head is not None:
                feats = [c.inputs[0] for c in calls if c.module is head][-1]
                d2 = rbf_map_curvature(feats, head.weight, float(getattr(model, "j", 0.1)))
            else:
                p = torch.softmax(out.float(), 1)
                d2 = p * (1 - p)
        # the shadow pass: squared parameters, squared inputs, squashing -> _Squared
        order = iter([(c.inputs[0].detach(), c.output.detach()) for c in calls if type(c.module) in SQUASH])
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        leaves = {n: p.detach().pow(2).requires_grad_() for n, p in trainable.items()}

        def shadow(module, inputs, output):
            a, fa = next(order)
            return _Squared.apply(inputs[0], fa, SQUASH[type(module)](a))

        handles = [m.register_forward_hook(shadow) for _, m in squash]
        try:
            with trace([("head", head)] if head is not None else [], keep_inputs=True) as head_calls:
                shadow_out = functional_call(model, leaves, (x.detach().pow(2),))
        finally:
            for h in handles:
                h.remove()
        end = head_calls[-1].inputs[0] if head is not None else shadow_out
        grads = torch.autograd.grad(end, list(leaves.values()), grad_outputs=d2.to(end.dtype), allow_unused=True)
    finally:
        model.train(was_training)
    n = x.shape[0]
    return {p: (g / n if g is not None else torch.zeros_like(p)) for p, g in zip(trainable.values(), grads)}
