"""Counting LeNet-5's parameters and operations by hand.

A convolution with c_o kernels of c_i x k_h x k_w weights and one bias each has
c_o x c_i x k_h x k_w + c_o parameters, whatever the image size; a fully connected layer has
inputs x outputs + outputs. Computation does depend on the image: every one of the
H_o x W_o x c_o output values of a convolution takes k_h x k_w x c_i multiply-adds, plus one
addition for its bias. NNDL's LeNet-5 chapter counts LeNet-5 this way on a 32x32 input: 61,706 parameters
and 423,344 operations. `lenet profile` measures the same network with PyTorch's flop counter,
which counts only the multiply-adds (MACs) of convolutions and matrix products; the two differ
by exactly the bias additions and the average-pooling operations the hand count includes.
"""

import torch.nn as nn

from lenetlab.lessons.report import Report, format_table
from lenetlab.models import create
from lenetlab.models.profile import profile_module

NNDL_PARAMS, NNDL_FLOPS = 61_706, 423_344  # the totals NNDL's LeNet-5 chapter states


def hand_count(module: nn.Module, shape: list[int]) -> tuple[str, int, str, int]:
    """NNDL's hand count for one layer with output ``shape`` (``[1, C, H, W]`` or ``[1, F]``).

    Returns ``(params formula, params, operations formula, operations)``; the formulas are text
    such as ``"6x1x5x5 + 6"``. Max pooling and activations count as nothing, as in NNDL.
    """
    if isinstance(module, nn.Conv2d):
        (kh, kw), c_i, c_o = module.kernel_size, module.in_channels, module.out_channels
        h, w = shape[2], shape[3]
        return (
            f"{c_o}x{c_i}x{kh}x{kw} + {c_o}",
            c_o * c_i * kh * kw + c_o,
            f"{h}x{w}x{kh}x{kw}x{c_o}x{c_i} + {h}x{w}x{c_o}",
            h * w * kh * kw * c_o * c_i + h * w * c_o,
        )
    if isinstance(module, nn.Linear):
        n_in, n_out = module.in_features, module.out_features
        return f"{n_in}x{n_out} + {n_out}", n_in * n_out + n_out, f"{n_in}x{n_out}", n_in * n_out
    if isinstance(module, nn.AvgPool2d):  # one operation per output value
        return "0", 0, f"{shape[1]}x{shape[2]}x{shape[3]}", shape[1] * shape[2] * shape[3]
    return "0", 0, "0", 0


def run(report: Report) -> None:
    """Count lenet5 by hand, layer by layer, and set it beside ``lenet profile lenet5``."""
    model = create("lenet5")
    profile = profile_module(model, (1, 32, 32), name="lenet5")
    modules = dict(model.named_modules())
    rows, layers = [], []
    for r in profile.rows:
        p_text, params, f_text, flops = hand_count(modules[r.name], r.output_shape)
        shape = "x".join(map(str, r.output_shape[1:]))
        rows.append([r.name, shape, p_text, f"{params:,}", f"{r.params:,}", f_text, f"{flops:,}", f"{r.macs:,}"])
        counts = {"params": params, "profile_params": r.params, "operations": flops, "profile_macs": r.macs}
        layers.append({"layer": r.name, **counts, "profile_formula": r.formula})
    hand_params, hand_flops = sum(x["params"] for x in layers), sum(x["operations"] for x in layers)
    totals = [f"{hand_params:,}", f"{profile.total_params:,}", "", f"{hand_flops:,}", f"{profile.macs:,}"]
    rows.append(["total", "", "", *totals])
    report.say("lenet5 on a 1x32x32 input; 'by hand' follows NNDL, 'profile' is `lenet profile lenet5`")
    head = ["layer", "output", "parameters by hand", "=", "profile", "operations by hand", "=", "profile MACs"]
    report.say(format_table(head, rows, right={3, 4, 6, 7}))
    report.record("layers", layers)
    totals = {"params": hand_params, "profile_params": profile.total_params, "operations": hand_flops}
    report.record("totals", {**totals, "profile_macs": profile.macs, "profile_flops": profile.flops})

    claim = f"parameters: the hand count, the profile and NNDL all say {NNDL_PARAMS:,}"
    report.check("params", claim, hand_params == profile.total_params == NNDL_PARAMS)
    claim = f"operations: the hand count and the profile's formula column both give NNDL's {NNDL_FLOPS:,}"
    report.check("operations", claim, hand_flops == profile.formula_total == NNDL_FLOPS)
    conv_outputs = [r.output_shape for r in profile.rows if isinstance(modules[r.name], nn.Conv2d)]
    bias_adds = sum(c * h * w for _, c, h, w in conv_outputs)
    pooling = sum(x["operations"] for x, r in zip(layers, profile.rows) if isinstance(modules[r.name], nn.AvgPool2d))
    report.say(
        f"hand count - profile MACs = {hand_flops:,} - {profile.macs:,} = {hand_flops - profile.macs:,}"
        f" = {bias_adds:,} conv bias additions + {pooling:,} S4 average-pool operations"
    )
    claim = "the hand count exceeds the MACs by exactly the bias additions and S4's operations"
    report.check("difference", claim, hand_flops - profile.macs == bias_adds + pooling)
    report.say(
        f"FLOPs = 2 x MACs = {profile.flops:,} (a multiply-add is two floating-point operations; NNDL "
        "wondered whether tools report MACs or FLOPs: thop's 'flops' are MACs)"
    )
