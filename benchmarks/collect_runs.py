"""Collect the results-table runs into ``results/mnist.json`` and ``results/ensembles.json``.

    python benchmarks/collect_runs.py runs/table --results results/mnist.json --ensembles results/ensembles.json

Each run ``CONFIG-sSEED`` (``benchmarks/results_table.sh`` trains them) is read through
:class:`~lenetlab.inference.run.Run`; the runs of one config make one row. An ensemble is the pair
``ensemble-NAME.test.json`` / ``.dev.json`` of ``lenet ensemble --json``. Rows not rerun are kept from
the existing file, and a rerun row keeps its ``label``, ``reference`` and ``note``.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lenetlab.inference.run import Run
from results_io import load_results, machine_line, make_meta, strip_repo_paths, write_results

RUN_NAME = re.compile(r"^(?P<config>.+)-s(?P<seed>\d+)$")
KEEP = ("label", "reference", "note")
#: ``RUNS_DIR/LOADS``: the load average when each run started.
LOADS = "loads.json"


@dataclass(frozen=True)
class Member:
    """A row of runs: shipped ``config`` trained with the extra ``flags``, its runs named ``NAME-sSEED``."""

    name: str
    config: str
    flags: tuple[str, ...] = ()


def as_member(m: Member | str) -> Member:
    """A shipped config's name as a :class:`Member` without extra flags; a Member unchanged."""
    return m if isinstance(m, Member) else Member(m, m)


def train_argv(member: Member | str, seed: int, data_dir: str, runs_dir: Path) -> list[str]:
    """The ``lenet train`` command line of one run: one thread, named ``NAME-sSEED``."""
    m = as_member(member)
    lenet = [sys.executable, "-m", "lenetlab", "train", "--config", m.config, *m.flags, "--data-dir", data_dir]
    run = ["--num-threads", "1", "--seed", str(seed), "--name", f"{m.name}-s{seed}", "--out-dir", str(runs_dir)]
    return [*lenet, *run, "--progress", "plain", "--no-plots", "--no-tensorboard", "--overwrite"]


def add_run_args(p: argparse.ArgumentParser, runs_dir: str, seeds: list[int], results: str) -> None:
    """The flags of a script that trains shipped configs with :func:`train_all` and then reads the runs."""
    p.add_argument("--data-dir", required=True, help="folder holding the MNIST files")
    p.add_argument("--runs-dir", default=runs_dir, help="folder of the CONFIG-sSEED run directories")
    p.add_argument("--seeds", nargs="+", type=int, default=seeds)
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each")
    p.add_argument("--collect-only", action="store_true", help="train nothing: only read the finished runs")
    p.add_argument("--results", default=results)


def train_all(
    configs: list, seeds: list[int], data_dir: str, runs_dir: Path, jobs: int, skip_finished: bool = False
) -> None:
    """Run every (config or :class:`Member`, seed), ``jobs`` at a time, seed by seed (``skip_finished``:
    not those already finished); each run's output goes to ``RUNS_DIR/RUN.log``."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    loads_file = runs_dir / LOADS
    loads = json.loads(loads_file.read_text()) if loads_file.is_file() else {}
    queue = [(as_member(c), s) for s in seeds for c in configs]
    if skip_finished:
        queue = [(c, s) for c, s in queue if not finished(runs_dir / f"{c.name}-s{s}")]
    running: list[subprocess.Popen] = []
    while queue or running:
        while queue and len(running) < jobs:
            c, s = queue.pop(0)
            loads[f"{c.name}-s{s}"] = round(os.getloadavg()[0], 1)
            loads_file.write_text(json.dumps(loads, indent=1) + "\n")
            log = open(runs_dir / f"{c.name}-s{s}.log", "w")  # noqa: SIM115 (closed with the process below)
            running.append(subprocess.Popen(train_argv(c, s, data_dir, runs_dir), stdout=log, stderr=subprocess.STDOUT))
        done = running.pop(0)
        if done.wait() != 0:
            raise SystemExit(f"a run failed: {' '.join(map(str, done.args))}")
        done.stdout and done.stdout.close()


def finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that ran to the end (its metrics hold the test row)."""
    return Run(run_dir).test_accuracy() is not None


