"""Regenerate the small ``lenet5`` shipped with the package (``lenet serve``'s and ``lenet predict``'s default).

    python benchmarks/make_demo_checkpoint.py --data-dir DIR

An ordinary run of the shipped config ``shipped-lenet5``, trained into
``src/lenetlab/models/assets/lenet5_mnist/`` (one thread), then exported as the pretrained weights
(``lenet export RUN --format safetensors``). The package ships the run's ``best.pt``, ``config.json``
and ``metrics.jsonl``; ``last.pt`` and ``metrics.csv`` are removed to keep it small.
"""

import argparse
import subprocess
import sys
from pathlib import Path

ASSETS = Path("src/lenetlab/models/assets")
RUN = ASSETS / "lenet5_mnist"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="folder holding the MNIST files")
    args = ap.parse_args(argv)
    lenet = [sys.executable, "-m", "lenetlab"]
    train = ["train", "--config", "shipped-lenet5", "--data-dir", args.data_dir, "--num-threads", "1"]
    train += ["--out-dir", str(ASSETS), "--name", RUN.name, "--overwrite", "--no-plots", "--no-tensorboard"]
    subprocess.run([*lenet, *train], check=True)
    subprocess.run([*lenet, "export", str(RUN), "--format", "safetensors"], check=True)
    for name in ("last.pt", "metrics.csv"):
        (RUN / name).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
