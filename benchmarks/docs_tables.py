"""Render the docs' tables from the results files and rewrite the marked regions of the pages.

    python benchmarks/docs_tables.py            # rewrite every marked table in README.md and docs/*.md
    python benchmarks/docs_tables.py --check    # change nothing; exit 1 naming the stale tables

A region ``<!-- table: results/FILE.json [VIEW] -->`` ... ``<!-- end table -->`` gets the table of that
results file (see ``results_io.py``) and a line naming its source, machine and command; the file's
``meta.kind`` picks the renderer (for ``lenet bench`` reports, :mod:`lenetlab.benchfmt`'s builder).
``<!-- table: glance -->`` is README's at-a-glance table, which quotes several files.
"""

import argparse
import functools
import os
import re
import sys
from pathlib import Path

from lenetlab import benchfmt
from lenetlab.textfmt import Table, columns, num, pct, ratio, render, sci, sig

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_io beside this script
from results_io import load_results, machine_line

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"(^```.*?^```[^\n]*$)", re.DOTALL | re.MULTILINE)
REGION = re.compile(r"(<!-- table: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- end table -->)", re.DOTALL)
TRANSCRIBED = (
    "figures first published in the README at that commit and copied here unchanged; the runs' own "
    "outputs were not kept"
)


# ----------------------------------------------------------------------------- helpers
def markdown(build):
    """A renderer ``(body, view) -> markdown lines`` from a builder of blocks (tables and paragraphs)."""

    @functools.wraps(build)
    def renderer(body: dict, view: str | None = None) -> list[str]:
        return render(build(body, view), markdown=True)

    return renderer


def table(*cols, note=None, rows=lambda body: body["rows"]):
    """A renderer of one table of ``rows(body)`` with the columns ``cols`` (as :func:`columns` takes them),
    and under it ``note``: text, or a function of the body giving it (nothing when empty)."""

    def renderer(body: dict, view: str | None = None) -> list[str]:
        text = note(body) if callable(note) else note
        return render([columns(rows(body), *cols), *([text] if text else [])], markdown=True)

    return renderer


def load(path: str) -> dict:
    """A results file (``meta`` plus ``data`` or ``rows``), path relative to the repository root."""
    return load_results(REPO / path)


def _load(meta: dict) -> list[str]:
    if meta.get("load"):
        return [meta["load"]]
    return [] if meta.get("load_average") is None else [f"load average {meta['load_average']} at the start"]


def _provenance(body: dict) -> str:
    """Where the figures come from: the file's one source, or each group of rows with its own."""
    meta, rows = body["meta"], body.get("rows") or []
    if not rows or not all(r.get("source") for r in rows):
        rows = [{"source": meta["source"], "transcribed": meta.get("transcribed")}]
    groups: dict[tuple, list[str]] = {}
    loads: dict[tuple, float] = {}
    for r in rows:
        key = (
            r["source"],
            r.get("machine") or machine_line(meta, python=True),
            r.get("date") or meta["date"],
            bool(r.get("transcribed")),
        )
        groups.setdefault(key, []).append(str(r.get("id") or r.get("backend") or r.get("label")))
        if r.get("load_average") is not None:
            loads[key] = max(loads.get(key, 0.0), r["load_average"])
    ordered = sorted(groups.items(), key=lambda kv: len(kv[1]))
    parts = []
    for i, (key, ids) in enumerate(ordered):
        who = ", ".join(f"`{x}`" for x in ids) + ": "
        if len(ordered) == 1:
            who = ""
        elif i == len(ordered) - 1 and len(ids) > 2:
            who = "the other rows: "
        if key in loads:
            notes = [f"load average up to {loads[key]} at the start"]
        else:
            notes = _load(meta) if key[0] == meta["source"] else []
        notes += [TRANSCRIBED] if key[3] else []
        parts.append(f"{who}{key[0]}, on {key[1]}, {key[2]}" + (f" ({'; '.join(notes)})" if notes else ""))
    return "; ".join(parts)


