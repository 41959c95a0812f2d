"""Results files for the docs: JSON with a ``meta`` block (hardware, versions, date, command, source).

Every table in the docs is rendered from one file under ``results/`` by ``docs_tables.py``::

    {"meta": {"kind": ..., "title": ..., "command": ..., "source": ..., "date": "YYYY-MM-DD",
              "hardware": {"cpu": ..., "cores": N, "gpu": ...}, "python": ..., "torch": ...},
     "data": {...}}          # the producing command's own JSON output, or
     "rows": [{...}, ...]}   # one row per table line; a row may carry its own "command" and "source"

``kind`` names the renderer.
"""

import argparse
import contextlib
import datetime as _dt
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from lenetlab import cli
from lenetlab.fileio import atomic_path

REPO = Path(__file__).resolve().parents[1]
META_FIELDS = ("kind", "title", "command", "source", "date", "hardware", "python", "torch")  # in every file


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """The short commit of the working tree (with ``+dirty`` when files outside ``results/`` changed), or None."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def machine_meta() -> dict:
    """Hardware and software of this machine, and today's date (UTC)."""
    import torch  # here, not at the top: docs_tables.py reads results files without torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem_gb = round(kb / 1024**2, 1)
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).date().isoformat(),
        "hardware": {"cpu": cpu_model(), "cores": os.cpu_count(), "memory_gb": mem_gb, "gpu": gpu},
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None,
    }


def machine_line(meta: dict, python: bool = False) -> str:
    """The machine in ``meta`` in a few words (CPU, cores, GPU, with ``python`` the Python version, torch)."""
    hw = meta["hardware"]
    version = f", Python {meta['python']}" if python else ""
    return f"{hw['cpu']}, {hw['cores']} cores, {hw.get('gpu') or 'no GPU'}{version}, torch {meta['torch']}"


def make_meta(kind: str, title: str, command: str, source: str | None = None, **extra) -> dict:
    """A ``meta`` block for a file measured now on this machine by ``command``."""
    commit = git_commit()
    meta = {
        "kind": kind,
        "title": title,
        "command": command,
        "source": source or (f"measured at commit {commit}" if commit else "measured"),
    }
    meta.update(machine_meta())
    meta.update(extra)
    return meta


def write_results(path, meta: dict, *, data=None, rows=None) -> Path:
    """Write ``{"meta": meta, "data"|"rows": ...}`` to ``path`` (atomically) and return the path."""
    body = {"meta": meta, **({"rows": rows} if data is None else {"data": data})}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(body, indent=1, default=float) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return Path(path)


def load_results(path) -> dict:
    """Read a results file and check it has a ``meta`` block with the fields every file carries."""
    body = json.loads(Path(path).read_text(encoding="utf-8"))
    meta = body.get("meta") or {}
    missing = [k for k in META_FIELDS if k not in meta]
    if missing or ("data" in body) == ("rows" in body):
        raise ValueError(f"{path}: not a results file (missing meta {missing} or neither/both data and rows)")
    return body


def command_line(argv: list[str], prog: str) -> str:
    """``prog`` followed by ``argv`` as one shell-quoted line, without ``--results FILE`` and with
    every ``--data-dir`` value written ``DIR`` (results files hold no machine paths)."""
    out: list[str] = []
    for before, a in zip(["", *argv], argv):
        if a == "--results" or a.startswith("--results=") or before == "--results":
            continue
        if before == "--data-dir":
            a = "DIR"
        out.append("--data-dir=DIR" if a.startswith("--data-dir=") else shlex.quote(a))
    return " ".join([prog, *out])


def run_lenet(argv: list[str], **kwargs) -> tuple[dict, float]:
    """Run ``python -m lenetlab ARGV`` (with ``--json``) in a fresh process (``kwargs``: ``subprocess.run``'s,
    e.g. ``env``); its JSON output and wall seconds. A failure ends the program with the end of its stderr."""
    cmd = [sys.executable, "-m", "lenetlab", *argv]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout[proc.stdout.index("{") :]), wall


def strip_repo_paths(value):
    """``value`` with every string path inside the repository made relative to it (recursively)."""
    prefix = str(REPO) + os.sep
    if isinstance(value, str):
        return value[len(prefix) :] if value.startswith(prefix) else value
    if isinstance(value, list):
        return [strip_repo_paths(v) for v in value]
    if isinstance(value, dict):
        return {k: strip_repo_paths(v) for k, v in value.items()}
    return value


def record_cli(path, kind: str, title: str, argv: list[str], prog: str = "lenet", **extra) -> Path:
    """Run ``lenet ARGV --json`` in this process and write its output as the ``data`` of the results file
    ``path``; ``extra`` goes into the meta block (e.g. ``regenerate``: the command that rewrites the file).
    A non-zero exit status with JSON output is a result too (``lenet compare`` exits 1 when a difference is
    above its tolerance), recorded as ``exit_status``; without JSON output it ends the program."""
    argv = [a for a in argv if a != "--json"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = cli.main([*argv, "--json"]) or 0
    out = buf.getvalue()
    try:
        data = strip_repo_paths(json.loads(out[out.index("{") :]))
    except ValueError:
        sys.stdout.write(out)
        raise SystemExit(status or 1) from None
    if status:
        print(f"note: lenet {argv[0]} exited with status {status}; recorded as exit_status", file=sys.stderr)
    return write_results(path, make_meta(kind, title, command_line(argv, prog), exit_status=status, **extra), data=data)


def bench_script(which: str, title: str, script: str, kind: str | None = None, flags_in_regenerate: bool = False):
    """The ``__main__`` of ``benchmarks/SCRIPT``: ``lenet bench WHICH`` with the script's flags, or with
    ``--results FILE`` its JSON output recorded as a results file of ``kind`` (default ``bench-WHICH``)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--results", metavar="FILE", default=None)
    known, rest = p.parse_known_args(sys.argv[1:])
    if known.results is None:
        sys.exit(cli.main(["bench", which, *rest]))
    prog = f"python benchmarks/{script}"
    how = f"{command_line(rest, prog) if flags_in_regenerate else prog} --results {known.results}"
    record_cli(known.results, kind or f"bench-{which}", title, ["bench", which, *rest], regenerate=how)
