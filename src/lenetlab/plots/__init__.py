"""PNG plots of a run (curves, confusion matrix, misclassified examples, the first convolution's kernels
and feature maps), drawn on :class:`matplotlib.figure.Figure` directly (no pyplot, no GUI) and written
atomically: :func:`save_run_plots` writes them all into ``RUN_DIR/plots/``; :func:`plot_overlay` draws
several runs' curves in one figure (``lenet plot RUN RUN ...``)."""

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure

from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.errors import DataError, LenetlabError
from lenetlab.fileio import atomic_path
from lenetlab.inference.evaluate import EvalResult, evaluate
from lenetlab.models.trace import first_conv


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG atomically."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return Path(path)


def _series(rows: list[dict], kind: str, key: str, x: str = "step") -> tuple[list[float], list[float]]:
    """``(xs, values)``: ``key`` against ``x`` in the metrics rows of ``kind``."""
    points = [
        (float(r[x]), float(r[key]))
        for r in rows
        if r.get("kind") == kind and all(isinstance(r.get(k), (int, float)) for k in (x, key))
    ]
    return [p[0] for p in points], [p[1] for p in points]


def _log_if_wide(ax, values) -> None:
    """A log scale when the positive finite ``values`` span more than a factor of 50."""
    finite = [v for v in values if math.isfinite(v) and v > 0]
    if finite and max(finite) / min(finite) > 50:
        ax.set_yscale("log")


def _finish(ax, title: str, xlabel: str, ylabel: str, **legend) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_lines():
        ax.legend(**legend)


def _tile(fig: Figure, rows: int, cols: int, i: int, image: np.ndarray, title: str, color="black", **style) -> None:
    """Image ``i`` (from 1) of a ``rows x cols`` grid of ``fig``, without axes."""
    ax = fig.add_subplot(rows, cols, i)
    ax.imshow(image, **{"cmap": "gray" if image.ndim == 2 else None, "interpolation": "nearest", **style})
    ax.set_title(title, fontsize=8, color=color)
    ax.axis("off")


