"""``lenet compare``: same weights, same outputs (NNDL's LeNet-5 chapter, section 2.4, done properly).

Builds ``lenet5`` (torch layers) and ``lenet5-scratch`` (im2col operators) with the same weights and
reports the largest absolute difference of their outputs on random inputs and on real test images
(also in float64), of their parameter gradients, and of NNDL's loop network
(:class:`lenetlab.ops.LoopLeNet`) on a few images (it is slow).
"""

import copy
import dataclasses

import torch

from lenetlab.data import load, prepare
from lenetlab.errors import CheckpointError, ConfigError
from lenetlab.inference.run import checkpoint_path
from lenetlab.models import create
from lenetlab.models.checkpoint import build_model, load_checkpoint
from lenetlab.models.lenet_scratch import (
    from_loop_reference,
    scratch_to_torch,
    to_loop_reference,
    torch_to_scratch,
)
from lenetlab.ops.reference import LoopLeNet
from lenetlab.textfmt import Output

TOLERANCE = 1e-5


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach() - b.detach()).abs().max())


def _trained_lenet5(checkpoint: str, spec):
    """``checkpoint``'s weights (lenet5 or lenet5-scratch) as torch's ``lenet5``, and ``spec`` with the
    checkpoint's normalisation."""
    ckpt = load_checkpoint(checkpoint_path(checkpoint))
    described = ckpt.get("model") if isinstance(ckpt.get("model"), dict) else {}
    if described.get("name") not in ("lenet5", "lenet5-scratch"):
        raise ConfigError(f"{checkpoint}: model {described.get('name')!r} is not lenet5 or lenet5-scratch")
    try:  # both share one state dict: rebuild it as torch's lenet5 (one-line error if it does not fit)
        ref = build_model({**ckpt, "model": {**described, "name": "lenet5"}})
    except CheckpointError as e:
        raise CheckpointError(f"{checkpoint}: {e}") from None
    saved = ckpt.get("input_spec") or {}
    if "mean" in saved and "std" in saved:  # the checkpoint's normalisation, at LeNet's 32x32
        spec = dataclasses.replace(spec, mean=tuple(saved["mean"]), std=tuple(saved["std"]))
    return ref, spec


