"""The record benchmarks of issue-sized targets: the time-to-99% recipe search (benchmarks/fast_recipe_search.py)
and the committee chosen on dev (benchmarks/committee.py), with the docs tables rendered from their rows."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

import collect_runs  # noqa: E402  (benchmarks/ is not a package)
import committee  # noqa: E402
import docs_tables  # noqa: E402
import fast_recipe_search  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_search_rows_count_seeds_and_times(subset):
    variants = {
        "as shipped": {"dataset": "mnist-subset", "num_threads": 1},
        "batch 500": {"dataset": "mnist-subset", "num_threads": 1, "batch_size": 500},
    }
    rows = fast_recipe_search.search(subset, variants, seeds=[0, 1], target=0.0, say=lambda *a: None)
    assert [r["label"] for r in rows] == ["as shipped", "batch 500"] and all(r["reached"] == 2 for r in rows)
    t = rows[0]["train_time_s"]
    assert len(t["per_seed"]) == 2 and t["max"] >= t["median"] > 0 and rows[1]["changes"]["batch_size"] == 500
    missed = fast_recipe_search.search(
        subset, {"x": variants["batch 500"]}, seeds=[0], target=1.01, say=lambda *a: None
    )
    assert missed[0]["reached"] == 0 and missed[0]["epoch_median"] == 1.0
    text = "\n".join(docs_tables.render_search({"meta": {}, "rows": rows + missed}, None))
    assert "| as shipped | 2/2 |" in text and "| x | 0/1 | ≥ " in text


def test_every_variant_is_a_valid_recipe():
    from lenetlab.apps.bench_train import fast_lenet5

    for label, changes in fast_recipe_search.VARIANTS.items():
        assert fast_lenet5(**changes).validate(), label
    assert next(iter(fast_recipe_search.VARIANTS.values())) == {}  # the first row is fast-lenet5 itself


def _finished_run(d: Path, ck: Path, test_accuracy: float = 0.99) -> None:
    d.mkdir()
    shutil.copy(ck, d / "best.pt")
    (d / "config.json").write_text(json.dumps({"model": "lenet5", "dataset": "mnist", "num_threads": 1}))
    (d / "metrics.jsonl").write_text(
        json.dumps({"kind": "dev", "accuracy": 0.99})
        + "\n"
        + json.dumps({"kind": "test", "accuracy": test_accuracy, "train_time": 3.0})
        + "\n"
    )


def test_committee_chosen_on_dev_from_finished_runs(digit_ckpt, second_ckpt, tmp_path):
    for name, ck in [
        ("lenet5-modern-elastic-s0", digit_ckpt),
        ("lenet5-modern-elastic-s1", second_ckpt),
        ("lenet5-modern-elastic-w12-s0", second_ckpt),
        ("other-s0", digit_ckpt),
    ]:  # other: not a member
        _finished_run(tmp_path / name, ck)
    (tmp_path / "lenet5-modern-elastic-resized-s0").mkdir()  # unfinished (no test row): ignored
    shutil.copy(digit_ckpt, tmp_path / "lenet5-modern-elastic-resized-s0" / "best.pt")
    runs = collect_runs.finished_runs(tmp_path, committee.MEMBERS)
    assert [r.name for r in runs] == [
        "lenet5-modern-elastic-s0",
        "lenet5-modern-elastic-s1",
        "lenet5-modern-elastic-w12-s0",
    ]
    assert [r.name for r in collect_runs.finished_runs(tmp_path, committee.MEMBERS, [1])] == [
        "lenet5-modern-elastic-s1"
    ]
    rows = collect_runs.aggregate([collect_runs.run_record(r) for r in runs], "m", "cpu", members=committee.MEMBERS)
    assert [r["command"] for r in rows] == [
        "lenet train --config lenet5-modern-elastic --data-dir DIR --num-threads 1 --seed N (N = 0..1)",
        "lenet train --config lenet5-modern-elastic --digit-width 12 --data-dir DIR --num-threads 1 --seed 0",
    ]
    meta = {"source": "measured", "date": "2026-12-02", "hardware": {"cpu": "cpu", "cores": 2}, "torch": "2"}
    row = committee.committee_row(runs, None, meta, dataset="mnist-subset")
    assert 1 <= len(row["chosen"]) <= 3 and set(row["chosen"]) <= {r.name for r in runs}
    assert row["rule"] in ("greedy", "all") and set(row["held_out_dev_error_pct"]) == {"greedy", "all"}
    # exactly the candidates' members and seeds (not the other-s0 or the resized run)
    assert row["command"] == "lenet ensemble RUNS_DIR/lenet5-modern-elastic{,-w12}-s[0-1] --select --data-dir DIR"
    assert committee._runs_glob(runs[:1]) == "RUNS_DIR/lenet5-modern-elastic-s0"
    assert len(row["member_test_error_pct"]) == len(row["chosen"]) and row["target_pct"] == 0.25
    assert row["gap_pct"] == pytest.approx(row["test_error_pct"] - 0.25)
    body = {
        "meta": meta,
        "rows": [
            {
                "id": "lenet5-modern-elastic",
                "test_error_pct": {"mean": 0.4, "min": 0.3, "max": 0.5, "sd": 0.1},
                "seeds": [0, 1],
                "dev_accuracy_pct": 99.5,
                "train_time_s": None,
                "command": "lenet train",
            },
            row,
        ],
    }
    text = "\n".join(docs_tables.render_committee(body, None))
    assert "`lenet5-modern-elastic`" in text and f"**{row['test_error_pct']:.2f}%**" in text
    assert ("meets the 0.25% target" if row["test_error_pct"] <= 0.25 else "misses the 0.25% target by") in text
    assert "on held-out halves of the dev split greedy selection erred" in text
    assert (f"all {len(row['chosen'])} networks" if row["rule"] == "all" else f"`{row['chosen'][0]}`") in text


def test_a_member_trains_its_config_with_its_flags_under_its_own_name(tmp_path):
    m = committee.MEMBERS["lenet5-modern-elastic-w16"]
    argv = collect_runs.train_argv(m, 3, "DATA", tmp_path)
    i = argv.index("--config")
    assert argv[i + 1 : i + 4] == ["lenet5-modern-elastic", "--digit-width", "16"]
    assert argv[argv.index("--name") + 1] == "lenet5-modern-elastic-w16-s3"
    plain = collect_runs.train_argv("lenet5", 0, "DATA", tmp_path)  # a shipped config's name alone: no flags
    assert "--digit-width" not in plain and plain[plain.index("--name") + 1] == "lenet5-s0"
    assert not collect_runs.finished(tmp_path / "none")


@pytest.mark.parametrize(
    "seeds, pattern",
    [([2], "2"), ([0, 1, 2, 3], "[0-3]"), ([0, 1, 3], "{0,1,3}"), (list(range(12)), "{0..11}"), ([1, 12], "{1,12}")],
)
def test_committee_seed_pattern_names_exactly_the_seeds(seeds, pattern):
    assert committee._seed_glob([Path(f"runs/lenet5-modern-elastic-s{s}") for s in seeds]) == pattern
