"""Per-stage medians (ms) of preparing one request's image: a 280x280 drawn PNG (as the browser page
sends) and a 28x28 JSON pixel body, through the server's own functions.

    python benchmarks/preprocess_speed.py [--repeat 200] [--out results/preprocess-speed.json]

Times the straightforward reference first (the test's), then the current code, in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from lenetlab import timing
from lenetlab.data import images
from lenetlab.serve import app

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_io beside this script
from results_io import command_line, make_meta, write_results


def drawn_png(ink: int = 255, paper: int = 0) -> bytes:
    """A 280x280 canvas digit: anti-aliased strokes about 18 px wide, like the page's pen."""
    big = Image.new("L", (1120, 1120), paper)
    d = ImageDraw.Draw(big)
    d.line([(400, 240), (720, 240), (560, 880)], fill=ink, width=72, joint="curve")  # a 7
    img = big.resize((280, 280), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.convert("RGBA").save(buf, format="PNG")  # the canvas's toDataURL gives RGBA
    return buf.getvalue()


def pixels_body(png: bytes) -> bytes:
    x = images.preprocess_image(png)[0].numpy()
    return json.dumps({"pixels": x.astype(int).tolist()}).encode()


def median_ms(fn, repeat: int) -> float:
    """Median milliseconds of ``repeat`` calls of ``fn()`` (lenetlab.timing's latency clock)."""
    return round(timing.latency(lambda _: fn(), [None], repeat, warmup=3)["p50_ms"], 4)


def stages(png: bytes, body: bytes, repeat: int) -> dict:
    """Median ms of each stage of the server's path for the drawn PNG and the JSON body."""
    gray = images.load_gray(app._open_image(png, images.MAX_PIXELS))
    limit = images.MAX_PIXELS
    return {
        "png_open_decode_gray": median_ms(lambda: images.load_gray(app._open_image(png, limit)), repeat),
        "png_normalise": median_ms(lambda: images.preprocess_image(gray), repeat),
        "png_total": median_ms(lambda: app._preprocess(app._open_image(png, limit), limit), repeat),
        "json_parse_validate": median_ms(lambda: app._pixels_image(body), repeat),
        "json_total": median_ms(lambda: app._preprocess(app._pixels_image(body), limit), repeat),
    }


@contextlib.contextmanager
def reference():
    """The straightforward implementation (kept as the reference in tests/data/test_fast_preprocess.py)."""
    root = Path(__file__).resolve().parents[1] / "tests"
    sys.path[:0] = [str(root), str(root / "data")]
    from test_fast_preprocess import _reference_background, _reference_max_filter

    saved = images._fit_background, images._max_filter
    images._fit_background, images._max_filter = _reference_background, _reference_max_filter
    try:
        yield
    finally:
        images._fit_background, images._max_filter = saved


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--out", default=None, help="write the figures to this results file (docs/serving.md's table)")
    args = p.parse_args()
    png = drawn_png()
    body = pixels_body(png)
    result = {"loadavg_1min_before": os.getloadavg()[0], "repeat": args.repeat}
    with reference():
        result["reference_ms"] = stages(png, body, args.repeat)
    result["current_ms"] = stages(png, body, args.repeat)
    result["loadavg_1min_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=1))
    if args.out:
        command = command_line(sys.argv[1:], "python benchmarks/preprocess_speed.py")
        write_results(args.out, make_meta("preprocess-speed", "Preparing one request's image", command), data=result)


if __name__ == "__main__":
    main()
