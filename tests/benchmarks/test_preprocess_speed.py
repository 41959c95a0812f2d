"""benchmarks/preprocess_speed.py: per-stage times of the server's image preparation for a drawn PNG and a JSON
body, with issue 28's targets, rendered by docs_tables.py; the benchmark stands on lenetlab alone."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

import docs_tables  # noqa: E402  (benchmarks/ is not a package)
import preprocess_speed  # noqa: E402
from lenetlab.data import images  # noqa: E402
from lenetlab.serve import app  # noqa: E402


def test_stages_time_the_drawn_png_and_the_json_body_and_the_docs_render_them():
    png = preprocess_speed.drawn_png()
    body = preprocess_speed.pixels_body(png)
    data = {"loadavg_1min_before": 1.0, "loadavg_1min_after": 1.0, "repeat": 3}
    data["target_ms"] = preprocess_speed.TARGETS_MS
    data["png_ms"] = preprocess_speed.stages(lambda: app._open_image(png, images.MAX_PIXELS), 3)
    data["json_ms"] = preprocess_speed.stages(lambda: app._pixels_image(body), 3)
    for stage in ("png_ms", "json_ms"):
        assert set(data[stage]) == {"read", "decode", "normalise", "to_tensor", "total"}
        assert data[stage]["total"] > 0 and data[stage]["normalise"] > 0
    text = "\n".join(docs_tables.render_preprocess({"meta": {}, "data": data}, None))
    assert "| target for the total | 1 | 0.3 |" in text and "280×280 drawn PNG" in text


def test_the_benchmark_imports_nothing_from_the_tests():
    source = (REPO / "benchmarks" / "preprocess_speed.py").read_text()
    tree = ast.parse(source)
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert "sys.path" not in source.replace("sys.path.insert(0, str(Path(__file__).resolve().parent))", "")
    assert names and not [n for n in names if n.split(".")[0] in ("tests", "helpers", "preprocess_reference")]