def caption(path: str, body: dict, doc_dir: Path) -> list[str]:
    """The line under every table: where the figures come from and how to regenerate them."""
    meta = body["meta"]
    link = Path(os.path.relpath(REPO / path, doc_dir)).as_posix()
    words = [f"Source: [{path}]({link}): {_provenance(body)}"]
    how = meta.get("regenerate")
    if how:
        words.append(
            f"regenerate: `{how}`" if how.split()[0] in ("python", "bash", "lenet") else f"to regenerate: {how}"
        )
        if meta.get("regenerate_note"):
            words[-1] += f" ({meta['regenerate_note']})"
    else:
        words.append(f"command: `{meta['command']}`")
    if "benchmarks/" in (how or meta["command"]):  # scripts ship with the repository, not with the package
        words.append("run from a clone of the repository")
    return ["", "<sub>" + ". ".join(w[0].upper() + w[1:] for w in words) + ".</sub>"]


def _spread(e: dict, n: int) -> str:
    if n < 2:
        return "one run"
    return f"{e['min']:.2f}–{e['max']:.2f}%" + (f", sd {e['sd']:.2f}" if e.get("sd") is not None else "")


def _seconds(x: float) -> str:
    return f"{x:,.1f}" if x < 10 else f"{x:,.0f}"


def _time(t: dict | None) -> str:
    if not t or t.get("mean") is None:
        return "n/a"
    if t["min"] == t["max"] == t["mean"]:
        return f"{_seconds(t['mean'])} s"
    return f"{_seconds(t['mean'])} s ({_seconds(t['min'])}–{_seconds(t['max'])})"


def _runs(r: dict) -> str:
    return f"{len(r['seeds'])} run{'s' if len(r['seeds']) > 1 else ''}"


# ----------------------------------------------------------------------------- run tables
render_mnist_runs = table(
    ("run", "l", "{label}"),
    ("model", "l", "`{model}`"),
    ("test error", "r", lambda r: f"**{pct(r['test_error_pct']['mean'])}**"),
    ("spread (min–max, sd)", "l", lambda r: _spread(r["test_error_pct"], len(r["seeds"]))),
    ("runs", "r", lambda r: str(len(r["seeds"]))),
    ("dev accuracy", "r", lambda r: pct(r.get("dev_accuracy_pct"))),
    ("training time per run", "r", lambda r: _time(r.get("train_time_s"))),
    ("command", "l", "`{command}`"),
    note=lambda body: "\n".join(f"- `{r['id']}`: {r['note']}." for r in body["rows"] if r.get("note")),
)


@markdown
def render_ensembles(body: dict, view: str | None) -> list:
    first = body["rows"][0]
    return [
        columns(
            body["rows"],
            ("ensemble", "l", "{label}"),
            (
                "test error",
                "r",
                lambda r: f"**{pct(r['test_error_pct'])}**" if r is first else pct(r["test_error_pct"]),
            ),
            ("dev error", "r", lambda r: "–" if r.get("dev_error_pct") is None else pct(r["dev_error_pct"])),
            ("command", "l", "`{command}`"),
        )
    ]


def _committee_cells(r: dict) -> list[str]:
    if r["id"] != "committee":
        e, n = r["test_error_pct"], len(r["seeds"])
        dev, time = pct(r.get("dev_accuracy_pct")), _time(r.get("train_time_s"))
        return [f"`{r['id']}`", pct(e["mean"]), _spread(e, n), str(n), dev, time, f"`{r['command']}`"]
    errs = r["member_test_error_pct"]
    members = (
        "members: " + ", ".join(map(pct, errs)) if len(errs) <= 4 else f"members {pct(min(errs))}–{pct(max(errs))}"
    )
    err, n = f"**{pct(r['test_error_pct'])}**", str(len(r["chosen"]))
    return [r["label"], err, members, n, pct(r["dev_accuracy_pct"]), "–", f"`{r['command']}`"]


