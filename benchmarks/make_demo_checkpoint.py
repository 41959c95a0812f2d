"""Regenerate the small trained ``lenet5`` shipped with the package (``lenet serve``'s default model).

Trains NNDL's LeNet-5 on the full real MNIST (60,000 training images; 28x28 zero-padded to 32x32,
mean = std = 0.5) for 10 epochs with Adam and a one-cycle schedule, plus light random shifts (+-2 px)
so the served model tolerates imperfectly centred hand drawings. There is no model selection: the
last epoch is saved, and the 10,000 test images are only measured, never used to choose anything.

    .venv/bin/python benchmarks/make_demo_checkpoint.py --data-dir ../shared/data/mnist

writes ``src/lenetlab/models/assets/lenet5_mnist.pt`` (about 250 KB) in the standard checkpoint
format, the same weights as ``src/lenetlab/models/assets/lenet5_mnist/`` (``model.safetensors`` +
``config.json``, what ``lenetlab.models.create("lenet5", pretrained=True)`` loads) and prints the test
accuracy (the script fails if it is below ``--min-acc``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lenetlab.data.idx import read_images_labels
from lenetlab.data.transforms import InputSpec, prepare
from lenetlab.models import create, save_checkpoint
from lenetlab.serve.export import export_safetensors

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src" / "lenetlab" / "models" / "assets" / "lenet5_mnist.pt"


def load_mnist(data_dir: Path):
    """``(x_train, y_train, x_test, y_test)``: uint8 ``[N, 1, 28, 28]`` images and int64 labels.

    All 60,000 training images (no dev split is held back: this is the demo model, not a result).
    """
    def part(prefix: str):
        x, y = read_images_labels(data_dir / f"{prefix}-images-idx3-ubyte.gz", data_dir / f"{prefix}-labels-idx1-ubyte.gz")
        return torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64))

    return (*part("train"), *part("t10k"))


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image of ``x`` ``[N, C, H, W]`` by up to ``max_shift`` pixels (zero fill)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).view(n, 1, h, 1).expand(n, x.shape[1], h, w + 2 * max_shift)
    out = padded.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
    return out.gather(3, cols)


@torch.no_grad()
def accuracy(model, x, y, spec, batch=2000) -> float:
    """Top-1 accuracy of ``model`` on uint8 images ``x`` ``[N, 1, 28, 28]`` with labels ``y``."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (model(prepare(x[i : i + batch], spec)).argmax(1) == y[i : i + batch]).sum().item()
    return correct / len(x)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--shift", type=int, default=2, help="random shift augmentation, pixels (0: off)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-acc", type=float, default=0.985)
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x_train, y_train, x_test, y_test = load_mnist(args.data_dir)
    spec = InputSpec(channels=1, size=32, resize="pad", mean=(0.5,), std=(0.5,))
    model = create("lenet5")
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(x_train), args.batch_size):
            idx = perm[i : i + args.batch_size]
            xb = x_train[idx]
            if args.shift:
                xb = random_shift(xb, args.shift, gen)
            loss = F.cross_entropy(model(prepare(xb, spec)), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc = accuracy(model, x_test, y_test, spec)
        print(f"epoch {epoch + 1}/{args.epochs}  loss {total / len(x_train):.4f}  test acc {acc:.4f}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    acc = accuracy(model, x_test, y_test, spec)
    config = {
        "made_by": "benchmarks/make_demo_checkpoint.py",
        "dataset": "mnist", "train_images": len(x_train), "test_images": len(x_test),
        "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": "adam", "lr": args.lr,
        "schedule": "onecycle", "augment_shift_px": args.shift, "seed": args.seed,
        "test_accuracy": round(acc, 4), "torch": str(torch.__version__),
    }
    save_checkpoint(args.out, {
        "model": {"name": "lenet5", "kwargs": {}},
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "class_names": [str(i) for i in range(10)],
        "input_spec": spec.to_dict(),
        "config": config,
    })
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB); test accuracy {acc:.4f}")
    info = export_safetensors(args.out, args.out.with_suffix(""))  # the shipped pretrained weights
    print(f"wrote {info['path']}/ (model.safetensors + config.json)")
    if acc < args.min_acc:
        print(f"test accuracy {acc:.4f} is below --min-acc {args.min_acc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
