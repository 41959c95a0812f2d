"""Rerun the commands whose output the docs show, and rewrite that output in place.

    python benchmarks/docs_outputs.py            # rerun every command (about a minute), rewrite what drifted
    python benchmarks/docs_outputs.py --check    # change nothing; exit 1 naming the blocks that drifted
    python benchmarks/docs_outputs.py --fast     # only the blocks that take seconds (what the test checks)

A block sits between ``<!-- output: NAME -->`` and ``<!-- end output -->``, outside any code block, as
a ``console`` code block of ``$ lenet ...`` lines and their output. The commands of every block run in
order in one new empty folder (``runs/adam`` of one block is there for the next), on the embedded
``mnist-subset``, one CPU thread; a few steps that are not shown prepare what a block needs. The
comparison ignores what differs from one run to the next (:func:`normalise`); a block that drifted
otherwise is rewritten with the real output, the others are left as they are.
"""

import argparse
import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REGION = re.compile(
    r"(<!-- output: (?P<name>[\w-]+) -->\n```console\n)(?P<body>.*?)(```\n<!-- end output -->)", re.DOTALL
)


@dataclass
class Step:
    """One command: ``shown`` in ``block`` (None: not shown); ``run``: the shell line run instead, or a
    function; ``keep``: what of its output the block shows; ``stop``: the signal sent once the dev
    evaluation at this step is written; ``fast``: it takes seconds."""

    block: str | None
    shown: str
    run: str | Callable[[], str | None] | None = None
    keep: Callable[[list[str]], list[str]] | None = None
    stop: tuple[signal.Signals, int] | None = None
    fast: bool = False


def _between(start: str, end: str | None = None):
    """Keep the lines from the last matching ``start`` to the first matching ``end`` (else the end), with
    ``...`` for what is left out."""

    def keep(lines: list[str]) -> list[str]:
        first = max(i for i, line in enumerate(lines) if re.search(start, line))
        last = len(lines) - 1 if end is None else next(i for i, line in enumerate(lines) if re.search(end, line))
        return ["..."] * (first > 0) + lines[first : last + 1] + ["..."] * (last + 1 < len(lines))

    return keep


def _first_json_object(lines: list[str]) -> list[str]:
    end = lines.index("  },")
    return [*lines[: end + 1], "  ..."]


def _remove_dry_run(lines: list[str]) -> list[str]:
    """The lines as they are, once the temporary folder they name is deleted."""
    folder = next(line.split(": ", 1)[1] for line in lines if line.startswith("written to a temporary folder"))
    shutil.rmtree(Path(folder).parent)
    return lines


def _digit_png() -> None:
    """``digit.png``: a 7 of the embedded subset's test split, as a user's PNG file."""
    from PIL import Image

    from lenetlab.data import load

    test = load("mnist-subset").test
    i = int((test.y == 7).nonzero()[0, 0])
    Image.fromarray(test.x[i, 0].numpy()).save("digit.png")


def _odd_csv() -> None:
    """``odd.csv``: a pixel table whose columns lenetlab cannot tell apart (``ImageId,px0..px783``)."""
    header = "ImageId," + ",".join(f"px{i}" for i in range(784))
    Path("odd.csv").write_text(header + "\n1," + ",".join(["0"] * 784) + "\n")