@markdown
def render_committee(body: dict, view: str | None) -> list:
    header = ["members", "test error", "spread", "networks", "dev accuracy", "training time per network", "command"]
    c = next(r for r in body["rows"] if r["id"] == "committee")
    target = f"the {pct(c['target_pct'])} target"
    verdict = (
        f"meets {target}" if c["test_error_pct"] <= c["target_pct"] else f"misses {target} by {c['gap_pct']:.2f} points"
    )
    held = c.get("held_out_dev_error_pct")
    why = ""
    if held:
        why = (
            f"; on held-out halves of the dev split greedy selection erred {held['greedy']:.2f}% and all the "
            f"networks {held['all']:.2f}%"
        )
    who = f"all {len(c['chosen'])} networks" if c.get("rule") == "all" else ", ".join(f"`{n}`" for n in c["chosen"])
    return [
        Table(header, [_committee_cells(r) for r in body["rows"]], "lrlrrrl"),
        f"The committee ({who}{why}) {verdict}; {c['reference']}.",
    ]


render_tries = table(
    ("setting", "l", "{label}"),
    ("dev accuracy", "r", lambda r: pct(r["dev_accuracy_pct"])),
    ("test error", "r", lambda r: pct(r["test_error_pct"])),
    ("command", "l", "`{command}`"),
)


def _search_time(r: dict) -> str:
    lower = "≥ " if r["reached"] < len(r["seeds"]) else ""  # unreached seeds count as their whole schedule
    return f"{lower}{r['train_time_s']['median']:.2f} s"


render_search = table(
    ("variant", "l", "{label}"),
    ("seeds reaching 99%", "r", lambda r: f"{r['reached']}/{len(r['seeds'])}"),
    ("median time to 99%", "r", _search_time),
    ("slowest", "r", "{train_time_s[max]:.2f} s"),
    ("median epoch", "r", "{epoch_median:.2f}"),
    ("per seed (s)", "l", lambda r: " ".join(f"{x:.1f}" for x in r["train_time_s"]["per_seed"])),
    note="A seed that never reached the target counts with its whole schedule's training time.",
)


# ----------------------------------------------------------------------------- lenet COMMAND --json records
def _compare_note(body: dict) -> str:
    d = body["data"]
    return (
        f"Weights: {d['weights']}; tolerance {d['tolerance']:g} relative to the largest value compared (absolute "
        f"below 1); argmax agreement {d['argmax_agreement']:.2%}; largest |output| {d['max_abs_output']:.3g}."
    )


render_compare = table(
    ("check", "l", "{check}"),
    ("inputs", "l", "{inputs}"),
    ("n", "r", lambda r: num(r["n"])),
    ("max abs difference", "r", lambda r: sci(r["max_abs_diff"])),
    ("allowed", "r", lambda r: sci(r["allowed"]) if "allowed" in r else ""),
    ("within tolerance", "l", lambda r: "yes" if r["ok"] else "**no**"),
    rows=lambda body: body["data"]["rows"],
    note=_compare_note,
)


@markdown
def render_eval(body: dict, view: str | None) -> list:
    d = body["data"]
    names = d.get("class_names") or [str(i) for i in range(len(d["per_class"]))]
    return [
        Table(
            ["checkpoint", "split", "images", "accuracy", "loss"],
            [[f"`{d['checkpoint']}`", d["split"], num(d["n"]), f"**{d['accuracy']:.2%}**", f"{d['loss']:.4f}"]],
            "llrrr",
        ),
        Table(["class", *names], [["accuracy", *(f"{a:.1%}" for a in d["per_class"])]], "l" + "r" * len(names)),
    ]


render_export = table(
    ("model", "l", "`{model}`"),
    ("exporter", "l", "{exporter}"),
    ("opset", "r", "{opset}"),
    ("dynamic batch", "l", lambda d: "yes" if d["dynamic_batch"] else "no"),
    ("size", "r", lambda d: f"{d['bytes'] / 1024:,.0f} KiB"),
    ("max abs diff vs PyTorch", "r", lambda d: sci(d["max_abs_diff"])),
    rows=lambda body: [body["data"]],
)