def _grad_diff(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Largest difference between the two models' cross-entropy parameter gradients on ``x``, and the
    largest gradient of ``a``."""
    grads = []
    for model in (a, b):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x), labels).backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    diff = max(_max_diff(grads[0][n], grads[1][n]) for n in grads[0])
    return diff, max(float(g.abs().max()) for g in grads[0].values())


def _same_weights(checkpoint: str | None, spec, dataset: str, classes: int, seed: int):
    """``lenet5`` (seeded random, or the trained weights of ``checkpoint``), ``lenet5-scratch`` and the loop
    reference holding the same weights, in eval mode, with the input spec to use."""
    channels = spec.channels
    torch.manual_seed(seed)
    ref = create("lenet5", num_classes=classes, in_channels=channels)
    if checkpoint is not None:
        ref, spec = _trained_lenet5(checkpoint, spec)
        if ref.C1.in_channels != channels:
            raise ConfigError(f"{checkpoint}: expects {ref.C1.in_channels} input channels but {dataset} has {channels}")
        if ref.output.out_features != classes:
            raise ConfigError(f"{checkpoint}: has {ref.output.out_features} output classes but {dataset} has {classes}")
    scratch = create("lenet5-scratch", num_classes=classes, in_channels=channels)
    scratch.load_state_dict(torch_to_scratch(ref.state_dict()))
    loop = LoopLeNet(in_channels=channels, num_classes=classes)
    loop.load_state_dict(to_loop_reference(ref.state_dict()))
    ref.eval(), scratch.eval(), loop.eval()
    return ref, scratch, loop, spec


def _row(check: str, inputs: str, n: int, diff: float, tolerance: float, scale: float = 1.0) -> dict:
    # float32 rounding grows with the size of the values compared: the tolerance is relative to the
    # largest of them (absolute below 1)
    allowed = tolerance * max(1.0, scale)
    return {"check": check, "inputs": inputs, "n": n, "max_abs_diff": diff, "allowed": allowed, "ok": diff <= allowed}


def _checks(models, x_rand, x_real, labels, what: str, loop_images: int, tolerance: float) -> tuple[list, float, float]:
    """The comparison rows of ``models`` (torch, scratch, loop reference), the argmax agreement of the first
    two on ``x_real`` and the largest output there."""
    ref, scratch, loop = models

    def compare(name: str, inputs: str, a: torch.Tensor, b: torch.Tensor) -> dict:
        return _row(name, inputs, a.shape[0], _max_diff(a, b), tolerance, float(a.detach().abs().max()))

    with torch.no_grad():
        out_ref, out_scr = ref(x_real), scratch(x_real)
        # float64 takes rounding out of the picture: what is left would be a real difference
        ref64, scr64 = copy.deepcopy(ref).double(), copy.deepcopy(scratch).double()
        rows = [
            compare("lenet5 vs lenet5-scratch", "random N(0,1)", ref(x_rand), scratch(x_rand)),
            compare("lenet5 vs lenet5-scratch", what, out_ref, out_scr),
            compare("lenet5 vs lenet5-scratch, float64", what, ref64(x_real.double()), scr64(x_real.double())),
        ]
        if loop_images:
            k = min(loop_images, len(x_real))
            rows.append(compare("lenet5 vs loop reference", what, ref(x_real[:k]), loop(x_real[:k])))
    if labels is not None:
        diff, largest = _grad_diff(ref, scratch, x_real, labels)
        rows.append(_row("parameter gradients (cross-entropy)", what, len(x_real), diff, tolerance, largest))
    back = scratch_to_torch(from_loop_reference(to_loop_reference(scratch.state_dict())))
    exact = all(torch.equal(back[k], v) for k, v in ref.state_dict().items())
    check = "state dict round trip torch -> loop -> scratch -> torch"
    rows.append(_row(check, "weights", len(back), 0.0 if exact else float("inf"), tolerance))
    agree = float((out_ref.argmax(1) == out_scr.argmax(1)).float().mean())
    return rows, agree, float(out_ref.abs().max())


def compare_lenet(
    batch: int = 64,
    dataset: str = "mnist-subset",
    data_dir: str | None = None,
    limit: int = 1000,
    loop_images: int = 4,
    checkpoint: str | None = None,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> dict:
    """Compare ``lenet5``, ``lenet5-scratch`` and the loop reference on the same weights (seeded random, or
    ``checkpoint``'s trained ``lenet5``/``lenet5-scratch`` weights): on ``[batch, C, 32, 32]`` standard
    normal inputs and the first ``limit`` test images of ``dataset`` (its :class:`InputSpec`, size 32).
    Returns one row per check (``max_abs_diff``, ``allowed``, ``ok``) and ``ok``."""
    if not tolerance >= 0:
        raise ConfigError(f"--tolerance must be non-negative, got {tolerance}")
    if batch < 1 or limit < 1 or loop_images < 0:
        raise ConfigError(
            f"--batch ({batch}) and --limit ({limit}) must be positive, --loop-images ({loop_images}) non-negative"
        )
    splits = load(dataset, data_dir)
    spec = dataclasses.replace(splits.input_spec, size=32)
    labels = splits.test.y[:limit] if splits.test.y is not None else None
    *models, spec = _same_weights(checkpoint, spec, dataset, len(splits.class_names), seed)
    x_rand = torch.randn(batch, spec.channels, 32, 32, generator=torch.Generator().manual_seed(seed))
    x_real = prepare(splits.test.x[:limit], spec)
    rows, agree, scale = _checks(models, x_rand, x_real, labels, f"{dataset} test", loop_images, tolerance)
    return {
        "tolerance": tolerance,
        "weights": checkpoint or f"random init (seed {seed})",
        "argmax_agreement": agree,
        "max_abs_output": scale,
        "rows": rows,
        "ok": all(r["ok"] for r in rows),
    }


def run_compare(**kwargs) -> Output:
    """:func:`compare_lenet` as a table; status 0 if every check passes, else 1."""
    result = compare_lenet(**kwargs)
    width = max(len(r["check"]) for r in result["rows"])
    lines = [f"weights: {result['weights']}; tolerance {result['tolerance']:.0e} x max(1, largest |value| compared)"]
    lines += [
        f"{r['check']:<{width}}  {r['inputs']:<22} n={r['n']:<5} max|diff| = {r['max_abs_diff']:.3e} "
        f"(allowed {r['allowed']:.1e})  {'ok' if r['ok'] else 'FAIL'}"
        for r in result["rows"]
    ]
    lines.append(
        f"argmax agreement lenet5 vs lenet5-scratch: {result['argmax_agreement']:.2%}; largest |output| "
        f"{result['max_abs_output']:.3g} (float32 rounding grows with it)"
    )
    lines.append("PASS" if result["ok"] else "FAIL: a difference is above what float32 rounding allows")
    return Output(result, "\n".join(lines), status=0 if result["ok"] else 1)