#: Every step, in the order they run (which is not the pages' order: `lenet runs` lists runs made later).
STEPS = [
    Step("predict-shipped", "lenet models --pretrained", fast=True),
    Step(None, "python: digit.png", run=_digit_png, fast=True),
    Step("predict-shipped", "lenet predict --model lenet5 digit.png", fast=True),
    Step(None, "odd.csv", run=_odd_csv, fast=True),
    Step("csv-error", "lenet data --dataset odd.csv", fast=True),
    Step("run-dir", "lenet train --epochs 3 --num-threads 1 --name adam --progress plain"),
    Step("run-dir", "ls runs/adam", run="ls -C -T 0 -w 110 runs/adam"),
    Step("metrics-csv", "head -3 runs/adam/metrics.csv | cut -c1-110"),
    Step(None, "lenet train --epochs 3 --num-threads 1 --name sgd --optimizer sgd --lr 0.05 --progress none"),
    Step(None, "lenet train --epochs 3 --num-threads 1 --name broken --progress none --no-plots"),
    Step(None, "sed -i '5s/.*/{oops/' runs/broken/metrics.jsonl"),
    Step(
        "interrupt",
        "lenet train --epochs 30 --num-threads 1 --name long --progress plain     # Ctrl-C after epoch 7",
        keep=_between(r"^\[dev\] step 112 "),
        stop=(signal.SIGINT, 112),
    ),
    Step(
        "early-stop",
        "lenet train --epochs 20 --num-threads 1 --name patient --patience 2 --monitor dev_loss --lr 0.01 "
        "--progress plain --no-plots",
        keep=_between(r"^\[train\]", r"^trained "),
    ),
    Step(
        "early-stop",
        "lenet train --max-steps 20 --num-threads 1 --name short --progress none --no-plots",
        keep=_between(r"^best dev accuracy", r"^trained "),
    ),
    Step("runs-list", "lenet runs"),
    Step("runs-sort", "lenet runs --sort test --model lenet5 | head -3"),
    Step("runs-sort", "lenet runs --sort dev --json", keep=_first_json_object),
    Step("plot-one", "lenet plot runs/sgd"),
    Step("plot-one", "lenet plot runs/broken"),
    Step("plot-several", "lenet plot adam sgd patient --out compare.png"),
    Step(
        "dry-run",
        "lenet train --dry-run --model lenet5-bn --epochs 50 --num-threads 1 --progress none",
        keep=_remove_dry_run,
    ),
    Step("export-hub", "lenet export runs/adam --format hub"),
    Step("export-hub", "head -4 runs/adam/pretrained/README.md"),
    Step(
        "sigterm",
        "lenet train --name demo --epochs 20 --num-threads 1     # then kill -TERM PID from another shell",
        stop=(signal.SIGTERM, 16),
    ),
    Step("sigterm", "echo $?     # 143 for SIGTERM (128 + 15), 130 for Ctrl-C", run=lambda: str(STATUS[-1])),
    Step(
        "sigterm",
        "lenet train --resume runs/demo --num-threads 1     # continues bit for bit where it stopped",
        keep=_between(r"^best dev accuracy", r"^trained "),
    ),
]
#: The exit status of every command run so far (``echo $?`` shows the last).
STATUS: list[int] = []