# ----------------------------------------------------------------------------- speed and serving
@markdown
def render_preprocess(body: dict, view: str | None) -> list:
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
    return [
        Table(["stage (median ms)", "280×280 drawn PNG", "28×28 JSON pixels"], rows, "lrr"),
        f"{d['repeat']} calls each, one thread; {load}.",
    ]


def _ddp_note(body: dict) -> str:
    m = body["meta"]
    return (
        f"`{m['model']}` on {m['dataset']} ({num(m['train_examples'])} training images), {m['epochs']} "
        f"epoch, global batch {m['global_batch']}; examples/s over the training steps (rank 0's clock; "
        f"evaluation and checkpoint writes excluded), median of {m['rounds']} interleaved rounds."
    )


render_ddp = table(
    ("setting", "l", "{setting}"),
    ("examples/s (median)", "r", lambda r: num(r["examples_per_sec"])),
    ("rounds", "r", lambda r: "; ".join(num(x) for x in r["rounds"])),
    ("vs 1 process × 1 thread", "r", lambda r: ratio(r["vs_one_process_one_thread"])),
    note=_ddp_note,
)


@markdown
def render_serve(body: dict, view: str | None) -> list:
    table = columns(
        body["rows"],
        ("backend", "l", "{backend}"),
        ("p50", "r", "{p50_ms:.1f} ms"),
        ("p90", "r", "{p90_ms:.1f} ms"),
        ("p99", "r", "{p99_ms:.1f} ms"),
        ("requests/s", "r", "{requests_per_s:.1f}"),
        ("errors", "r", "{errors}"),
        ("command", "l", "`{command}`"),
    )
    r = body["rows"][0]
    return [
        table,
        f"{num(r['requests'])} `POST /predict` of a 280×280 canvas PNG per backend, {r['concurrency']} "
        f"concurrent clients; the load generator shares the {r['cpu_count']} cores with the server, so "
        "these figures are a floor for a real deployment.",
    ]


def _serve_load(name: str, r: dict) -> dict:
    what = (
        f"{num(r['requests'])} requests, {r['clients']} clients"
        if "clients" in r
        else f"{r['images']} concurrent {r['megapixels']:g}-megapixel PNGs ({r['body_kb']:.0f} kB each)"
    )
    return {**r, "name": name, "what": what}


@markdown
def render_serve_run(body: dict, view: str | None) -> list:
    d = body["data"]
    if view == "explain":
        return render_serve_explain(d)
    loads = [("mixed PNG/JSON", d["load"]), ("large PNGs", d.get("large_images"))]
    table = columns(
        [_serve_load(name, r) for name, r in loads if r is not None],
        ("load", "l", "{name}"),
        ("requests", "l", "{what}"),
        ("p50", "r", "{p50_ms:.0f} ms"),
        ("p99", "r", "{p99_ms:.0f} ms"),
        ("dropped", "r", "{dropped}"),
        ("5xx", "r", "{errors_5xx}"),
        ("4xx", "r", "{errors_4xx}"),
        ("server peak memory above idle", "r", "+{server_peak_rss_above_idle_mb:.0f} MB"),
    )
    return [
        table,
        f"`{d['model']}` on the {d['backend']} backend; every answer compared with the sequential answer "
        f"to the same body: {d['load']['mismatched']} differed. The load generator shares the cores with the "
        "server, so latency here is mostly queueing: 200 clients over a few requests per second each.",
    ]


SERVERS = {
    "baseline": "baseline (`--max-batch 1 --workers 1`)",
    "default": "default (batching on)",
    "target": "the server at `--url`",
}


