"""Render the docs' tables from the results files and rewrite the marked regions of the pages.

    python benchmarks/docs_tables.py            # rewrite every marked table in README.md and docs/*.md
    python benchmarks/docs_tables.py --check    # change nothing; exit 1 naming the stale tables

A marked region of a page is::

    <!-- table: results/mnist.json -->
    (generated: the table and a line naming the source, the machine and the command that regenerates it)
    <!-- end table -->

After ``table:`` comes a results file (relative to the repository root; see ``results_io.py``),
optionally followed by a view name (``<!-- table: results/train-speed.json time-to-accuracy -->``);
``<!-- table: glance -->`` is README's at-a-glance table, which quotes several files. The file's
``meta.kind`` picks the renderer. ``tests/test_docs.py`` renders every region in memory and fails
when a page disagrees with its results file, so a figure in the docs cannot drift from its file.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from lenetlab import benchfmt
from lenetlab.textfmt import Table, num, pct, ratio, sci, sig

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"(^```.*?^```[^\n]*$)", re.DOTALL | re.MULTILINE)
REGION = re.compile(r"(<!-- table: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- end table -->)", re.DOTALL)


# ----------------------------------------------------------------------------- formatting
def table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """A markdown table; ``align`` has one ``l``/``r`` per column (default: all left)."""
    return Table(header, rows, align).markdown()


def code(s: str) -> str:
    return f"`{s}`"


# ----------------------------------------------------------------------------- files
def load(path: str) -> dict:
    """A results file (``meta`` plus ``data`` or ``rows``), path relative to the repository root."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from results_io import load_results

    return load_results(REPO / path)


def link(target: str, doc_dir: Path) -> str:
    """The relative link from a page in ``doc_dir`` to ``target`` (relative to the repository root)."""
    return Path(os.path.relpath(REPO / target, doc_dir)).as_posix()


def machine(meta: dict) -> str:
    hw = meta["hardware"]
    gpu = hw.get("gpu") or "no GPU"
    return f"{hw['cpu']}, {hw['cores']} cores, {gpu}, Python {meta['python']}, torch {meta['torch']}"


TRANSCRIBED = (
    "figures first published in the README at that commit and copied here unchanged; the runs' own "
    "outputs were not kept"
)


def _load(meta: dict) -> list[str]:
    if meta.get("load"):
        return [meta["load"]]
    if meta.get("load_average") is not None:
        return [f"load average {meta['load_average']} at the start"]
    return []


def _notes(notes: list[str]) -> str:
    return f" ({'; '.join(notes)})" if notes else ""


def _provenance(body: dict) -> str:
    """Where the figures come from: the file's one source, or each group of rows with its own."""
    meta, rows = body["meta"], body.get("rows") or []
    if not rows or not all(r.get("source") for r in rows):
        return f"{meta['source']}, on {machine(meta)}, {meta['date']}" + _notes(
            _load(meta) + ([TRANSCRIBED] if meta.get("transcribed") else [])
        )
    groups: dict[tuple, list[str]] = {}
    loads: dict[tuple, float] = {}
    for r in rows:
        key = (
            r["source"],
            r.get("machine") or machine(meta),
            r.get("date") or meta["date"],
            bool(r.get("transcribed")),
        )
        groups.setdefault(key, []).append(str(r.get("id") or r.get("backend") or r.get("label")))
        if r.get("load_average") is not None:
            loads[key] = max(loads.get(key, 0.0), r["load_average"])
    ordered = sorted(groups.items(), key=lambda kv: len(kv[1]))
    parts = []
    for i, ((source, mach, date, transcribed), ids) in enumerate(ordered):
        who = (
            ""
            if len(ordered) == 1
            else (
                "the other rows: "
                if i == len(ordered) - 1 and len(ids) > 2
                else ", ".join(f"`{x}`" for x in ids) + ": "
            )
        )
        key = (source, mach, date, transcribed)
        notes = (
            [f"load average up to {loads[key]} at the start"]
            if key in loads
            else _load(meta)
            if source == meta["source"]
            else []
        ) + ([TRANSCRIBED] if transcribed else [])
        parts.append(f"{who}{source}, on {mach}, {date}{_notes(notes)}")
    return "; ".join(parts)