def _stopped(line: str, sig: signal.Signals, step: int) -> str:
    """Run ``line``, send it ``sig`` once its run's ``metrics.jsonl`` holds the dev row of ``step``; its output."""
    proc = subprocess.Popen(shlex.split(line), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = Path("runs", line.split("--name ")[1].split()[0], "metrics.jsonl")
    while proc.poll() is None:
        rows = [json.loads(r) for r in metrics.read_text().splitlines()] if metrics.exists() else []
        if any(r.get("kind") == "dev" and r.get("step") == step for r in rows):
            proc.send_signal(sig)
            break
        time.sleep(0.01)
    out = proc.communicate()[0]
    STATUS.append(proc.returncode)
    return out


def _lenet(argv: list[str]) -> str:
    """What ``lenet ARGV`` printed (both streams), run in this process."""
    from lenetlab.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        STATUS.append(main(argv) or 0)
    return buf.getvalue()


def run_step(step: Step) -> list[str]:
    """Run ``step`` in the current folder; its output lines as the block shows them."""
    line = step.run if callable(step.run) else (step.run or step.shown).split("     #")[0]
    if callable(line):
        out = line() or ""
    elif step.stop:
        out = _stopped(line, *step.stop)
    elif line.startswith("lenet ") and not set("|>'\"") & set(line):
        out = _lenet(shlex.split(line)[1:])
    else:
        done = subprocess.run(line, shell=True, capture_output=True, text=True, env={**os.environ, "COLUMNS": "110"})
        out = done.stdout + done.stderr
        STATUS.append(done.returncode)
    lines = [x.rstrip() for x in out.rstrip("\n").splitlines()]
    return step.keep(lines) if step.keep else lines


def generate(fast: bool = False) -> dict[str, str]:
    """Run the steps (``fast``: only those that take seconds) in a new empty folder; each block's text."""
    blocks: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        for step in STEPS:
            if fast and not step.fast:
                continue
            lines = run_step(step)
            if step.block:
                blocks.setdefault(step.block, []).extend([f"$ {step.shown}", *lines])
    return {name: "\n".join(lines) + "\n" for name, lines in blocks.items()}


#: What differs from one run of the same command to the next, and what it is compared as.
VARYING = [
    (r"/tmp/[\w./-]+", "/tmp/X"),
    (r"(interrupted|terminated \(SIGTERM\)) at step \d+", r"\1 at step N"),  # how soon the signal lands
    (r"events\.out\.tfevents\.[\w.]+", "events.out.tfevents.X"),
    (r"\d[\d,]*(\.\d+)? ex/s", "N ex/s"),
    (r"\d+(\.\d+)? ?s\b", "T s"),
    (r'"(train_time|examples_per_sec|modified|time)": [\d.e+-]+', r'"\1": N'),
    (r"^(train|epoch|dev|test),(\d+),([\d.]+),([\d.e-]+),([\d.]+),([\d.]*),[\d.,]*", r"\1,\2,\3,\4,\5,\6,N"),
    (r"T s(\s+)[\d,]+", r"T s\1N"),  # the ex/s column of lenet runs, after its train time
    (r"[ \t]+", " "),
]


def normalise(text: str) -> str:
    """``text`` with what legitimately varies between runs replaced by placeholders (see :data:`VARYING`)."""
    lines = []
    for line in text.splitlines():
        for pattern, repl in VARYING:
            line = re.sub(pattern, repl, line)
        lines.append(line.strip())
    return "\n".join(lines)


def pages() -> list[Path]:
    """README.md and every page under docs/."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def update_text(text: str, blocks: dict[str, str]) -> str:
    """``text`` with every marked block whose output drifted from ``blocks`` rewritten (the others kept as
    they are, whatever their timings)."""
    stale = set(drifted(text, blocks))
    return REGION.sub(
        lambda m: m.group(1) + (blocks[m["name"]] if m["name"] in stale else m["body"]) + m.group(4), text
    )


def drifted(text: str, blocks: dict[str, str]) -> list[str]:
    """The names of the marked blocks of ``text`` whose output differs from ``blocks`` (after :func:`normalise`)."""
    return [
        m["name"]
        for m in REGION.finditer(text)
        if m["name"] in blocks and normalise(m["body"]) != normalise(blocks[m["name"]])
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block drifted")
    p.add_argument("--fast", action="store_true", help="only the blocks whose commands take seconds")
    a = p.parse_args(argv)
    blocks = generate(fast=a.fast)
    found = {m["name"] for page in pages() for m in REGION.finditer(page.read_text(encoding="utf-8"))}
    if set(blocks) - found:
        raise SystemExit(f"blocks without a marked place in the docs: {', '.join(sorted(set(blocks) - found))}")
    stale = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        stale += [f"{page.relative_to(REPO)}: {name}" for name in drifted(text, blocks)]
        if not a.check and update_text(text, blocks) != text:
            page.write_text(update_text(text, blocks), encoding="utf-8")
    print("\n".join(("drifted: " if a.check else "rewritten: ") + s for s in stale) or "no drift")
    return 1 if (a.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