def plot_loss_curves(rows: list[dict], path: str | os.PathLike) -> Path:
    """Train loss per logged step (and per epoch) and dev loss per evaluation against the step, from
    metrics ``rows`` (``kind`` train/epoch/dev, ``step``, ``loss``)."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    tx, ty = _series(rows, "train", "loss")
    ex, ey = _series(rows, "epoch", "loss")
    dx, dy = _series(rows, "dev", "loss")
    if not tx and not dx:
        raise DataError("no train or dev loss rows to plot")
    if tx:
        ax.plot(tx, ty, lw=1.0, alpha=0.8, label="train loss (mean over each log interval)")
    if ex:
        ax.plot(ex, ey, "s--", lw=1.0, ms=4, label="train loss (epoch mean)")
    if dx:
        ax.plot(dx, dy, "o-", lw=1.5, ms=4, label="dev loss")
    _log_if_wide(ax, ty + ey + dy)
    _finish(ax, "loss", "step", "loss")
    return _save(fig, path)


def plot_accuracy_curve(rows: list[dict], path: str | os.PathLike) -> Path:
    """Dev accuracy per evaluation against the step, the final test accuracy as a marker."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    dx, dy = _series(rows, "dev", "accuracy")
    sx, sy = _series(rows, "test", "accuracy")
    if not dx and not sx:
        raise DataError("no dev or test accuracy rows to plot")
    if dx:
        ax.plot(dx, [100 * v for v in dy], "o-", ms=4, label="dev accuracy")
        b = int(np.argmax(dy))
        best = f"best {100 * dy[b]:.2f}%"
        ax.annotate(best, (dx[b], 100 * dy[b]), textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
    if sx:
        ax.plot(sx[-1:], [100 * sy[-1]], "r*", ms=12, label=f"test {100 * sy[-1]:.2f}% (best model)")
    _finish(ax, "dev accuracy", "step", "accuracy (%)", loc="lower right")
    return _save(fig, path)


def plot_confusion(
    confusion, class_names: list[str] | None, path: str | os.PathLike, title: str = "confusion matrix"
) -> Path:
    """Confusion matrix ``[K, K]`` (rows true class, columns predicted), counts in the cells up to 30 classes."""
    cm = np.asarray(confusion, dtype=np.int64)
    k = cm.shape[0]
    names = list(class_names) if class_names and len(class_names) == k else [str(i) for i in range(k)]
    side = min(14.0, max(4.5, 0.45 * k + 2))
    fig = Figure(figsize=(side, side * 0.9))
    ax = fig.add_subplot()
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)  # row-normalised colours: small classes readable
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if k <= 30:
        for t, p in zip(*np.nonzero(cm)):
            color = "white" if norm[t, p] > 0.5 else "black"
            ax.text(p, t, str(cm[t, p]), ha="center", va="center", fontsize=7 if k > 12 else 9, color=color)
        ax.set_xticks(range(k), names, rotation=90 if k > 12 else 0, fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    n = int(cm.sum())
    ax.set_title(f"{title} ({n} examples, accuracy {100 * np.trace(cm) / max(n, 1):.2f}%)")
    return _save(fig, path)


def _as_image(x: torch.Tensor) -> np.ndarray:
    """``uint8``/float ``[C, H, W]`` as an array for imshow: ``[H, W]`` or ``[H, W, 3]``."""
    a = x.detach().float().cpu().numpy()
    if a.shape[0] == 1:
        return a[0]
    if a.shape[0] >= 3:
        a = np.moveaxis(a[:3], 0, -1)
        return (a - a.min()) / max(float(a.max() - a.min()), 1e-8)
    return a.mean(axis=0)


def plot_misclassified(
    x: torch.Tensor,
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    class_names: list[str] | None,
    path: str | os.PathLike,
    max_images: int = 36,
    title: str = "misclassified test images",
) -> Path:
    """The first ``max_images`` misclassified images of ``x`` ``[N, C, H, W]`` with their true and predicted
    labels (int64 ``[N]``); an error-free model gets a figure saying so."""
    y_true, y_pred = torch.as_tensor(y_true).cpu(), torch.as_tensor(y_pred).cpu()
    wrong = (y_true != y_pred).nonzero().flatten()
    shown = wrong[:max_images].tolist()

    def name(i: int) -> str:
        return class_names[i] if class_names and i < len(class_names) else str(i)

    cols = max(1, min(6, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig = Figure(figsize=(1.6 * cols + 0.4, 1.8 * rows + 0.6))
    if not shown:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, f"no misclassified images among {len(y_true)}", ha="center", va="center")
    for j, i in enumerate(shown):
        label = f"true {name(int(y_true[i]))}\npred {name(int(y_pred[i]))}"
        _tile(fig, rows, cols, j + 1, _as_image(x[i]), label, color="crimson")
    first = f" (first {len(shown)})" if len(wrong) > len(shown) else ""
    fig.suptitle(f"{title}: {len(wrong)} of {len(y_true)} wrong{first}")
    return _save(fig, path)


def plot_kernels(model: nn.Module, x: torch.Tensor, path: str | os.PathLike) -> Path:
    """The first convolution's kernels (``weight [C_out, C_in, kh, kw]``), one tile per output channel, found
    by running one prepared batch ``x`` ``[1, C, H, W]``: in colour for 3 input channels, else the mean
    over input channels on a symmetric blue-white-red scale."""
    _, module, _ = first_conv(model, x)
    w = module.weight.detach().float().cpu()
    n = min(w.shape[0], 64)
    cols = min(8, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(1.2 * cols + 0.8, 1.25 * rows + 0.6))
    lim = float(w.abs().max()) or 1.0
    for i in range(n):
        if w.shape[1] == 3:
            _tile(fig, rows, cols, i + 1, np.moveaxis(((w[i] / lim + 1) / 2).clamp(0, 1).numpy(), 0, -1), str(i))
        else:
            _tile(fig, rows, cols, i + 1, w[i].mean(0).numpy(), str(i), cmap="bwr", vmin=-lim, vmax=lim)
    fig.suptitle(f"first conv kernels ({type(module).__name__}, {tuple(w.shape)})")
    return _save(fig, path)


def plot_feature_maps(
    model: nn.Module, x: torch.Tensor, path: str | os.PathLike, image: torch.Tensor | None = None, caption: str = ""
) -> Path:
    """The input and the first convolution's output maps for one prepared example ``x`` ``[1, C, H, W]``;
    ``image`` (``[C, H, W]``) is shown as the input when given."""
    _, _, out = first_conv(model, x)
    maps = out[0].float().cpu()
    n = min(maps.shape[0], 32)
    cols = min(8, n + 1)
    rows = math.ceil((n + 1) / cols)
    fig = Figure(figsize=(1.5 * cols + 0.4, 1.6 * rows + 0.6))
    _tile(fig, rows, cols, 1, _as_image(image if image is not None else x[0]), "input")
    for i in range(n):
        _tile(fig, rows, cols, i + 2, maps[i].numpy(), f"map {i}", cmap="viridis")
    fig.suptitle(f"first conv feature maps {tuple(maps.shape)}" + (f" — {caption}" if caption else ""))
    return _save(fig, path)


def plot_overlay(runs: list[tuple[str, list[dict]]], path: str | os.PathLike) -> Path:
    """Several runs' curves against the epoch (so runs of different batch sizes line up), one colour per
    run ``(name, metrics rows)``: train and dev loss on the left, dev accuracy on the right. A run without
    rows of a kind has no line there; no curve at all is a :class:`DataError`."""
    fig = Figure(figsize=(12, 4.4))
    ax_loss, ax_acc = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    drawn = 0
    for i, (name, rows) in enumerate(runs):
        color = f"C{i % 10}"
        tx, ty = _series(rows, "train", "loss", "epoch")
        dx, dy = _series(rows, "dev", "loss", "epoch")
        ax, ay = _series(rows, "dev", "accuracy", "epoch")
        if tx:
            ax_loss.plot(tx, ty, color=color, lw=0.9, alpha=0.6, label=f"{name} train")
        if dx:
            ax_loss.plot(dx, dy, "o-", color=color, lw=1.5, ms=3, label=f"{name} dev")
        if ax:
            ax_acc.plot(ax, [100 * v for v in ay], "o-", color=color, ms=3, label=name)
        drawn += bool(tx or dx or ax)
    if not drawn:
        raise DataError("none of the runs has train or dev rows to plot")
    _log_if_wide(ax_loss, [v for line in ax_loss.get_lines() for v in line.get_ydata()])
    _finish(ax_loss, "loss", "epoch", "loss", fontsize=8)
    _finish(ax_acc, "dev accuracy", "epoch", "accuracy (%)", fontsize=8)
    return _save(fig, path)


def save_curve_plots(out: str | os.PathLike, rows: list[dict]) -> list[Path]:
    """``loss.png`` and ``accuracy.png`` from metrics ``rows`` into the folder ``out`` (a curve with no rows
    is skipped); the paths written."""
    written: list[Path] = []
    for fn, name in ((plot_loss_curves, "loss.png"), (plot_accuracy_curve, "accuracy.png")):
        try:
            written.append(fn(rows, Path(out) / name))
        except DataError:
            pass
    return written


def save_model_plots(
    out: str | os.PathLike,
    model: nn.Module,
    splits,
    spec: InputSpec,
    device: torch.device | str = "cpu",
    test: EvalResult | None = None,
) -> list[Path]:
    """The plots of ``model`` (on ``device``) written into ``out``: confusion matrix and misclassified images
    of the test split (dev when test is unlabelled; ``test``: that evaluation, with predictions, if made),
    the first convolution's kernels and feature maps on its first image."""
    out = Path(out)
    written: list[Path] = []
    split, which = (splits.test, "test") if splits.test.y is not None and len(splits.test) else (splits.dev, "dev")
    model.eval()
    if split.y is not None and len(split):
        if which != "test" or test is None or test.predictions is None:
            test = evaluate(model, split, spec, device, keep_predictions=True, class_names=splits.class_names)
        title = f"{which} confusion matrix"
        written.append(plot_confusion(test.confusion, splits.class_names, out / "confusion.png", title=title))
        title = f"misclassified {which} images"
        wrong = out / "misclassified.png"
        written.append(plot_misclassified(split.x, split.y, test.predictions, splits.class_names, wrong, title=title))
    if len(split):
        x = prepare(split.x[:1].to(device), spec)
        label = f"{which} image 0, class {splits.class_names[int(split.y[0])]}" if split.y is not None else ""
        try:
            written.append(plot_kernels(model, x, out / "kernels.png"))
            written.append(plot_feature_maps(model, x, out / "feature_maps.png", image=split.x[0], caption=label))
        except LenetlabError:
            pass  # a model without convolutions (an MLP) has no kernels to show
    return written


def save_run_plots(
    run_dir: str | os.PathLike,
    rows: list[dict],
    model: nn.Module,
    splits,
    spec: InputSpec,
    device: torch.device | str = "cpu",
    test: EvalResult | None = None,
) -> list[Path]:
    """Every plot of a run that applies, written into ``run_dir/plots/``: :func:`save_curve_plots` of its
    metrics ``rows`` and :func:`save_model_plots` of its best ``model``."""

    out = Path(run_dir) / "plots"
    return save_curve_plots(out, rows) + save_model_plots(out, model, splits, spec, device, test=test)