def caption(path: str, body: dict, doc_dir: Path) -> list[str]:
    """The line under every table: where the figures come from and how to regenerate them."""
    meta = body["meta"]
    words = [f"Source: [{path}]({link(path, doc_dir)}): {_provenance(body)}"]
    how = meta.get("regenerate")
    if how:
        cmd = how.split()[0] in ("python", "bash", "lenet")
        words.append(f"regenerate: `{how}`" if cmd else f"to regenerate: {how}")
        if meta.get("regenerate_note"):
            words[-1] += f" ({meta['regenerate_note']})"
    else:
        words.append(f"command: `{meta['command']}`")
    if "benchmarks/" in (how or meta["command"]):  # scripts ship with the repository, not with the package
        words.append("run from a clone of the repository")
    return ["", "<sub>" + ". ".join(w[0].upper() + w[1:] for w in words) + ".</sub>"]


# ----------------------------------------------------------------------------- renderers
def _spread(e: dict, n: int) -> str:
    if n < 2:
        return "one run"
    sd = f", sd {e['sd']:.2f}" if e.get("sd") is not None else ""
    return f"{e['min']:.2f}–{e['max']:.2f}%{sd}"


def _time(t: dict | None) -> str:
    if not t or t.get("mean") is None:
        return "n/a"
    mean = f"{t['mean']:,.1f}" if t["mean"] < 10 else f"{t['mean']:,.0f}"
    if t["min"] == t["max"] == t["mean"]:
        return f"{mean} s"
    lo = f"{t['min']:,.1f}" if t["min"] < 10 else f"{t['min']:,.0f}"
    hi = f"{t['max']:,.1f}" if t["max"] < 10 else f"{t['max']:,.0f}"
    return f"{mean} s ({lo}–{hi})"


def render_mnist_runs(body: dict, view: str | None) -> list[str]:
    rows = body["rows"]
    if view:
        rows = [r for r in rows if r["model"] == view]
    out = table(
        [
            "run",
            "model",
            "test error",
            "spread (min–max, sd)",
            "runs",
            "dev accuracy",
            "training time per run",
            "command",
        ],
        [
            [
                r["label"],
                code(r["model"]),
                f"**{pct(r['test_error_pct']['mean'])}**",
                _spread(r["test_error_pct"], len(r["seeds"])),
                str(len(r["seeds"])),
                pct(r.get("dev_accuracy_pct")),
                _time(r.get("train_time_s")),
                code(r["command"]),
            ]
            for r in rows
        ],
        "llrlrrrl",
    )
    notes = [f"- `{r['id']}`: {r['note']}." for r in rows if r.get("note")]
    return out + ([""] + notes if notes else [])


def render_ensembles(body: dict, view: str | None) -> list[str]:
    return table(
        ["ensemble", "test error", "dev error", "command"],
        [
            [
                r["label"],
                f"**{pct(r['test_error_pct'])}**" if i == 0 else pct(r["test_error_pct"]),
                pct(r.get("dev_error_pct")) if r.get("dev_error_pct") is not None else "–",
                code(r["command"]),
            ]
            for i, r in enumerate(body["rows"])
        ],
        "lrrl",
    )


