"""Fine-tuning the shipped MNIST ``lenet5`` on a small folder of letters, against training from scratch.

Draws the 26 capital letters white on black at 28x28, like MNIST (Pillow's own font, random stroke
widths, random affine distortions and blur, a fixed seed) into ``train/``, ``dev/`` and ``test/``
class folders, then trains ``lenet5`` on them from scratch (``--init default``) and from the shipped
weights with a new 26-way head (``--init pretrained``), with the same epochs: each init's learning
rate is chosen on dev, then its test accuracy measured over several seeds. A run is ``lenet train
--dataset FOLDER --recipe lenet5 --normalize half --init INIT --lr LR --epochs E --seed S``.

    python benchmarks/finetune.py --results results/finetune.json     # 32 short runs: 1 to 3 minutes
    python benchmarks/finetune.py --out letters --make-only           # just the folder
"""

import argparse
import string
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_io beside this script
from results_io import command_line, make_meta, write_results

LETTERS = string.ascii_uppercase
SPLITS = ("train", "dev", "test")
CANVAS = 56  # drawn at twice the size, then shrunk to 28
#: What every run shares (besides the folder, init, rate, epochs, batch and seed).
SHARED = dict(recipe="lenet5", model="lenet5", normalize="half", num_threads=1, progress="none", plots=False)


def draw_letter(char: str, rng: np.random.Generator) -> Image.Image:
    """``char`` white on black, 28×28 grayscale, at a random stroke width, distorted by a random affine map."""
    img = Image.new("L", (CANVAS, CANVAS), 0)
    font = ImageFont.load_default(size=int(rng.integers(34, 42)))
    ImageDraw.Draw(img).text(
        (CANVAS / 2, CANVAS / 2),
        char,
        fill=255,
        font=font,
        anchor="mm",
        stroke_width=int(rng.integers(1, 4)),
        stroke_fill=255,
    )
    angle, shear = np.deg2rad(rng.uniform(-15, 15)), rng.uniform(-0.3, 0.3)
    scale, shift = rng.uniform(0.8, 1.05), rng.uniform(-3, 3, 2)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    forward = rot @ np.array([[1, shear], [0, 1]]) * scale
    inverse = np.linalg.inv(forward)  # Pillow maps each output pixel back to the input
    centre = np.full(2, CANVAS / 2)
    offset = centre - inverse @ (centre + shift)
    coeffs = (*inverse[0], offset[0], *inverse[1], offset[1])
    img = img.transform(img.size, Image.AFFINE, coeffs, resample=Image.BILINEAR)
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0))).resize((28, 28), Image.LANCZOS)


def make_letters(root: str | Path, per_class: tuple[int, int, int] = (20, 10, 20), seed: int = 0) -> dict:
    """Write ``root/{train,dev,test}/<letter>/<i>.png`` (``per_class`` images per split and letter);
    returns the number of images per split."""
    rng = np.random.default_rng(seed)
    counts = {}
    for split, n in zip(SPLITS, per_class):
        for char in LETTERS:
            folder = Path(root) / split / char
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                draw_letter(char, rng).save(folder / f"{i}.png")
        counts[split] = n * len(LETTERS)
    return counts


def train_once(folder: Path, out_dir: Path, init: str, lr: float, epochs: int, seed: int, batch_size: int) -> dict:
    """One ``lenet train`` run on ``folder`` (in this process); its dev and test accuracy, steps and seconds."""
    from lenetlab.textfmt import quiet
    from lenetlab.train.config import RunConfig
    from lenetlab.train.runner import Runner

    name = f"{init}-e{epochs}-lr{lr:g}-s{seed}"
    run = dict(init=init, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed, name=name, out_dir=str(out_dir))
    cfg = RunConfig(dataset=str(folder), tensorboard=False, **run, **SHARED)
    result = Runner(cfg, say=quiet).run()  # quiet: no note naming the new head on every run
    return {
        "init": init,
        "lr": lr,
        "seed": seed,
        "dev_accuracy": result.dev_accuracy,
        "test_accuracy": result.test.accuracy,
        "steps": result.steps,
        "train_time": round(result.train_time, 2),
    }


