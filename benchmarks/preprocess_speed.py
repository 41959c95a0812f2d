"""Per-stage medians (ms) of preparing one request's image, single-threaded, against issue #28's targets: a
280x280 drawn PNG (as the browser page sends) and a 28x28 JSON pixel body, through the server's own functions.

    python benchmarks/preprocess_speed.py [--repeat 300] [--out results/preprocess-speed.json]

Stages: read (the PNG's header; the JSON's parse and validation), decode (``images.load_gray``), normalise
(``images.normalise``), to tensor; and the total as the server runs it (its ``_preprocess``).
"""

import argparse
import io
import json
import os
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from lenetlab import timing
from lenetlab.data import images
from lenetlab.serve import app

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_io beside this script
from results_io import command_line, make_meta, write_results

#: Issue #28's targets for the whole preparation (decode and normalisation), in ms.
TARGETS_MS = {"png": 1.0, "json": 0.3}


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


def stages(read, repeat: int) -> dict:
    """Median ms of each stage for the body that ``read()`` reads as the server does (a lazily opened image)."""
    limit = images.MAX_PIXELS
    gray = images.load_gray(read())
    x = images.normalise(gray)
    read_ms = median_ms(read, repeat)
    return {
        "read": read_ms,
        "decode": round(median_ms(lambda: images.load_gray(read()), repeat) - read_ms, 4),
        "normalise": median_ms(lambda: images.normalise(gray), repeat),
        "to_tensor": median_ms(lambda: torch.from_numpy(x).unsqueeze(0), repeat),
        "total": median_ms(lambda: app._preprocess(read(), limit), repeat),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=300)
    p.add_argument("--out", default=None, help="write the figures to this results file (docs/serving.md's table)")
    args = p.parse_args()
    png = drawn_png()
    body = pixels_body(png)
    result = {"loadavg_1min_before": os.getloadavg()[0], "repeat": args.repeat, "target_ms": TARGETS_MS}
    with timing.threads(1):
        result["png_ms"] = stages(lambda: app._open_image(png, images.MAX_PIXELS), args.repeat)
        result["json_ms"] = stages(lambda: app._pixels_image(body), args.repeat)
    result["loadavg_1min_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=1))
    if args.out:
        command = command_line(sys.argv[1:], "python benchmarks/preprocess_speed.py")
        write_results(args.out, make_meta("preprocess-speed", "Preparing one request's image", command), data=result)


if __name__ == "__main__":
    main()