def render_committee(body: dict, view: str | None) -> list[str]:
    rows = []
    for r in body["rows"]:
        if r["id"] == "committee":
            errs = r["member_test_error_pct"]
            members = (
                "members: " + ", ".join(pct(e) for e in errs)
                if len(errs) <= 4
                else f"members {pct(min(errs))}–{pct(max(errs))}"
            )
            rows.append(
                [
                    r["label"],
                    f"**{pct(r['test_error_pct'])}**",
                    members,
                    str(len(r["chosen"])),
                    pct(r["dev_accuracy_pct"]),
                    "–",
                    code(r["command"]),
                ]
            )
        else:
            rows.append(
                [
                    code(r["id"]),
                    pct(r["test_error_pct"]["mean"]),
                    _spread(r["test_error_pct"], len(r["seeds"])),
                    str(len(r["seeds"])),
                    pct(r.get("dev_accuracy_pct")),
                    _time(r.get("train_time_s")),
                    code(r["command"]),
                ]
            )
    out = table(
        ["members", "test error", "spread", "networks", "dev accuracy", "training time per network", "command"],
        rows,
        "lrlrrrl",
    )
    c = next(r for r in body["rows"] if r["id"] == "committee")
    target = f"the {pct(c['target_pct'])} target"
    verdict = (
        f"meets {target}" if c["test_error_pct"] <= c["target_pct"] else f"misses {target} by {c['gap_pct']:.2f} points"
    )
    held = c.get("held_out_dev_error_pct")
    why = (
        f"; on held-out halves of the dev split greedy selection erred {held['greedy']:.2f}% and all the "
        f"networks {held['all']:.2f}%"
        if held
        else ""
    )
    who = f"all {len(c['chosen'])} networks" if c.get("rule") == "all" else ", ".join(code(n) for n in c["chosen"])
    return out + ["", f"The committee ({who}{why}) {verdict}; {c['reference']}."]


def render_tries(body: dict, view: str | None) -> list[str]:
    return table(
        ["setting", "dev accuracy", "test error", "command"],
        [[r["label"], pct(r["dev_accuracy_pct"]), pct(r["test_error_pct"]), code(r["command"])] for r in body["rows"]],
        "lrrl",
    )


def render_recipes(body: dict, view: str | None) -> list[str]:
    out = table(["recipe", "result", "command"], [[r["label"], r["result"], code(r["command"])] for r in body["rows"]])
    return out + (["", f"Commands: {body['meta']['commands']}."] if body["meta"].get("commands") else [])


def render_search(body: dict, view: str | None) -> list[str]:
    rows = []
    for r in body["rows"]:
        t, n = r["train_time_s"], len(r["seeds"])
        lower = "≥ " if r["reached"] < n else ""  # unreached seeds count as their whole schedule
        rows.append(
            [
                r["label"],
                f"{r['reached']}/{n}",
                f"{lower}{t['median']:.2f} s",
                f"{t['max']:.2f} s",
                f"{r['epoch_median']:.2f}",
                " ".join(f"{x:.1f}" for x in t["per_seed"]),
            ]
        )
    out = table(
        ["variant", "seeds reaching 99%", "median time to 99%", "slowest", "median epoch", "per seed (s)"],
        rows,
        "lrrrrl",
    )
    return out + ["", "A seed that never reached the target counts with its whole schedule's training time."]


def render_compare(body: dict, view: str | None) -> list[str]:
    d = body["data"]
    out = table(
        ["check", "inputs", "n", "max abs difference", "allowed", "within tolerance"],
        [
            [
                r["check"],
                r["inputs"],
                num(r["n"]),
                sci(r["max_abs_diff"]),
                sci(r["allowed"]) if "allowed" in r else "",
                "yes" if r["ok"] else "**no**",
            ]
            for r in d["rows"]
        ],
        "llrrrl",
    )
    return out + [
        "",
        f"Weights: {d['weights']}; tolerance {d['tolerance']:g} relative to the largest value "
        f"compared (absolute below 1); argmax agreement "
        f"{d['argmax_agreement']:.2%}; largest |output| {d['max_abs_output']:.3g}.",
    ]


def render_eval(body: dict, view: str | None) -> list[str]:
    d = body["data"]
    names = d.get("class_names") or [str(i) for i in range(len(d["per_class"]))]
    out = table(
        ["checkpoint", "split", "images", "accuracy", "loss"],
        [[code(d["checkpoint"]), d["split"], num(d["n"]), f"**{d['accuracy']:.2%}**", f"{d['loss']:.4f}"]],
        "llrrr",
    )
    return out + [
        "",
        *table(["class", *names], [["accuracy", *(f"{a:.1%}" for a in d["per_class"])]], "l" + "r" * len(names)),
    ]