def _overload(o: dict) -> str:
    statuses = ", ".join(f"{num(v)} × {k}" for k, v in o["statuses"].items())
    how = ", ".join(f"{v} {k}" for k, v in o["dropped_by_error"].items())
    verdict = (
        "acceptable"
        if o["acceptable"]
        else "not acceptable (only 200 and 503 with Retry-After, and no dropped connection, are)"
    )
    return (
        f"Overload: {num(o['clients'])} concurrent clients, {num(o['requests'])} requests: {statuses}; "
        f"{o['no_retry_after']} 503s without `Retry-After`, {o['dropped']} dropped connections"
        + (f" ({how})" if how else "")
        + f"; p99 {o['p99_ms'] / 1000:.1f} s, server peak RSS {o['server_peak_rss_mb']:.0f} MB: {verdict}."
    )


@markdown
def render_serve_async(body: dict, view: str | None) -> list:
    """``serve_load.py``'s two servers under the same asyncio load (and the overload run, if any);
    view ``stages``: where each server's time per request went."""
    d = body["data"]
    if view == "stages":
        return [_serve_stages(d["runs"])]
    table = columns(
        [{**r, "name": name} for name, r in d["runs"].items()],
        ("server", "l", lambda r: SERVERS[r["name"]]),
        ("requests/s", "r", "{requests_per_s:.1f}"),
        ("p50", "r", "{p50_ms:.0f} ms"),
        ("p90", "r", "{p90_ms:.0f} ms"),
        ("p99", "r", "{p99_ms:.0f} ms"),
        ("dropped", "r", "{dropped}"),
        ("5xx", "r", "{errors_5xx}"),
        ("mismatched", "r", "{mismatched}"),
        (
            "server CPU/request",
            "r",
            lambda r: f"{r['server_cpu_ms_per_request']:.1f} ms" if "server_cpu_ms_per_request" in r else "",
        ),
        ("peak RSS", "r", lambda r: f"{r['server_peak_rss_mb']:.0f} MB" if "server_peak_rss_mb" in r else ""),
    )
    out = [
        table,
        f"{num(d['requests'])} `POST {d['route']}` per server ({d['body']} bodies: the "
        f"{d['distinct_bodies']} test digits of `mnist-subset`), {d['clients']} concurrent asyncio clients in "
        f"{d['client_procs']} client process{'es' if d['client_procs'] != 1 else ''}; every answer compared "
        "with the baseline's sequential answer to the same body."
        + (f" Default / baseline requests/s: {d['speedup']}x." if "speedup" in d else ""),
    ]
    o = d["runs"].get("default", {}).get("overload")
    la = d["load_average"]
    return (
        out
        + ([_overload(o)] if o else [])
        + [
            f"The client runs in its own process(es) but on the same {d['cpu_count']} cores, shared with "
            f"other work (load average {la['start']} at the start, {la['end']} at the end): the figures are noisy."
        ]
    )


STAGES = (
    ("read", "read body (and multipart form), wall"),
    ("decode", "decode, CPU"),
    ("normalise", "normalise, CPU"),
    ("forward", "forward pass, CPU (a batch counted once)"),
    ("encode", "encode the answer, CPU"),
)


def _serve_stages(runs: dict) -> str:
    """Milliseconds per request by stage (``lenet_stage_seconds_total``), one column per server; "the rest"
    is the server's CPU per request minus its stages' CPU."""
    servers = [name for name in ("baseline", "default") if name in runs]

    def row(label, value):
        return {"label": label, **{name: value(runs[name]) for name in servers}}

    def rest(r):
        return r["server_cpu_ms_per_request"] - sum(r["stage_ms_per_request"][k] for k, _ in STAGES[1:])

    rows = [row(label, lambda r, k=key: f"{r['stage_ms_per_request'][k]:.2f}") for key, label in STAGES]
    rows += [
        row("HTTP, routing, event loop (the rest)", lambda r: f"{rest(r):.2f}"),
        row("**server CPU per request**", lambda r: f"**{r['server_cpu_ms_per_request']:.2f}**"),
        row("load client's CPU per request", lambda r: f"{r['client_cpu_ms_per_request']:.2f}"),
        row("requests/s", lambda r: f"{r['requests_per_s']:.1f}"),
        row("p50 / p99 latency", lambda r: f"{r['p50_ms']:.0f} / {r['p99_ms']:.0f} ms"),
        row("server processes (supervisor, workers, resource tracker)", lambda r: f"{r['server_processes']}"),
    ]
    return columns(
        rows, ("stage (ms per request)", "l", "{label}"), *((SERVERS[n], "r", "{" + n + "}") for n in servers)
    )


