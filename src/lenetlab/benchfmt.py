"""The reports of ``lenet bench ops|train|infer``: one builder per kind of report, whose blocks (tables and
paragraphs) ``lenet bench`` prints as text and ``benchmarks/docs_tables.py`` writes into the docs as
markdown, so every label and figure format is written once.

A report kind is the ``meta.kind`` of its results file (``bench-ops``, ``bench-train``,
``bench-step-profile``, ``bench-infer``); ``data`` is the command's ``--json`` output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lenetlab.textfmt import Table, num, ratio, render, sci, sig, threads

#: The baseline of the training benchmarks and the lenetlab paths of the step profile, as the reports name them.
BASELINE = "baseline: a typical tutorial's per-sample PIL pipeline + DataLoader"
STEP_PATHS = {
    "baseline": BASELINE,
    "lenetlab": "lenetlab (tensor-resident batches, as the Runner's)",
    "lenetlab + channels-last + bf16": "lenetlab + channels-last + bf16 autocast",
}
PHASE_NAMES = {"optimizer": "optimiser"}


def ops(d: dict, view: str | None = None) -> list:
    """``lenet bench ops``: every layer's times and ratios to PyTorch; view ``target``: the convolutions'
    forward+backward ratio at the largest batch."""
    if view == "target":
        batch = max(r["batch"] for r in d["rows"])
        convs = [
            r for r in d["rows"] if r["what"] in ("C1", "C3", "C5") and r["batch"] == batch and r["mode"] == "fwd+bwd"
        ]
        together = sum(r["scratch_ms"] for r in convs) / sum(r["torch_ms"] for r in convs)
        return [
            Table(
                [f"convolution, forward+backward, batch {batch}", "im2col time / PyTorch time"],
                [[f"`{r['what']}`", ratio(r["scratch_ratio"])] for r in convs]
                + [["all three together", ratio(together)]],
                "lr",
            )
        ]
    rows = [
        [
            r["what"],
            str(r["batch"]),
            r["mode"],
            sig(r["torch_ms"]),
            sig(r["scratch_ms"]),
            ratio(r["scratch_ratio"]),
            sig(r["loop_ms"]) + (" ~" if r.get("loop_note") else ""),
            ratio(r["loop_ratio"]),
        ]
        for r in d["rows"]
    ]
    return [
        Table(
            ["layer", "batch", "pass", "PyTorch ms", "im2col ms", "im2col / PyTorch", "loop ms", "loop / PyTorch"],
            rows,
            "lrlrrrrr",
        ),
        f"{threads(d['threads'])}, float32{', --quick' if d.get('quick') else ''}; "
        "times are the best of torch.utils.benchmark's timed blocks, the loop reference is timed once; "
        "~ marks a loop time measured on a sub-batch and scaled to the full batch.",
    ]


def _variants(throughput: dict) -> tuple[list[str], list[int]]:
    """The variant names (in order) and thread counts of ``{"NAME @Tt": examples/s}``."""
    names, counts = [], set()
    for k in throughput:
        name, t = k.rsplit(" @", 1)
        counts.add(int(t[:-1]))
        if name not in names:
            names.append(name)
    return names, sorted(counts)


def train(d: dict, view: str | None = None) -> list:
    """``lenet bench train``: examples/s of every path at every thread count; view ``time-to-accuracy``."""
    if view == "time-to-accuracy":
        return _time_to_accuracy(d) if "time_to_accuracy" in d else []
    names, counts = _variants(d["throughput"])
    header = [f"path (batch {d['batch_size']})"]
    for t in counts:
        header += [f"{t} thread{'s' if t > 1 else ''}", "ratio"]
    rows = []
    for n in names:
        cells = [BASELINE if n == "baseline" else f"lenetlab {n}"]
        for t in counts:
            k = f"{n} @{t}t"
            cells += [f"{num(d['throughput'][k])} ex/s", ratio(d["ratio"][k])] if k in d["throughput"] else ["–", "–"]
        rows.append(cells)
    best = d["best_ratio_variant"].rsplit(" @", 1)
    return [
        Table(header, rows, "l" + "rr" * len(counts)),
        f"Best ratio at the same model, batch and thread count: **{ratio(d['best_ratio_same_threads'])}** "
        f"(lenetlab {best[0]}, {best[1][:-1]} thread{'s' if best[1] != '1t' else ''}); the fastest lenetlab "
        f"path is {ratio(d['best_vs_best_baseline'])} the fastest baseline.",
    ]


def _time_to_accuracy(d: dict) -> list:
    t, b = d["time_to_accuracy"], d.get("baseline_same_budget")
    state = "reached" if t["reached"] else "NOT reached"
    out = [
        f"Target {state}: **{t['test_accuracy']:.2%} test accuracy after {t['train_time']:.1f} s of training** "
        f"(epoch {t['epoch']:.2f}; {t['wall_time']:.1f} s of wall time including the test evaluations)."
    ]
    if b:
        out.append(
            f"The baseline recipe (per-sample pipeline, `lenet5`, SGD lr 0.1, batch 64) after the same "
            f"{b['train_time']:.1f} s of training: {b['test_accuracy']:.2%} test accuracy ({b['epochs']:.2f} epochs)."
        )
    bt, sp = d.get("baseline_time_to_accuracy"), d.get("speedup_to_target")
    if bt and sp and sp["ratio"] is not None:
        if bt["reached"]:
            out[-1] += (
                f" It reached {bt['test_accuracy']:.2%} after {bt['train_time']:.1f} s (epoch {bt['epoch']:.2f}): "
                f"lenetlab is **{sp['ratio']:.1f}× faster** to the target."
            )
        else:
            best = max(c[2] for c in bt["curve"])
            out[-1] += (
                f" Trained on for {sp['budget_multiple']:g}× lenetlab's time ({bt['train_time']:.1f} s, "
                f"{bt['epoch']:.2f} epochs) it had not reached the target (best check {best:.2%}): lenetlab is "
                f"**more than {sp['ratio']:.1f}× faster** to it."
            )
    return out + [
        Table(
            ["training time", "epoch", "test accuracy"],
            [[f"{a:.1f} s", f"{e:.2f}", f"{acc:.2%}"] for a, e, acc in t["curve"]],
            "rrr",
        )
    ]


def step_profile(d: dict, view: str | None = None) -> list:
    """``lenet bench train --profile``: milliseconds per phase of a step for each path, and the top operators."""
    phases = d["phases"]
    rows = [
        [
            STEP_PATHS.get(r["name"], r["name"]),
            *(f"{r['phases_ms'][ph]:.2f}" for ph in phases),
            f"**{r['total_ms']:.2f}**",
            num(r["examples_per_sec"]),
            ratio(r["vs_baseline"]),
            f"{r['model_step_ms']:.2f}",
            ratio(r["cap_free_data"]),
        ]
        for r in d["paths"]
    ]
    out = [
        Table(
            [
                f"path (batch {d['batch_size']}, {threads(d['threads'])})",
                *(f"{PHASE_NAMES.get(ph, ph)} ms" for ph in phases),
                "total ms",
                "examples/s",
                "vs baseline",
                "model step alone ms",
                "cap with free data",
            ],
            rows,
            "l" + "r" * (len(phases) + 5),
        ),
        f"{d['dataset']} ({num(d['train_examples'])} training images); each phase is the median over "
        f"{num(d['steps'])} steps in {d['rounds']} interleaved rounds and the total the median of the steps' "
        "totals, so the phases add up to it only roughly. Model step alone: forward + backward + optimiser "
        "on one fixed batch; cap with free data: the baseline's total divided by it.",
    ]
    ops_ = d.get("ops")
    if ops_:
        out += [
            Table(
                [
                    (
                        f"top aten operators, {ops_['path']} ({ops_['profiled_ms_per_step']:.2f} ms of self CPU "
                        "time recorded per step)"
                    ),
                    "self CPU ms per step",
                    "share",
                    "calls per step",
                ],
                [
                    [f"`{o['op']}`", f"{o['self_ms_per_step']:.2f}", f"{o['share']:.1%}", f"{o['calls_per_step']:g}"]
                    for o in ops_["ops"]
                ],
                "lrrr",
            ),
            (
                f"Recorded with torch.profiler over {ops_['steps']} steps; the profiler's own overhead "
                "inflates every figure a little."
            ),
        ]
    return out


def infer(d: dict, view: str | None = None) -> list:
    """``lenet bench infer``: throughput, latency and agreement with eager PyTorch of every backend."""
    table = Table(
        ["backend", f"images/s (batch {num(d['batch_size'])})", "p50 latency", "p99 latency", "max abs diff"],
        [
            [name, num(b["images_per_sec"]), f"{sig(b['p50_ms'])} ms", f"{sig(b['p99_ms'])} ms", sci(b["max_abs_diff"])]
            for name, b in d["backends"].items()
        ],
        "lrrrr",
    )
    note = [
        f"Model `{d['model']}` from `{d['checkpoint']}`, {threads(d['threads'])}; latency over "
        f"{num(d['calls'])} single-image calls; max abs diff: scores against eager PyTorch."
    ]
    return [table, "\n".join(note + [f"Skipped: {k} ({v})." for k, v in d.get("skipped", {}).items()])]


#: Each report kind's builder and the views the terminal shows, in order.
REPORTS = {
    "bench-ops": (ops, (None, "target")),
    "bench-train": (train, (None, "time-to-accuracy")),
    "bench-step-profile": (step_profile, (None,)),
    "bench-infer": (infer, (None,)),
}


def markdown(kind: str, data: dict, view: str | None = None) -> list[str]:
    """One view of a report as markdown lines (for the docs)."""
    return render(REPORTS[kind][0](data, view), markdown=True)


def text(kind: str, data: dict) -> str:
    """Every view of a report as terminal text, under a line naming torch's version and the threads."""
    build, views = REPORTS[kind]
    counts = data["threads"] if isinstance(data["threads"], list) else [data["threads"]]
    command = "bench train --profile" if kind == "bench-step-profile" else kind.replace("-", " ")
    head = f"lenet {command}: torch {data['torch']}, {', '.join(map(str, counts))} thread(s), CPU"
    return "\n".join(render([head, *(b for v in views for b in build(data, v))], markdown=False))


@dataclass
class BenchResult:
    """What a benchmark returns: its figures (``data``, what ``--json`` prints) and the ``kind`` of report
    that shows them as :attr:`text`; ``notes`` and ``status`` as every command's result has them."""

    kind: str
    data: dict
    notes: list = field(default_factory=list)
    status: int = 0

    @property
    def text(self) -> str:
        return text(self.kind, self.data)