def render_preprocess(body: dict, view: str | None) -> list[str]:
    """Median ms per stage of preparing one request's image, a drawn PNG and a JSON body, against the targets."""
    d = body["data"]
    labels = {
        "read": "read (PNG: header; JSON: parse and validate)",
        "decode": "decode and grayscale",
        "normalise": "normalise (polarity, crop, fit 20×20, centre of mass)",
        "to_tensor": "to tensor",
        "total": "**total, as the server runs it**",
    }
    rows = [[label, f"{d['png_ms'][k]:.3g}", f"{d['json_ms'][k]:.3g}"] for k, label in labels.items()]
    rows.append(["target for the total", f"{d['target_ms']['png']:g}", f"{d['target_ms']['json']:g}"])
    load = f"load average {d['loadavg_1min_before']:.1f} at the start, {d['loadavg_1min_after']:.1f} at the end"
    return table(["stage (median ms)", "280×280 drawn PNG", "28×28 JSON pixels"], rows, "lrr") + [
        "",
        f"{d['repeat']} calls each, one thread; {load}.",
    ]


def render_export(body: dict, view: str | None) -> list[str]:
    d = body["data"]
    return table(
        ["model", "exporter", "opset", "dynamic batch", "size", "max abs diff vs PyTorch"],
        [
            [
                code(d["model"]),
                d["exporter"],
                str(d["opset"]),
                "yes" if d["dynamic_batch"] else "no",
                f"{d['bytes'] / 1024:,.0f} KiB",
                sci(d["max_abs_diff"]),
            ]
        ],
        "llrlrr",
    )


def render_ddp(body: dict, view: str | None) -> list[str]:
    m = body["meta"]
    out = table(
        ["setting", "examples/s (median)", "rounds", "vs 1 process × 1 thread"],
        [
            [
                r["setting"],
                num(r["examples_per_sec"]),
                "; ".join(num(x) for x in r["rounds"]),
                ratio(r["vs_one_process_one_thread"]),
            ]
            for r in body["rows"]
        ],
        "lrrr",
    )
    return out + [
        "",
        f"`{m['model']}` on {m['dataset']} ({num(m['train_examples'])} training images), {m['epochs']} "
        f"epoch, global batch {m['global_batch']}; examples/s over the training steps (rank 0's clock; "
        f"evaluation and checkpoint writes excluded), median of {m['rounds']} interleaved rounds.",
    ]


def render_serve(body: dict, view: str | None) -> list[str]:
    rows = body["rows"]
    out = table(
        ["backend", "p50", "p90", "p99", "requests/s", "errors", "command"],
        [
            [
                r["backend"],
                f"{r['p50_ms']:.1f} ms",
                f"{r['p90_ms']:.1f} ms",
                f"{r['p99_ms']:.1f} ms",
                f"{r['requests_per_s']:.1f}",
                str(r["errors"]),
                code(r["command"]),
            ]
            for r in rows
        ],
        "lrrrrrl",
    )
    r = rows[0]
    return out + [
        "",
        f"{num(r['requests'])} `POST /predict` of a 280×280 canvas PNG per backend, {r['concurrency']} "
        f"concurrent clients; the load generator shares the {r['cpu_count']} cores with the server, so "
        "these figures are a floor for a real deployment.",
    ]


def render_serve_run(body: dict, view: str | None) -> list[str]:
    d = body["data"]
    if view == "explain":
        return render_serve_explain(d)
    rows = []
    for name, r in (("mixed PNG/JSON", d["load"]), ("large PNGs", d.get("large_images"))):
        if r is None:
            continue
        what = (
            f"{num(r['requests'])} requests, {r['clients']} clients"
            if "clients" in r
            else f"{r['images']} concurrent {r['megapixels']:g}-megapixel PNGs ({r['body_kb']:.0f} kB each)"
        )
        rows.append(
            [
                name,
                what,
                f"{r['p50_ms']:.0f} ms",
                f"{r['p99_ms']:.0f} ms",
                str(r["dropped"]),
                str(r["errors_5xx"]),
                str(r["errors_4xx"]),
                f"+{r['server_peak_rss_above_idle_mb']:.0f} MB",
            ]
        )
    out = table(
        ["load", "requests", "p50", "p99", "dropped", "5xx", "4xx", "server peak memory above idle"], rows, "llrrrrrr"
    )
    load = d["load"]
    return out + [
        "",
        f"`{d['model']}` on the {d['backend']} backend; every answer compared with the sequential answer "
        f"to the same body: {load['mismatched']} differed. The load generator shares the cores with the "
        "server, so latency here is mostly queueing: 200 clients over a few requests per second each.",
    ]