def render_serve_explain(d: dict) -> list:
    """``POST /explain``'s server-side time per request (``serve_load.py --explain``), split into its parts."""
    e = d["explain"]
    parts = e["server_p50_parts_ms"]
    ms = [e["server_p50_ms"], e["server_p90_ms"], *(parts[k] for k in ("preprocess", "forward", "saliency", "package"))]
    table = Table(
        ["model", "requests", "server-side p50", "p90", "of which: preprocess", "forward", "saliency", "packaging"]
        + ["client p50", "answer"],
        [
            [
                f"`{d['model']}` ({d['backend']})",
                f"{num(e['requests'])}, {e['clients']} client" + ("s" if e["clients"] != 1 else ""),
            ]
            + [f"{x:.1f} ms" for x in (*ms, e["client_p50_ms"])]
            + [f"{e['response_kb']:.0f} KB"]
        ],
        "llrrrrrrrr",
    )
    verdict = "under" if e["server_p50_ms"] < e["target_p50_ms"] else "over"
    return [
        table,
        f"Server-side time = `timing_ms.total` of each answer: the shared preprocessing of the 280×280 "
        f"canvas PNG, the one forward pass with every layer recorded, the saliency backward pass and "
        f"packaging {len(e['layers'])} layers ({', '.join(e['layers'])}), the kernels and the saliency "
        f"map (the parts' p50s leave out building the answer's other fields, such as the input as a PNG). The "
        f"p50 is {verdict} the {e['target_p50_ms']} ms target; the client latency adds the "
        "HTTP round trip and reading the JSON, on cores shared with the load generator.",
    ]


# ----------------------------------------------------------------------------- lenet submit on folders
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


def _hand(cell):
    """A cell of the hand-picked run, "–" where a task has none."""
    return lambda r: cell(r["hand-picked"], r) if r.get("hand-picked") else "–"


render_folder_tasks = table(
    ("task", "l", "{task}"),
    ("default: test accuracy", "r", lambda r: f"**{pct(100 * r['default']['accuracy'])}**"),
    ("training", "r", "{default[train_time]:.0f} s"),
    ("what the recipe chose", "l", lambda r: _recipe_words(r["default"].get("recipe"))),
    ("hand-picked flags", "r", _hand(lambda h, r: pct(100 * h["accuracy"]))),
    ("training", "r", _hand(lambda h, r: f"{h['train_time']:.0f} s")),
    ("gap (points)", "r", _hand(lambda h, r: f"{r['gap_points']:+.2f}")),
    ("the hand-picked flags", "l", _hand(lambda h, r: f"`{' '.join(h['flags'])}`")),
    note="Test accuracy on each task's held-back images (never seen in tuning); the default is "
    "`lenet submit --data-dir FOLDER` with no other flag. A positive gap means the hand-picked flags did better.",
)


render_digit_recognizer = table(
    ("dataset", "l", "Digit Recognizer ({train_rows:,} labelled, {test_rows:,} to predict)"),
    ("held-out accuracy", "r", lambda r: f"**{pct(100 * r['test_accuracy'])}**"),
    ("validation accuracy", "r", lambda r: pct(100 * r["dev_accuracy"]) if r.get("dev_accuracy") else "n/a"),
    ("training time", "r", "{train_time:.0f} s"),
    ("what the recipe chose", "l", lambda r: _recipe_words(r.get("recipe"))),
)


