"""Helpers for the tests: a quickly trained lenet5 checkpoint and rendered digit images."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lenetlab.data.augment import build_augment
from lenetlab.data.transforms import prepare
from lenetlab.inference.evaluate import model_loss
from lenetlab.models import create, save_checkpoint
from lenetlab.train.step import make_scaler, train_step


def train_small(
    splits,
    path: Path,
    *,
    epochs: int = 12,
    seed: int = 0,
    augment: str = "affine",
    model: str = "lenet5",
    metrics: Path | None = None,
) -> Path:
    """Train ``model`` on ``splits.train`` with Adam (a few seconds on CPU) and save a checkpoint.

    Writes ``metrics`` (a run-style metrics.jsonl) when given. Returns the checkpoint path.
    """
    torch.manual_seed(seed)
    spec = splits.input_spec
    net = create(model, num_classes=len(splits.class_names), in_channels=spec.channels)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    aug = build_augment(augment)
    loss_fn, scaler = model_loss(net), make_scaler(torch.device("cpu"), None)
    x, y = splits.train.x, splits.train.y
    g = torch.Generator().manual_seed(seed)
    rows, step = [], 0
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), 64):
            idx = perm[start : start + 64]
            xb = prepare(x[idx], spec)
            if aug is not None:
                xb = aug(xb)
            loss, _ = train_step(net, opt, xb, y[idx], loss_fn, scaler)
            step += 1
            rows.append(
                {"kind": "train", "step": step, "epoch": epoch + start / len(x), "loss": loss.item(), "lr": 3e-3}
            )
        net.eval()
        with torch.no_grad():
            out = net(prepare(splits.dev.x, spec))
            rows.append(
                {
                    "kind": "dev",
                    "step": step,
                    "epoch": epoch + 1.0,
                    "loss": float(torch.nn.functional.cross_entropy(out, splits.dev.y)),
                    "accuracy": float((out.argmax(1) == splits.dev.y).float().mean()),
                }
            )
    if metrics is not None:
        metrics.parent.mkdir(parents=True, exist_ok=True)
        metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    save_checkpoint(
        path,
        {
            "model": {"name": model, "kwargs": {"num_classes": len(splits.class_names), "in_channels": spec.channels}},
            "state_dict": net.state_dict(),
            "class_names": list(splits.class_names),
            "input_spec": spec.to_dict(),
            "config": {"dataset": splits.name},
        },
    )
    return path


def render_digit(
    d28: np.ndarray, *, canvas=(240, 300), top=40, left=60, size=160, dark_on_light=False, photo=False, seed=0
) -> np.ndarray:
    """Upscale an MNIST digit ``uint8 [28, 28]`` to ``size`` pixels, placed off-centre in a larger canvas.

    ``dark_on_light`` gives black ink on white; ``photo`` gives dark ink on grey paper with a lighting
    gradient and Gaussian noise. Returns ``uint8 [H, W]``.
    """
    rng = np.random.default_rng(seed)
    h, w = canvas
    big = np.asarray(Image.fromarray(d28).resize((size, size), Image.Resampling.BILINEAR), dtype=np.float64) / 255
    c = np.zeros((h, w))
    c[top : top + size, left : left + size] = big
    if dark_on_light or photo:
        c = 1 - c
    if photo:
        yy, xx = np.mgrid[0:h, 0:w]
        paper = 0.5 + 0.35 * xx / w + 0.1 * yy / h
        c = paper * c + 0.12 * (1 - c) + rng.normal(0, 0.04, c.shape)
    return (np.clip(c, 0, 1) * 255).round().astype(np.uint8)


def write_digit_recognizer(folder: Path, splits, n_train: int, n_test: int, bom: bool = False) -> Path:
    """Kaggle's Digit Recognizer layout from ``splits`` (28x28 digits): ``train.csv`` with the first
    ``n_train`` training images (``label,pixel0..pixel783``), ``test.csv`` with the first ``n_test``
    test images (``pixel0..pixel783``) and ``solution.csv`` (``ImageId,Label``, ids from 1). ``bom``
    starts each file with a UTF-8 byte-order mark, as Excel's "CSV UTF-8" does. Returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = ",".join(f"pixel{i}" for i in range(784))
    start = "\ufeff" if bom else ""

    def rows(x, y=None):
        flat = x.reshape(len(x), -1).tolist()
        return "".join(
            (f"{int(y[i])}," if y is not None else "") + ",".join(map(str, r)) + "\n" for i, r in enumerate(flat)
        )

    xtr, ytr = splits.train.x[:n_train], splits.train.y[:n_train]
    xte, yte = splits.test.x[:n_test], splits.test.y[:n_test]
    (folder / "train.csv").write_text(start + "label," + pixels + "\n" + rows(xtr, ytr), encoding="utf-8")
    (folder / "test.csv").write_text(start + pixels + "\n" + rows(xte), encoding="utf-8")
    (folder / "solution.csv").write_text(
        "ImageId,Label\n" + "".join(f"{i + 1},{int(v)}\n" for i, v in enumerate(yte)), encoding="utf-8"
    )
    return folder


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write a ``uint8`` array as IDX (gzip when ``compress`` or the name ends in ``.gz``)."""
    path = Path(path)
    a = np.ascontiguousarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes() + a.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    path.write_bytes(data)
    return path


def benchmark_script(name: str):
    """The script ``benchmarks/NAME.py`` imported as a module (the scripts are not a package)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