def render_serve_async(body: dict, view: str | None) -> list[str]:
    """``serve_load.py``'s two servers under the same asyncio load (and the overload run, if any)."""
    d = body["data"]
    what = {
        "baseline": "baseline (`--max-batch 1 --workers 1`)",
        "default": "default (batching on)",
        "target": "the server at `--url`",
    }
    rows = [
        [
            what[name],
            f"{r['requests_per_s']:.1f}",
            f"{r['p50_ms']:.0f} ms",
            f"{r['p90_ms']:.0f} ms",
            f"{r['p99_ms']:.0f} ms",
            str(r["dropped"]),
            str(r["errors_5xx"]),
            str(r["mismatched"]),
            f"{r['server_cpu_ms_per_request']:.1f} ms" if "server_cpu_ms_per_request" in r else "",
            f"{r['server_peak_rss_mb']:.0f} MB" if "server_peak_rss_mb" in r else "",
        ]
        for name, r in d["runs"].items()
    ]
    out = table(
        ["server", "requests/s", "p50", "p90", "p99", "dropped", "5xx", "mismatched", "server CPU/request", "peak RSS"],
        rows,
        "lrrrrrrrrr",
    )
    out += [
        "",
        f"{num(d['requests'])} `POST {d['route']}` per server ({d['body']} bodies: the "
        f"{d['distinct_bodies']} test digits of `mnist-subset`), {d['clients']} concurrent asyncio clients in "
        f"{d['client_procs']} client process{'es' if d['client_procs'] != 1 else ''}; every answer compared "
        "with the baseline's sequential answer to the same body."
        + (f" Default / baseline requests/s: {d['speedup']}x." if "speedup" in d else ""),
    ]
    o = d["runs"].get("default", {}).get("overload")
    if o:
        statuses = ", ".join(f"{num(v)} × {k}" for k, v in o["statuses"].items())
        how = ", ".join(f"{v} {k}" for k, v in o["dropped_by_error"].items())
        verdict = (
            "acceptable"
            if o["acceptable"]
            else "not acceptable (only 200 and 503 with Retry-After, and no dropped connection, are)"
        )
        out += [
            "",
            f"Overload: {num(o['clients'])} concurrent clients, {num(o['requests'])} requests: {statuses}; "
            f"{o['no_retry_after']} 503s without `Retry-After`, {o['dropped']} dropped connections"
            + (f" ({how})" if how else "")
            + f"; p99 {o['p99_ms'] / 1000:.1f} s, server peak RSS "
            f"{o['server_peak_rss_mb']:.0f} MB: {verdict}.",
        ]
    la = d["load_average"]
    return out + [
        "",
        f"The client runs in its own process(es) but on the same {d['cpu_count']} cores, shared with "
        f"other work (load average {la['start']} at the start, {la['end']} at the end): the figures "
        "are noisy.",
    ]