@markdown
def render_finetune(body: dict, view: str | None) -> list:
    """Test accuracy of lenet5 from scratch and from the shipped MNIST weights, same epochs, per budget."""
    d = body["data"]
    inits = {"default": "from scratch (`--init default`)", "pretrained": "fine-tuned (`--init pretrained`)"}
    return [
        columns(
            d["summary"],
            ("epochs", "l", "{epochs} ({steps:,} steps)"),
            ("lenet5", "l", lambda s: inits[s["init"]]),
            ("lr (best on dev)", "r", "{lr:g}"),
            (
                f"test accuracy, mean of {d['summary'][0]['seeds']} seeds",
                "r",
                lambda s: f"**{pct(100 * s['test_mean'])}**",
            ),
            ("range", "r", lambda s: f"{pct(100 * s['test_min'])} to {pct(100 * s['test_max'])}"),
            ("training time", "r", "{train_time_mean:.1f} s"),
        )
    ]


RENDERERS = {
    "finetune": render_finetune,
    "mnist-runs": render_mnist_runs,
    "mnist-ensembles": render_ensembles,
    "mnist-tries": render_tries,
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
def _row(file: str, id: str) -> dict:
    return next(r for r in load(f"results/{file}.json")["rows"] if r["id"] == id)


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


def _glance_results() -> list[tuple[str, str, str, str]]:
    """README's rows of results/mnist.json, ensembles.json and committee.json: (what, figure, file, page)."""
    l5, old, dist, w8 = (
        _row("mnist", i) for i in ("lenet5", "lenet5-1998", "lenet5-1998-distort-lecun", "lenet5-modern-w8-long")
    )
    ens, com = _row("ensembles", "lenet5-modern"), _row("committee", "committee")
    e = l5["test_error_pct"]
    return [
        (
            "NNDL `lenet5` on MNIST",
            f"{pct(e['mean'])} ± {e['sd']:.2f} test error ({_runs(l5)}, ~{l5['train_time_s']['mean']:.0f} s "
            "of training each on one CPU thread)",
            "mnist",
        ),
        (
            "`lenet5-1998`, LeCun et al. 1998 (paper: 0.95% without distortions, 0.8% with)",
            f"{pct(old['test_error_pct']['mean'])} without distortions ({_runs(old)}), "
            f"{pct(dist['test_error_pct']['mean'])} with ({_runs(dist)})",
            "mnist",
        ),
        (
            "modernised LeNet-5 at LeNet-5's size (62,786 parameters)",
            f"{pct(w8['test_error_pct']['mean'])} test error ({_runs(w8)})",
            "mnist",
        ),
        ("ensemble of 4 `lenet5-modern`", f"{pct(ens['test_error_pct'])} test error", "ensembles"),
        (
            "committee chosen on the dev split (Ciresan et al. 2012: 0.23% with 35 networks)",
            f"{pct(com['test_error_pct'])} test error ({len(com['chosen'])} of {len(com['candidates'])} networks)",
            "committee",
        ),
    ]


def _glance_speed() -> list[tuple[str, str, str, str]]:
    """README's rows of the speed, operator, serving and shipped-model files: (what, figure, file, page)."""
    train = load("results/train-speed.json")["data"]
    cmp_rows = load("results/compare.json")["data"]["rows"]
    f32 = max(r["max_abs_diff"] for r in cmp_rows if "float64" not in r["check"] and "state dict" not in r["check"])
    infer = load("results/infer-speed.json")["data"]["backends"]
    onnx = next((v for k, v in infer.items() if k.startswith("ONNX")), None)
    best = max(load("results/serve-load.json")["rows"], key=lambda r: r["requests_per_s"])
    shipped = load("results/shipped-model.json")["data"]
    what = "training throughput against a typical tutorial's per-sample PIL pipeline (same model, batch 64)"
    out = [
        ("time to 99% MNIST test accuracy", _time_to_99(train), "train-speed", "speed"),
        (what, ratio(train["best_ratio_same_threads"]), "train-speed", "speed"),
        (
            "from-scratch `lenet5-scratch` against PyTorch, same weights",
            f"max abs difference {sci(f32)} (float32)",
            "compare",
            "operators",
        ),
    ]
    if onnx:
        figure = f"{num(onnx['images_per_sec'])} images/s batched, {sig(onnx['p50_ms'])} ms per single image (p50)"
        out.append(("inference with ONNX Runtime, shipped model, one thread", figure, "infer-speed", "speed"))
    serve = f"{best['requests_per_s']:.0f} requests/s, p50 {best['p50_ms']:.0f} ms ({best['backend']})"
    return out + [
        ("`lenet serve` under load (8 clients, 2 cores)", serve, "serve-load", "serving"),
        ("the shipped `lenet5`'s MNIST test accuracy", f"{shipped['accuracy']:.2%}", "shipped-model", "serving"),
    ]


def glance_rows() -> list[tuple[str, str, str, str]]:
    """(what, figure, results file, docs page) for README's table; every figure read from its file."""
    rows = [(*r, "results") for r in _glance_results()] + _glance_speed()
    return [(what, figure, f"results/{file}.json", f"docs/{page}.md") for what, figure, file, page in rows]


def render_glance() -> list[str]:
    """README's table. Pages are named, not linked: README is also the package index page, where a
    link relative to the repository would break."""
    rows = [[what, fig, f"`{page}`"] for what, fig, _, page in glance_rows()]
    return Table(["what", "figure", "details"], rows).markdown() + [
        "",
        "<sub>Every figure is read from a file in `results/` of the repository that names "
        "the machine, the versions, the date and the command; the page named shows the full table.</sub>",
    ]


# ----------------------------------------------------------------------------- regions
def render_region(spec: str, doc_dir: Path) -> str:
    """The generated text of one marked region (without the markers), ending in a newline."""
    parts = spec.split()
    if parts == ["glance"]:
        return "\n".join(render_glance()) + "\n"
    if not parts or len(parts) > 2:
        raise ValueError(f"bad table marker {spec!r}: want 'results/FILE.json [VIEW]' or 'glance'")
    body = load(parts[0])
    kind = body["meta"]["kind"]
    if kind not in RENDERERS:
        raise ValueError(f"{parts[0]}: no renderer for kind {kind!r}")
    return (
        "\n".join(RENDERERS[kind](body, parts[1] if len(parts) > 1 else None) + caption(parts[0], body, doc_dir)) + "\n"
    )


def _outside_code(text: str) -> list[tuple[bool, str]]:
    """``text`` cut into (is_code, part) pieces: fenced code blocks (whose markers are examples) and the rest."""
    return [(i % 2 == 1, part) for i, part in enumerate(FENCE.split(text))]


def update_text(text: str, doc_path: Path) -> str:
    """``text`` with every marked region outside code blocks regenerated."""
    doc_dir = Path(doc_path).resolve().parent
    return "".join(
        part
        if code
        else REGION.sub(lambda m: m.group(1) + render_region(m["spec"].strip(), doc_dir) + m.group(4), part)
        for code, part in _outside_code(text)
    )


def marked_specs(text: str) -> list[str]:
    """The specs of the marked regions outside code blocks."""
    return [m["spec"].strip() for code, part in _outside_code(text) if not code for m in REGION.finditer(part)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page is stale")
    p.add_argument("files", nargs="*", type=Path, help="pages to update (default: README.md and docs/*.md)")
    a = p.parse_args(argv)
    stale = []
    for page in a.files or [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        new = update_text(text, page)
        if new != text:
            stale.append(page)
            if not a.check:
                page.write_text(new, encoding="utf-8")
    for page in stale:
        shown = page.resolve().relative_to(REPO) if page.resolve().is_relative_to(REPO) else page
        print(f"{'stale' if a.check else 'updated'}: {shown}")
    return 1 if (a.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
