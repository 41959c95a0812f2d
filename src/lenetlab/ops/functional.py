"""Fast from-scratch operators with ``torch.nn.functional`` signatures, from tensor views and matrix multiplies
only (no torch convolution or pooling kernel): convolution is im2col + one GEMM with a hand-written backward,
pooling "shift and add" over the ``kh*kw`` strided views (``docs/operators.md``); batch normalisation is plain
tensor arithmetic, differentiated by autograd."""

import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["avg_pool2d", "batch_norm", "conv2d", "max_pool2d", "pool_output_size"]


def _pair(value, name: str, minimum: int | None = None) -> tuple[int, int]:
    """``value`` (an int or a pair of ints) as a pair; ``ValueError`` naming ``name`` if it is not one,
    or if it is below ``minimum``."""
    pair = (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if minimum is not None and min(pair) < minimum:
        raise ValueError(f"{name} must be {'positive' if minimum else 'non-negative'}, got {pair}")
    return pair


def _batched(input: torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    """Accept ``[N, C, H, W]`` or unbatched ``[C, H, W]``; return the 4-D tensor and whether it was 3-D."""
    if not isinstance(input, torch.Tensor) or input.dim() not in (3, 4):
        shape = tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__
        raise ValueError(f"{name}: input must be [N, C, H, W] or [C, H, W], got {shape}")
    return (input.unsqueeze(0), True) if input.dim() == 3 else (input, False)


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """Output length of a pooling window along one dimension, with PyTorch's ceil-mode rule (the last
    window must still start inside the input or its left padding)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


# ----------------------------------------------------------------------------- convolution
def _im2col(xp: torch.Tensor, kh: int, kw: int, stride, dilation, groups: int, ones_row: bool):
    """``(cols, Ho, Wo)``: the columns ``[groups, C/groups*kh*kw (+1), N*Ho*Wo]`` (rows ordered c, i, j) of
    padded ``xp`` ``[N, C, H, W]``, with ``ones_row`` a last row of ones against the bias column."""
    (sh, sw), (dh, dw) = stride, dilation
    # unfold takes a window of the *dilated* extent, then we keep every dilation-th element: both views.
    v = xp.unfold(2, dh * (kh - 1) + 1, sh).unfold(3, dw * (kw - 1) + 1, sw)[..., ::dh, ::dw]
    n, c, ho, wo = v.shape[:4]
    cg = c // groups
    rows = cg * kh * kw
    cols = xp.new_empty(groups, rows + ones_row, n * ho * wo)
    # the single copy of im2col: every receptive field, written as one column
    fields = v.permute(1, 4, 5, 0, 2, 3).view(groups, cg, kh, kw, n, ho, wo)
    cols[:, :rows].view(groups, cg, kh, kw, n, ho, wo).copy_(fields)
    if ones_row:
        cols[:, rows].fill_(1)
    return cols, ho, wo


class _Conv2dIm2col(torch.autograd.Function):
    """im2col convolution with a hand-written backward (GEMMs + col2im)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, pads, dilation, groups):
        n, c, h, w = x.shape
        o, cg, kh, kw = weight.shape
        pl, pr, pt, pb = pads
        xp = F.pad(x, (pl, pr, pt, pb)) if any(pads) else x
        has_bias = bias is not None
        cols, ho, wo = _im2col(xp, kh, kw, stride, dilation, groups, has_bias)
        g, og = groups, o // groups
        w_g = weight.reshape(g, og, cg * kh * kw)
        if has_bias:
            w_g = torch.cat([w_g, bias.view(g, og, 1)], dim=2)  # [W | b] against [cols; 1]
        out = torch.bmm(w_g, cols)  # the one matrix multiply: [G, O/G, K] @ [G, K, N*Ho*Wo]
        ctx.save_for_backward(cols, weight)
        ctx.geometry = (n, c, h, w, ho, wo, xp.shape[2], xp.shape[3], stride, pads, dilation, groups, has_bias)
        # [O, N, Ho, Wo] in memory, exposed as [N, O, Ho, Wo]; a permuted view avoids another copy.
        return out.view(o, n, ho, wo).permute(1, 0, 2, 3)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        cols, weight = ctx.saved_tensors
        n, c, h, w, ho, wo, hp, wp, (sh, sw), (pl, pr, pt, pb), (dh, dw), g, has_bias = ctx.geometry
        o, cg, kh, kw = weight.shape
        og, rows = o // g, cg * kh * kw
        g2 = grad_out.permute(1, 0, 2, 3).reshape(g, og, n * ho * wo)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[1] or (has_bias and ctx.needs_input_grad[2]):
            # [dW | db] = dY @ [cols; 1]^T: the bias gradient is the last column of the same GEMM
            gw = torch.bmm(g2, cols.transpose(1, 2))
            grad_w = gw[:, :, :rows].reshape(o, cg, kh, kw) if ctx.needs_input_grad[1] else None
            grad_b = gw[:, :, rows].reshape(o) if has_bias and ctx.needs_input_grad[2] else None
        if ctx.needs_input_grad[0]:
            # grad of the columns is W^T @ dY; col2im then adds the slice of each kernel offset (i, j)
            # back at its shift. Done one kernel row i at a time ([kw*C/G, N*Ho*Wo] per GEMM), so the
            # column gradient never exists whole: ~25% faster than one big GEMM + col2im here.
            cg_ = c // g
            w_rows = weight.view(g, og, cg_, kh, kw).permute(3, 0, 4, 2, 1).reshape(kh, g, kw * cg_, og)
            gxp = g2.new_zeros(c, n, hp, wp)
            for i in range(kh):
                grow = torch.bmm(w_rows[i], g2).view(g, kw, cg_, n, ho, wo)
                for j in range(kw):
                    # 4-D adds per group: the same add on a 5-D [G, C/G, ...] view runs ~3x slower
                    for gi in range(g):
                        gxp[
                            gi * cg_ : (gi + 1) * cg_,
                            :,
                            i * dh : i * dh + sh * (ho - 1) + 1 : sh,
                            j * dw : j * dw + sw * (wo - 1) + 1 : sw,
                        ] += grow[gi, j]
            grad_x = gxp[:, :, pt : pt + h, pl : pl + w].permute(1, 0, 2, 3)
        return grad_x, grad_w, grad_b, None, None, None, None


def _conv_pads(padding, stride, dilation, kh: int, kw: int) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` zero padding of ``padding``: an int, a pair, ``"valid"`` or ``"same"``."""
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        if stride != (1, 1):
            raise ValueError("conv2d: padding='same' is only supported with stride 1")
        th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
        return tw // 2, tw - tw // 2, th // 2, th - th // 2  # torch puts the odd pixel on the bottom/right
    if isinstance(padding, str):
        raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    ph, pw = _pair(padding, "conv2d: padding", minimum=0)
    return pw, pw, ph, ph


def conv2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> torch.Tensor:
    """2-D cross-correlation like ``torch.nn.functional.conv2d``, by im2col and one matrix multiply:
    ``input`` ``[N, C, H, W]`` (or ``[C, H, W]``), ``weight`` ``[O, C/groups, kh, kw]``, ``bias`` ``[O]`` ->
    ``[N, O, Ho, Wo]``. Differentiable once; invalid settings raise ``ValueError``.
    """
    x, unbatched = _batched(input, "conv2d")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"conv2d: weight must be a 4-D tensor [O, C/groups, kh, kw], got {shape}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    stride = _pair(stride, "conv2d: stride", minimum=1)
    dilation = _pair(dilation, "conv2d: dilation", minimum=1)
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if c % groups or o % groups:
        raise ValueError(
            f"conv2d: in_channels ({c}) and out_channels ({o}) must both be divisible by groups ({groups})"
        )
    if cg * groups != c:
        raise ValueError(
            f"conv2d: input has {c} channels but weight {tuple(weight.shape)} with groups={groups} "
            f"expects {cg * groups}"
        )
    if min(kh, kw) < 1:
        raise ValueError(f"conv2d: kernel size must be positive, got {(kh, kw)}")
    dtypes = [x.dtype, weight.dtype] + ([] if bias is None else [bias.dtype])
    if len(set(dtypes)) > 1:
        raise ValueError(f"conv2d: input, weight and bias must share a dtype, got {', '.join(map(str, dtypes))}")
    if not x.is_floating_point():
        raise ValueError(f"conv2d: input must be floating point, got {x.dtype}")
    if bias is not None and tuple(bias.shape) != (o,):
        raise ValueError(f"conv2d: bias must have shape ({o},), got {tuple(bias.shape)}")
    pads = _conv_pads(padding, stride, dilation, kh, kw)
    padded = (h + pads[2] + pads[3], w + pads[0] + pads[1])
    if padded[0] < dilation[0] * (kh - 1) + 1 or padded[1] < dilation[1] * (kw - 1) + 1:
        raise ValueError(f"conv2d: kernel {(kh, kw)} (dilation {dilation}) is larger than the padded input {padded}")
    out = _Conv2dIm2col.apply(x, weight, bias, stride, pads, dilation, groups)
    return out.squeeze(0) if unbatched else out


# ----------------------------------------------------------------------------- pooling
def _pool_args(name, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Check pooling arguments; returns ``x``, whether it was unbatched, the kernel, stride, padding and
    dilation pairs, ``Ho``, ``Wo`` and the ``(top, bottom, left, right)`` padding all ``Ho x Wo`` windows need."""
    x, unbatched = _batched(input, name)
    k = _pair(kernel_size, f"{name}: kernel_size", minimum=1)
    no_stride = stride is None or (not isinstance(stride, int) and len(stride) == 0)  # torch: stride=[] too
    s = k if no_stride else _pair(stride, f"{name}: stride", minimum=1)
    p = _pair(padding, f"{name}: padding", minimum=0)
    d = _pair(dilation, f"{name}: dilation", minimum=1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{name}: padding {p} must be at most half of the kernel size {k}")
    h, w = x.shape[2:]
    ho = pool_output_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    wo = pool_output_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    if ho < 1 or wo < 1:
        raise ValueError(f"{name}: kernel {k} is larger than the padded input {(h + 2 * p[0], w + 2 * p[1])}")
    # ceil mode's last window may need more padding on the bottom/right than on the top/left
    bottom = max((ho - 1) * s[0] + d[0] * (k[0] - 1) + 1 - h - p[0], 0)
    right = max((wo - 1) * s[1] + d[1] * (k[1] - 1) + 1 - w - p[1], 0)
    return x, unbatched, k, s, p, d, ho, wo, (p[0], bottom, p[1], right)


def _offset(xp: torch.Tensor, i: int, j: int, s, d, ho: int, wo: int) -> torch.Tensor:
    """View of the element at kernel offset ``(i, j)`` of every window: ``[N, C, Ho, Wo]`` (nothing copied)."""
    return xp[:, :, i * d[0] : i * d[0] + s[0] * (ho - 1) + 1 : s[0], j * d[1] : j * d[1] + s[1] * (wo - 1) + 1 : s[1]]


class _MaxPool2d(torch.autograd.Function):
    """Max over windows as a running ``torch.maximum`` across the ``kh*kw`` kernel offsets; the backward
    routes each gradient to the window's argmax (:func:`_first_hits`) with element-wise compares and
    multiplies (``torch.where``/``masked_fill`` are several times slower on a CPU here)."""

    @staticmethod
    def forward(ctx, x, k, s, d, pads, ho, wo, want_indices):
        top, bottom, left, right = pads
        xp = F.pad(x, (left, right, top, bottom), value=-math.inf) if any(pads) else x
        best = _offset(xp, 0, 0, s, d, ho, wo).clone()
        for i in range(k[0]):
            for j in range(k[1]):
                if i or j:
                    torch.maximum(best, _offset(xp, i, j, s, d, ho, wo), out=best)
        arg = None
        if want_indices:
            arg = torch.zeros(best.shape, dtype=torch.int64, device=x.device)
            for ij, hit in enumerate(_first_hits(xp, best, k, s, d, ho, wo)):
                arg += hit * ij
        ctx.save_for_backward(xp, best)
        ctx.geometry = (x.shape, k, s, d, pads, ho, wo)
        if arg is None:
            return best
        ctx.mark_non_differentiable(arg)
        return best, arg

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, *_grad_arg):
        xp, best = ctx.saved_tensors
        shape, k, s, d, (top, bottom, left, right), ho, wo = ctx.geometry
        gxp = grad_out.new_zeros(xp.shape)
        for ij, hit in enumerate(_first_hits(xp, best, k, s, d, ho, wo)):
            _offset(gxp, ij // k[1], ij % k[1], s, d, ho, wo).add_(grad_out * hit)
        return gxp[:, :, top : top + shape[2], left : left + shape[3]], None, None, None, None, None, None, None


def _first_hits(xp, best, k, s, d, ho, wo) -> list[torch.Tensor]:
    """One bool mask per kernel offset, in scan order: where that offset is its window's argmax
    (torch's rule: the first offset equal to the maximum; in a window holding NaNs, the last NaN)."""
    views = [_offset(xp, i, j, s, d, ho, wo) for i in range(k[0]) for j in range(k[1])]
    hits = [views[0] == best]  # NaN equals nothing: NaN windows get no hit here
    free = ~hits[0]  # where no earlier offset has claimed the maximum yet
    for n in range(1, len(views)):
        hits.append((views[n] == best) & free)
        if n != len(views) - 1:
            free ^= hits[n]
    nan_free = best.isnan()
    if bool(nan_free.any()):
        for n in reversed(range(len(views))):
            nan_hit = views[n].isnan() & nan_free
            nan_free ^= nan_hit
            hits[n] |= nan_hit
    return hits


class _AvgPool2d(torch.autograd.Function):
    """Window sums by adding the ``kh*kw`` offset views, divided by ``div`` (scalar or ``[Ho, Wo]``);
    backward adds ``grad / div`` back at every offset."""

    @staticmethod
    def forward(ctx, x, k, s, pads, ho, wo, div):
        top, bottom, left, right = pads
        xp = F.pad(x, (left, right, top, bottom)) if any(pads) else x
        total = _offset(xp, 0, 0, s, (1, 1), ho, wo).clone()
        for i in range(k[0]):
            for j in range(k[1]):
                if i or j:
                    total += _offset(xp, i, j, s, (1, 1), ho, wo)
        ctx.geometry = (x.shape, xp.shape, k, s, pads, ho, wo)
        ctx.save_for_backward(div)
        return total.div_(div)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (div,) = ctx.saved_tensors
        shape, padded, k, s, (top, bottom, left, right), ho, wo = ctx.geometry
        g = grad_out / div
        gxp = grad_out.new_zeros(padded)
        for i in range(k[0]):
            for j in range(k[1]):
                _offset(gxp, i, j, s, (1, 1), ho, wo).add_(g)
        return gxp[:, :, top : top + shape[2], left : left + shape[3]], None, None, None, None, None, None


def max_pool2d(
    input: torch.Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """Max pooling like ``torch.nn.functional.max_pool2d``: ``[N, C, H, W] -> [N, C, Ho, Wo]`` (padding
    with ``-inf``), and with ``return_indices`` the int64 flat index ``h*W + w`` of each maximum."""
    args = _pool_args("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    x, unbatched, k, s, p, d, ho, wo, pads = args
    out = _MaxPool2d.apply(x, k, s, d, pads, ho, wo, return_indices)
    if not return_indices:
        return out.squeeze(0) if unbatched else out
    out, arg = out
    rows = torch.arange(ho, device=x.device).view(ho, 1) * s[0] - p[0] + (arg // k[1]) * d[0]
    cols = torch.arange(wo, device=x.device).view(1, wo) * s[1] - p[1] + (arg % k[1]) * d[1]
    idx = rows * x.shape[3] + cols
    return (out.squeeze(0), idx.squeeze(0)) if unbatched else (out, idx)


def avg_pool2d(
    input: torch.Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> torch.Tensor:
    """Average pooling like ``torch.nn.functional.avg_pool2d``: ``[N, C, H, W] -> [N, C, Ho, Wo]`` (zero
    padding counted unless ``count_include_pad=False``; ``ceil_mode``'s overhang never counted)."""
    x, unbatched, k, s, _, _, ho, wo, pads = _pool_args("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, int) or divisor_override < 1):
        raise ValueError(f"avg_pool2d: divisor_override must be a positive int, got {divisor_override!r}")
    (h, w), (top, bottom, left, right) = x.shape[2:], pads
    if divisor_override is not None:
        div = torch.tensor(float(divisor_override), dtype=x.dtype, device=x.device)
    elif not any(pads):
        div = torch.tensor(float(k[0] * k[1]), dtype=x.dtype, device=x.device)
    else:

        def counts(size, lo, hi, ki, si, n_out):
            # 1 where a position counts toward the divisor: padding too, unless count_include_pad=False;
            # the ceil-mode overhang beyond the padding never counts.
            pos = torch.arange(size + lo + hi, device=x.device)
            inside = (pos >= lo) & (pos < lo + size) if not count_include_pad else pos < size + 2 * lo
            return inside.to(x.dtype).unfold(0, ki, si)[:n_out].sum(-1)

        div = counts(h, top, bottom, k[0], s[0], ho).view(ho, 1) * counts(w, left, right, k[1], s[1], wo).view(1, wo)
    out = _AvgPool2d.apply(x, k, s, pads, ho, wo, div)
    return out.squeeze(0) if unbatched else out


# ----------------------------------------------------------------------------- batch normalisation
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
    """Batch normalisation like ``torch.nn.functional.batch_norm`` of ``[N, C, *]`` inputs (same shape out).

    Training: the batch mean and biased variance over all dims but C, and ``running_mean``/``running_var``
    ``[C]`` updated in place with the *unbiased* variance; evaluation: the running statistics.
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