def render_serve_explain(d: dict) -> list[str]:
    """``POST /explain``'s server-side time per request (``serve_load.py --explain``), split into its parts."""
    e = d["explain"]
    parts = e["server_p50_parts_ms"]
    out = table(
        [
            "model",
            "requests",
            "server-side p50",
            "p90",
            "of which: preprocess",
            "forward",
            "saliency",
            "packaging",
            "client p50",
            "answer",
        ],
        [
            [
                f"`{d['model']}` ({d['backend']})",
                f"{num(e['requests'])}, {e['clients']} client" + ("s" if e["clients"] != 1 else ""),
                f"{e['server_p50_ms']:.1f} ms",
                f"{e['server_p90_ms']:.1f} ms",
                f"{parts['preprocess']:.1f} ms",
                f"{parts['forward']:.1f} ms",
                f"{parts['saliency']:.1f} ms",
                f"{parts['package']:.1f} ms",
                f"{e['client_p50_ms']:.1f} ms",
                f"{e['response_kb']:.0f} KB",
            ]
        ],
        "llrrrrrrrr",
    )
    verdict = "under" if e["server_p50_ms"] < e["target_p50_ms"] else "over"
    return out + [
        "",
        f"Server-side time = `timing_ms.total` of each answer: the shared preprocessing of the 280×280 "
        f"canvas PNG, the one forward pass with every layer recorded, the saliency backward pass and "
        f"packaging {len(e['layers'])} layers ({', '.join(e['layers'])}), the kernels and the saliency "
        f"map (the parts' p50s leave out building the answer's other fields, such as the input as a PNG). The "
        f"p50 is {verdict} the {e['target_p50_ms']} ms target; the client latency adds the "
        "HTTP round trip and reading the JSON, on cores shared with the load generator.",
    ]


def _recipe_words(recipe: dict | None) -> str:
    choices = (recipe or {}).get("choices") or {}
    val = {k: (c.get("value") if isinstance(c, dict) else c) for k, c in choices.items()}
    ens = (recipe or {}).get("ensemble") or {}
    width = (val.get("model_kwargs") or {}).get("width")
    words = [
        f"`{val['model']}`" + (f" width {width}" if width else "") if val.get("model") else None,
        f"{ens['members']} × {ens['epochs']} epochs"
        if ens.get("members", 1) > 1
        else (f"{val['epochs']} epochs" if val.get("epochs") else None),
        f"augment {val['augment']}" if val.get("augment") else None,
    ]
    return ", ".join(w for w in words if w) or "–"


def render_folder_tasks(body: dict, view: str | None) -> list[str]:
    rows = []
    for r in body["rows"]:
        d, h = r["default"], r.get("hand-picked")
        rows.append(
            [
                r["task"],
                f"**{pct(100 * d['accuracy'])}**",
                f"{d['train_time']:.0f} s",
                _recipe_words(d.get("recipe")),
                pct(100 * h["accuracy"]) if h else "–",
                f"{h['train_time']:.0f} s" if h else "–",
                f"{r['gap_points']:+.2f}" if h else "–",
                code(" ".join(h["flags"])) if h else "–",
            ]
        )
    out = table(
        [
            "task",
            "default: test accuracy",
            "training",
            "what the recipe chose",
            "hand-picked flags",
            "training",
            "gap (points)",
            "the hand-picked flags",
        ],
        rows,
        "lrrlrrrl",
    )
    return out + [
        "",
        "Test accuracy on each task's held-back images (never seen in tuning); the default is "
        "`lenet submit --data-dir FOLDER` with no other flag. A positive gap means the hand-picked "
        "flags did better.",
    ]


def render_digit_recognizer(body: dict, view: str | None) -> list[str]:
    out = table(
        ["dataset", "held-out accuracy", "validation accuracy", "training time", "what the recipe chose"],
        [
            [
                f"Digit Recognizer ({num(r['train_rows'])} labelled, {num(r['test_rows'])} to predict)",
                f"**{pct(100 * r['test_accuracy'])}**",
                pct(100 * r["dev_accuracy"]) if r.get("dev_accuracy") else "n/a",
                f"{r['train_time']:.0f} s",
                _recipe_words(r.get("recipe")),
            ]
            for r in body["rows"]
        ],
        "lrrrl",
    )
    return out


