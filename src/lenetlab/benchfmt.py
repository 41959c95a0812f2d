"""The reports of ``lenet bench ops|train|infer``: one builder per kind of report, whose blocks (tables and
paragraphs) ``lenet bench`` prints as text and ``benchmarks/docs_tables.py`` writes into the docs as
markdown. A kind is the ``meta.kind`` of a results file; ``data`` is the command's ``--json`` output.
"""

from dataclasses import dataclass, field

from lenetlab.textfmt import Table, columns, num, ratio, render, sci, sig, threads

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
        rows = [[f"`{r['what']}`", ratio(r["scratch_ratio"])] for r in convs] + [
            ["all three together", ratio(together)]
        ]
        return [Table([f"convolution, forward+backward, batch {batch}", "im2col time / PyTorch time"], rows, "lr")]
    table = columns(
        d["rows"],
        ("layer", "l", "{what}"),
        ("batch", "r", "{batch}"),
        ("pass", "l", "{mode}"),
        ("PyTorch ms", "r", lambda r: sig(r["torch_ms"])),
        ("im2col ms", "r", lambda r: sig(r["scratch_ms"])),
        ("im2col / PyTorch", "r", lambda r: ratio(r["scratch_ratio"])),
        ("loop ms", "r", lambda r: sig(r["loop_ms"]) + (" ~" if r.get("loop_note") else "")),
        ("loop / PyTorch", "r", lambda r: ratio(r["loop_ratio"])),
    )
    return [
        table,
        f"{threads(d['threads'])}, float32{', --quick' if d.get('quick') else ''}; "
        "times are the best of torch.utils.benchmark's timed blocks, the loop reference is timed once; "
        "~ marks a loop time measured on a sub-batch and scaled to the full batch.",
    ]


def train(d: dict, view: str | None = None) -> list:
    """``lenet bench train``: examples/s of every path at every thread count; view ``time-to-accuracy``."""
    if view == "time-to-accuracy":
        return _time_to_accuracy(d) if "time_to_accuracy" in d else []
    names = list(dict.fromkeys(k.rsplit(" @", 1)[0] for k in d["throughput"]))
    counts = sorted({int(k.rsplit(" @", 1)[1][:-1]) for k in d["throughput"]})
    header = [f"path (batch {d['batch_size']})"]
    for t in counts:
        header += [threads(t), "ratio"]
    rows = []
    for n in names:
        cells = [BASELINE if n == "baseline" else f"lenetlab {n}"]
        for k in (f"{n} @{t}t" for t in counts):
            cells += [f"{num(d['throughput'][k])} ex/s", ratio(d["ratio"][k])] if k in d["throughput"] else ["–", "–"]
        rows.append(cells)
    best = d["best_ratio_variant"].rsplit(" @", 1)
    return [
        Table(header, rows, "l" + "rr" * len(counts)),
        f"Best ratio at the same model, batch and thread count: **{ratio(d['best_ratio_same_threads'])}** "
        f"(lenetlab {best[0]}, {threads(int(best[1][:-1]))}); the fastest lenetlab "
        f"path is {ratio(d['best_vs_best_baseline'])} the fastest baseline.",
    ]


def _baseline_words(bt: dict, sp: dict) -> str:
    """How the baseline recipe fared against the target, and lenetlab's speed-up to it."""
    if bt["reached"]:
        return (
            f" It reached {bt['test_accuracy']:.2%} after {bt['train_time']:.1f} s (epoch {bt['epoch']:.2f}): "
            f"lenetlab is **{sp['ratio']:.1f}× faster** to the target."
        )
    best = max(c[2] for c in bt["curve"])
    return (
        f" Trained on for {sp['budget_multiple']:g}× lenetlab's time ({bt['train_time']:.1f} s, "
        f"{bt['epoch']:.2f} epochs) it had not reached the target (best check {best:.2%}): lenetlab is "
        f"**more than {sp['ratio']:.1f}× faster** to it."
    )


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
        out[-1] += _baseline_words(bt, sp)
    curve = [[f"{a:.1f} s", f"{e:.2f}", f"{acc:.2%}"] for a, e, acc in t["curve"]]
    return out + [Table(["training time", "epoch", "test accuracy"], curve, "rrr")]


def step_profile(d: dict, view: str | None = None) -> list:
    """``lenet bench train --profile``: milliseconds per phase of a step for each path, and the top operators."""
    phase_cols = [(f"{PHASE_NAMES.get(ph, ph)} ms", "r", f"{{phases_ms[{ph}]:.2f}}") for ph in d["phases"]]
    out = [
        columns(
            d["paths"],
            (
                f"path (batch {d['batch_size']}, {threads(d['threads'])})",
                "l",
                lambda r: STEP_PATHS.get(r["name"], r["name"]),
            ),
            *phase_cols,
            ("total ms", "r", "**{total_ms:.2f}**"),
            ("examples/s", "r", lambda r: num(r["examples_per_sec"])),
            ("vs baseline", "r", lambda r: ratio(r["vs_baseline"])),
            ("model step alone ms", "r", "{model_step_ms:.2f}"),
            ("cap with free data", "r", lambda r: ratio(r["cap_free_data"])),
        ),
        f"{d['dataset']} ({num(d['train_examples'])} training images); each phase is the median over "
        f"{num(d['steps'])} steps in {d['rounds']} interleaved rounds and the total the median of the steps' "
        "totals, so the phases add up to it only roughly. Model step alone: forward + backward + optimiser "
        "on one fixed batch; cap with free data: the baseline's total divided by it.",
    ]
    o = d.get("ops")
    if not o:
        return out
    head = f"top aten operators, {o['path']} ({o['profiled_ms_per_step']:.2f} ms of self CPU time recorded per step)"
    table = columns(
        o["ops"],
        (head, "l", "`{op}`"),
        ("self CPU ms per step", "r", "{self_ms_per_step:.2f}"),
        ("share", "r", "{share:.1%}"),
        ("calls per step", "r", "{calls_per_step:g}"),
    )
    note = f"Recorded with torch.profiler over {o['steps']} steps; the profiler's own overhead inflates every figure"
    return [*out, table, note + " a little."]


def infer(d: dict, view: str | None = None) -> list:
    """``lenet bench infer``: throughput, latency and agreement with eager PyTorch of every backend."""
    table = columns(
        [{**b, "name": name} for name, b in d["backends"].items()],
        ("backend", "l", "{name}"),
        (f"images/s (batch {num(d['batch_size'])})", "r", lambda b: num(b["images_per_sec"])),
        ("p50 latency", "r", lambda b: f"{sig(b['p50_ms'])} ms"),
        ("p99 latency", "r", lambda b: f"{sig(b['p99_ms'])} ms"),
        ("max abs diff", "r", lambda b: sci(b["max_abs_diff"])),
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
