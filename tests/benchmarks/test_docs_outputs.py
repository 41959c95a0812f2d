"""The command outputs the docs show are what the commands print today (benchmarks/docs_outputs.py).

Only the blocks whose commands take seconds are rerun here (``lenet models --pretrained``, ``lenet
predict`` on an image of the embedded subset, ``lenet data`` on a table it cannot read); the blocks
that train (docs/runs.md) are rerun by ``python benchmarks/docs_outputs.py --check``.
"""

from __future__ import annotations

from helpers import benchmark_script

docs_outputs = benchmark_script("docs_outputs")


def test_the_fast_blocks_have_not_drifted():
    blocks = docs_outputs.generate(fast=True)
    assert set(blocks) == {"predict-shipped", "csv-error"}
    stale = [
        f"{page.name}: {name}"
        for page in docs_outputs.pages()
        for name in docs_outputs.drifted(page.read_text(encoding="utf-8"), blocks)
    ]
    assert not stale, f"docs output drifted ({stale}): run python benchmarks/docs_outputs.py"


def test_every_block_has_its_place_in_the_docs_and_every_place_a_block():
    marked = [m["name"] for page in docs_outputs.pages() for m in docs_outputs.REGION.finditer(page.read_text())]
    steps = {s.block for s in docs_outputs.STEPS if s.block}
    assert sorted(marked) == sorted(steps)


def test_normalise_ignores_timings_throughput_paths_and_padding_only():
    a = "trained 48 steps in 1.6 s (1.9 s wall)\nadam  finished   3/3  0.8150  1.6s  1,976\n/tmp/lenet-dry-run-ab_c/x"
    b = "trained 48 steps in 0.8 s (1.1 s wall)\nadam finished 3/3 0.8150 12.0s 13,021\n/tmp/lenet-dry-run-zz/x"
    assert docs_outputs.normalise(a) == docs_outputs.normalise(b)
    assert docs_outputs.normalise(a) != docs_outputs.normalise(a.replace("0.8150", "0.8200"))
    assert docs_outputs.normalise("step 48 loss 0.5390") != docs_outputs.normalise("step 49 loss 0.5390")