RENDERERS = {
    "mnist-runs": render_mnist_runs,
    "mnist-ensembles": render_ensembles,
    "mnist-tries": render_tries,
    "recipes-tried": render_recipes,
    "recipe-search": render_search,
    "committee": render_committee,
    **{kind: (lambda body, view, kind=kind: benchfmt.markdown(kind, body["data"], view)) for kind in benchfmt.REPORTS},
    "lenet-compare": render_compare,
    "lenet-eval": render_eval,
    "lenet-export": render_export,
    "ddp-speed": render_ddp,
    "serve-load": render_serve,
    "serve-load-run": render_serve_run,
    "serve-load-async": render_serve_async,
    "folder-tasks": render_folder_tasks,
    "digit-recognizer": render_digit_recognizer,
    "preprocess-speed": render_preprocess,
}


# ----------------------------------------------------------------------------- README at a glance
def _row(rows: list[dict], id: str) -> dict:
    return next(r for r in rows if r["id"] == id)


def _time_to_99(train: dict) -> str:
    """README's time-to-99% figure: lenetlab's training time, its threads, and the speed-up over the tutorial recipe."""
    tta, sp = train["time_to_accuracy"], train.get("speedup_to_target")
    threads = tta.get("recipe", {}).get("num_threads") or "all"
    out = (
        f"{tta['train_time']:.1f} s of training (`--config {tta.get('config', 'fast-lenet5')}`, {threads} CPU threads)"
    )
    if sp and sp["ratio"] is not None:
        out += (
            f", {'more than ' if sp['lower_bound'] else ''}{sp['ratio']:.0f}× faster than a typical tutorial's recipe"
        )
    return out


def glance_rows() -> list[tuple[str, str, str, str]]:
    """(what, figure, results file, docs page) for README's table; every figure read from its file."""
    mnist = load("results/mnist.json")["rows"]
    l5, old, dist, w8 = (
        _row(mnist, i) for i in ("lenet5", "lenet5-1998", "lenet5-1998-distort-lecun", "lenet5-modern-w8-long")
    )
    ens = _row(load("results/ensembles.json")["rows"], "lenet5-modern")
    com = _row(load("results/committee.json")["rows"], "committee")
    train = load("results/train-speed.json")["data"]
    cmp_rows = load("results/compare.json")["data"]["rows"]
    f32 = max(r["max_abs_diff"] for r in cmp_rows if "float64" not in r["check"] and "state dict" not in r["check"])
    infer = load("results/infer-speed.json")["data"]["backends"]
    onnx = next((v for k, v in infer.items() if k.startswith("ONNX")), None)
    serve = load("results/serve-load.json")["rows"]
    shipped = load("results/shipped-model.json")["data"]

    def runs(r):
        n = len(r["seeds"])
        return f"{n} run{'s' if n > 1 else ''}"

    e = l5["test_error_pct"]
    out = [
        (
            "NNDL `lenet5` on MNIST",
            f"{pct(e['mean'])} ± {e['sd']:.2f} test error ({runs(l5)}, ~{l5['train_time_s']['mean']:.0f} s "
            "of training each on one CPU thread)",
            "results/mnist.json",
            "docs/results.md",
        ),
        (
            "`lenet5-1998`, LeCun et al. 1998 (paper: 0.95% without distortions, 0.8% with)",
            f"{pct(old['test_error_pct']['mean'])} without distortions ({runs(old)}), "
            f"{pct(dist['test_error_pct']['mean'])} with ({runs(dist)})",
            "results/mnist.json",
            "docs/results.md",
        ),
        (
            "modernised LeNet-5 at LeNet-5's size (62,786 parameters)",
            f"{pct(w8['test_error_pct']['mean'])} test error ({runs(w8)})",
            "results/mnist.json",
            "docs/results.md",
        ),
        (
            "ensemble of 4 `lenet5-modern`",
            f"{pct(ens['test_error_pct'])} test error",
            "results/ensembles.json",
            "docs/results.md",
        ),
        (
            "committee chosen on the dev split (Ciresan et al. 2012: 0.23% with 35 networks)",
            f"{pct(com['test_error_pct'])} test error ({len(com['chosen'])} of {len(com['candidates'])} networks)",
            "results/committee.json",
            "docs/results.md",
        ),
        ("time to 99% MNIST test accuracy", _time_to_99(train), "results/train-speed.json", "docs/speed.md"),
        (
            "training throughput against a typical tutorial's per-sample PIL pipeline (same model, batch 64)",
            ratio(train["best_ratio_same_threads"]),
            "results/train-speed.json",
            "docs/speed.md",
        ),
        (
            "from-scratch `lenet5-scratch` against PyTorch, same weights",
            f"max abs difference {sci(f32)} (float32)",
            "results/compare.json",
            "docs/operators.md",
        ),
    ]
    if onnx:
        out.append(
            (
                "inference with ONNX Runtime, shipped model, one thread",
                f"{num(onnx['images_per_sec'])} images/s batched, {sig(onnx['p50_ms'])} ms per single image (p50)",
                "results/infer-speed.json",
                "docs/speed.md",
            )
        )
    best = max(serve, key=lambda r: r["requests_per_s"])
    out += [
        (
            "`lenet serve` under load (8 clients, 2 cores)",
            f"{best['requests_per_s']:.0f} requests/s, p50 {best['p50_ms']:.0f} ms ({best['backend']})",
            "results/serve-load.json",
            "docs/serving.md",
        ),
        (
            "the shipped `lenet5`'s MNIST test accuracy",
            f"{shipped['accuracy']:.2%}",
            "results/shipped-model.json",
            "docs/serving.md",
        ),
    ]
    return out