def compare(
    folder: Path, out_dir: Path, epochs: int, lrs: list[float], seeds: list[int], batch_size: int
) -> list[dict]:
    """For each init: the learning rate best on dev (first seed), then a run at that rate for every seed;
    every run, marked ``phase`` ``tune`` or ``test``."""
    rows = []
    for init in ("default", "pretrained"):
        tuning = [train_once(folder, out_dir, init, lr, epochs, seeds[0], batch_size) for lr in lrs]
        best = max(tuning, key=lambda r: r["dev_accuracy"])
        rows += [{**r, "epochs": epochs, "phase": "tune"} for r in tuning]
        for seed in seeds:
            row = best if seed == seeds[0] else train_once(folder, out_dir, init, best["lr"], epochs, seed, batch_size)
            rows.append({**row, "epochs": epochs, "phase": "test"})
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """One line per epochs and init: the chosen rate, and the test accuracy (mean, min, max) and
    training seconds (mean) over the seeds."""
    out = []
    for key in dict.fromkeys((r["epochs"], r["init"]) for r in rows if r["phase"] == "test"):
        runs = [r for r in rows if r["phase"] == "test" and (r["epochs"], r["init"]) == key]
        accs = [r["test_accuracy"] for r in runs]
        out.append(
            {
                "epochs": key[0],
                "init": key[1],
                "lr": runs[0]["lr"],
                "steps": runs[0]["steps"],
                "seeds": len(runs),
                "test_mean": round(float(np.mean(accs)), 4),
                "test_min": round(min(accs), 4),
                "test_max": round(max(accs), 4),
                "train_time_mean": round(float(np.mean([r["train_time"] for r in runs])), 2),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Make the folder, compare the two inits, print the summary and optionally write the results."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="folder for the letters (default: a temporary one)")
    p.add_argument("--per-class", default="20,10,20", help="train,dev,test images per letter (default: 20,10,20)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the drawn letters (default: 0)")
    p.add_argument("--epochs", default="10,30", help="epochs of the runs, both inits; several: one comparison each")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size (default: 32)")
    p.add_argument("--lrs", default="0.001,0.003,0.01,0.03", help="learning rates tried on dev")
    p.add_argument("--seeds", default="0,1,2,3,4", help="training seeds of the test runs (default: 0..4)")
    p.add_argument("--make-only", action="store_true", help="make the folder (--out) and stop")
    p.add_argument("--results", default=None, help="write the results JSON (with meta) here")
    a = p.parse_args(argv)
    per_class = tuple(int(n) for n in a.per_class.split(","))
    lrs, seeds = [float(x) for x in a.lrs.split(",")], [int(x) for x in a.seeds.split(",")]
    title = "Fine-tuning the shipped MNIST lenet5 on 26 letters vs training from scratch"
    command = command_line(sys.argv[1:] if argv is None else argv, "python benchmarks/finetune.py")
    meta = make_meta("finetune", title, command)  # the machine's load as the runs start
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.out or Path(tmp) / "letters"
        counts = make_letters(folder, per_class, a.data_seed)
        print(f"{folder}: {counts}")
        if a.make_only:
            return 0
        rows = [r for e in a.epochs.split(",") for r in compare(folder, Path(tmp), int(e), lrs, seeds, a.batch_size)]
    data = {"images": counts, "batch_size": a.batch_size, "lrs": lrs, "summary": summarize(rows), "runs": rows}
    for s in data["summary"]:
        print(
            f"{s['epochs']:>3} epochs {s['init']:>10}: lr {s['lr']:g}, test {s['test_mean']:.4f} "
            f"({s['test_min']:.4f}-{s['test_max']:.4f}, {s['seeds']} seeds), {s['train_time_mean']:.1f} s"
        )
    if a.results:
        write_results(a.results, meta, data=data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