def finished_runs(runs_dir: Path, names=None, seeds: list[int] | None = None) -> list[Path]:
    """The finished ``CONFIG-sSEED`` runs under ``runs_dir`` (of the configs in ``names`` and of ``seeds``
    when given), in name order."""

    def wanted(m: re.Match | None) -> bool:
        return bool(m) and (names is None or m["config"] in names) and (seeds is None or int(m["seed"]) in seeds)

    return [d for d in sorted(runs_dir.iterdir()) if wanted(RUN_NAME.match(d.name)) and d.is_dir() and finished(d)]


def run_record(run_dir: Path) -> dict:
    """One finished run's figures: config and seed (from its name), model, dataset, thread count, test
    accuracy, best dev accuracy (the dev row marked best) and training time."""
    m = RUN_NAME.match(run_dir.name)
    run = Run(run_dir)
    info = run.info()
    return {
        "config": m["config"],
        "seed": int(m["seed"]),
        "model": info.model,
        "dataset": info.dataset,
        "num_threads": run.config.get("num_threads"),
        "test_accuracy": info.test,
        "dev_accuracy": info.best_dev,
        "train_time": info.train_time,
    }


def _pct(acc: float) -> float:
    return round(100.0 * (1.0 - acc), 2)


def _seeds(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return str(seeds[0])
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"N (N = {seeds[0]}..{seeds[-1]})"
    return "N (N = " + ", ".join(map(str, seeds)) + ")"


def _run_flags(runs: list[dict]) -> tuple[str, str, str]:
    """The seeds of a row's runs (``N (N = 0..3)``), and its ``--num-threads`` and ``--data-dir`` flags."""
    r = runs[0]
    threads = f" --num-threads {r['num_threads']}" if r["num_threads"] else ""
    data = "" if r["dataset"] == "mnist-subset" else " --data-dir DIR"
    return _seeds(sorted(x["seed"] for x in runs)), threads, data


def train_command(config: str, runs: list[dict], flags: tuple[str, ...] = ()) -> str:
    """The ``lenet train`` command of one row, with ``--data-dir DIR`` for real MNIST."""
    seeds, threads, data = _run_flags(runs)
    return f"lenet train --config {' '.join([config, *flags])}{data}{threads} --seed {seeds}"


def command_as_run(m: Member, runs: list[dict]) -> str:
    """What ``results_table.sh`` (or :func:`train_all`, for a member with flags) ran for one row."""
    seeds, threads, data = _run_flags(runs)
    flags = "".join(f" {f}" for f in m.flags)
    return (
        f"lenet train --config {m.config}{flags} --seed {seeds} --name {m.name}-sN "
        f"--out-dir runs/table{threads} --progress plain --no-plots --overwrite{data}"
    )


def aggregate(
    runs: list[dict],
    source: str,
    machine: str,
    date: str | None = None,
    load_average: float | None = None,
    members: dict | None = None,
    as_run: bool = False,
) -> list[dict]:
    """One row per config (or per :class:`Member` of ``members``, ``{name: Member}``), in first-seen order;
    ``as_run``: with the command ``results_table.sh`` ran."""
    by: dict[str, list[dict]] = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        by.setdefault(r["config"], []).append(r)
    rows = []
    for config, rs in by.items():
        errs = [_pct(r["test_accuracy"]) for r in rs]
        times = [r["train_time"] for r in rs if r["train_time"] is not None]
        devs = [r["dev_accuracy"] for r in rs if r["dev_accuracy"] is not None]
        m = (members or {}).get(config) or Member(config, config)
        sd = round(statistics.stdev(errs), 2) if len(errs) > 1 else None
        row = {
            "id": config,
            "label": config,
            "model": rs[0]["model"],
            "dataset": rs[0]["dataset"],
            "seeds": [r["seed"] for r in rs],
            "test_error_pct": {
                "mean": round(statistics.mean(errs), 2),
                "min": min(errs),
                "max": max(errs),
                "sd": sd,
                "per_seed": errs,
            },
            "dev_accuracy_pct": round(100 * statistics.mean(devs), 2) if devs else None,
            "dev_accuracy_pct_per_seed": [round(100 * d, 2) for d in devs],
            "train_time_s": None,
            "command": train_command(m.config, rs, m.flags),
        }
        if times:
            mean, low, high = (round(x, 1) for x in (statistics.mean(times), min(times), max(times)))
            row["train_time_s"] = {"mean": mean, "min": low, "max": high}
        if as_run:
            row["command_as_run"] = command_as_run(m, rs)
        rows.append({**row, "source": source, "machine": machine, "date": date, "load_average": load_average})
    return rows


def write_merged(path, meta: dict, rows: list[dict]) -> list[dict]:
    """Write ``rows`` into the results file ``path``: a row of the same id replaced (keeping its words),
    the others kept, new ones appended; ``meta`` keeps the file's descriptive fields."""
    old = load_results(path) if Path(path).is_file() else {"meta": {}, "rows": []}
    fresh = {r["id"]: r for r in rows}
    rows = []
    for r in old["rows"]:
        rows.append({**fresh.pop(r["id"]), **{k: r[k] for k in KEEP if k in r}} if r["id"] in fresh else r)
    rows += fresh.values()
    meta = {**meta, **{k: v for k, v in old["meta"].items() if k in ("title", "split", "selection", "combination")}}
    if len({r.get("source") for r in rows}) > 1:
        meta["source"] = "measured at several commits (each row names its own, with its machine and date)"
    write_results(path, meta, rows=rows)
    return rows


def read_ensembles(runs_dir: Path, source: str, machine: str, date: str | None = None) -> list[dict]:
    """Rows from ``ensemble-NAME.test.json`` (and ``.dev.json`` when present)."""
    rows = []
    for test in sorted(runs_dir.glob("ensemble-*.test.json")):
        name = test.name[len("ensemble-") : -len(".test.json")]
        t = json.loads(test.read_text())
        dev_file = test.with_name(f"ensemble-{name}.dev.json")
        members = [strip_repo_paths(m["checkpoint"]) for m in t["members"]]
        rows.append(
            {
                "id": name,
                "label": name,
                "members": members,
                "member_test_error_pct": [_pct(m["accuracy"]) for m in t["members"]],
                "test_error_pct": _pct(t["accuracy"]),
                "dev_error_pct": _pct(json.loads(dev_file.read_text())["accuracy"]) if dev_file.is_file() else None,
                "command": "lenet ensemble " + " ".join(members) + " --data-dir DIR",
                "source": source,
                "machine": machine,
                "date": date,
            }
        )
    return rows


def collect(runs_dir, results=None, ensembles=None) -> tuple[list[dict], list[dict]]:
    """Read every run under ``runs_dir`` and write (merge into) the two results files; return their rows."""
    runs_dir = Path(runs_dir)
    runs = [run_record(d) for d in finished_runs(runs_dir)]
    if not runs:
        raise SystemExit(f"no finished runs (CONFIG-sSEED/metrics.jsonl) under {runs_dir}")
    how = "bash benchmarks/results_table.sh DIR"
    meta = make_meta("mnist-runs", "MNIST results", how, regenerate=how)
    machine = machine_line(meta)
    rows = aggregate(runs, meta["source"], machine, meta["date"], meta.get("load_average"), as_run=True)
    ens = read_ensembles(runs_dir, meta["source"], machine, meta["date"])
    if results:
        rows = write_merged(results, meta, rows)
    if ensembles and ens:
        ens = write_merged(ensembles, dict(meta, kind="mnist-ensembles", title="MNIST ensembles"), ens)
    return rows, ens


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs_dir", help="folder of CONFIG-sSEED run directories (runs/table)")
    p.add_argument("--results", default="results/mnist.json", help="results file of the runs table")
    p.add_argument("--ensembles", default="results/ensembles.json", help="results file of the ensembles")
    a = p.parse_args(argv)
    rows, ens = collect(a.runs_dir, a.results, a.ensembles)
    print(f"{len(rows)} rows in {a.results}; {len(ens)} ensembles", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