def render_glance(doc_dir: Path) -> list[str]:
    """README's table. Pages are named, not linked: README is also the package index page, where a
    link relative to the repository would break."""
    rows = [[what, fig, f"`{page}`"] for what, fig, _, page in glance_rows()]
    return table(["what", "figure", "details"], rows) + [
        "",
        "<sub>Every figure is read from a file in `results/` of the repository that names "
        "the machine, the versions, the date and the command; the page named shows the full table.</sub>",
    ]


# ----------------------------------------------------------------------------- regions
def render(spec: str, doc_dir: Path) -> str:
    """The generated text of one marked region (without the markers), ending in a newline."""
    parts = spec.split()
    if parts == ["glance"]:
        return "\n".join(render_glance(doc_dir)) + "\n"
    if not parts or len(parts) > 2:
        raise ValueError(f"bad table marker {spec!r}: want 'results/FILE.json [VIEW]' or 'glance'")
    path, view = parts[0], (parts[1] if len(parts) > 1 else None)
    body = load(path)
    kind = body["meta"]["kind"]
    if kind not in RENDERERS:
        raise ValueError(f"{path}: no renderer for kind {kind!r}")
    lines = RENDERERS[kind](body, view) + caption(path, body, doc_dir)
    return "\n".join(lines) + "\n"


def _outside_code(text: str) -> list[tuple[bool, str]]:
    """``text`` cut into (is_code, part) pieces: fenced code blocks (whose markers are examples) and the rest."""
    parts = FENCE.split(text)
    return [(i % 2 == 1, part) for i, part in enumerate(parts)]


def update_text(text: str, doc_path: Path) -> str:
    """``text`` with every marked region outside code blocks regenerated."""
    doc_dir = Path(doc_path).resolve().parent
    return "".join(
        part if code else REGION.sub(lambda m: m.group(1) + render(m["spec"].strip(), doc_dir) + m.group(4), part)
        for code, part in _outside_code(text)
    )


def marked_specs(text: str) -> list[str]:
    """The specs of the marked regions outside code blocks."""
    return [m["spec"].strip() for code, part in _outside_code(text) if not code for m in REGION.finditer(part)]


def pages() -> list[Path]:
    """README.md and every page under docs/."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page is stale")
    p.add_argument("files", nargs="*", type=Path, help="pages to update (default: README.md and docs/*.md)")
    a = p.parse_args(argv)
    stale = []
    for page in a.files or pages():
        text = page.read_text(encoding="utf-8")
        new = update_text(text, page)
        if new != text:
            stale.append(page)
            if not a.check:
                page.write_text(new, encoding="utf-8")
    verb = "stale" if a.check else "updated"
    for page in stale:
        print(f"{verb}: {page.resolve().relative_to(REPO) if page.resolve().is_relative_to(REPO) else page}")
    return 1 if (a.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
