"""Benchmark results files: the figures of one benchmark run with the machine and versions inside.

``results/*.json`` files written here are what the tables in ``docs/`` are generated from, so every
published figure says where, when and with what it was measured.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from lenetlab import __version__
from lenetlab.fileio import atomic_path


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Where and with what a figure was measured: CPU, cores, GPU, versions, date (UTC), command line."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lenetlab": __version__,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "command": " ".join(["lenet", *sys.argv[1:]]) if sys.argv else "",
    }


def write_results(path: str | os.PathLike | None, bench: str, figures: dict) -> int:
    """Write ``{"bench", "meta", "figures"}`` to ``path`` as JSON, atomically (nothing when ``path`` is None).

    Returns 0, the exit status of the ``lenet bench`` command that calls it.
    """
    if path is None:
        return 0
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps({"bench": bench, "meta": environment(), "figures": figures}, indent=2,
                                  default=str) + "\n", encoding="utf-8")
    return 0
