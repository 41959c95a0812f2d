"""Per-stage medians (ms) of preparing one request's image: a 280x280 drawn PNG (as the browser page
sends) and a 28x28 JSON pixel body, through the server's own functions.

    python benchmarks/preprocess_speed.py [--repeat 200] [--out results/preprocess-speed.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time

import numpy as np
from PIL import Image, ImageDraw

from lenetlab.data import images
from lenetlab.serve import app


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
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(1e3 * float(np.median(times)), 4)


def stages(png: bytes, body: bytes, repeat: int) -> dict:
    def decode():
        img = app._open_image(png, images.MAX_PIXELS)
        return images.load_gray(img)

    gray = decode()
    return {
        "png_open_decode_gray": median_ms(decode, repeat),
        "png_normalise": median_ms(lambda: images.preprocess_image(gray), repeat),
        "png_total": median_ms(lambda: app._preprocess(app._open_image(png, images.MAX_PIXELS),
                                                      images.MAX_PIXELS), repeat),
        "json_parse_validate": median_ms(lambda: app._pixels_image(body), repeat),
        "json_normalise": median_ms(lambda: app._preprocess(app._pixels_image(body), images.MAX_PIXELS),
                                    repeat) - median_ms(lambda: app._pixels_image(body), repeat),
        "json_total": median_ms(lambda: app._preprocess(app._pixels_image(body), images.MAX_PIXELS), repeat),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--label", default="current")
    p.add_argument("--out", default=None, help="merge the figures under LABEL into this JSON file")
    args = p.parse_args()
    png = drawn_png()
    body = pixels_body(png)
    result = {"stages_ms": stages(png, body, args.repeat), "loadavg": os.getloadavg()[0],
              "repeat": args.repeat}
    print(json.dumps({args.label: result}, indent=1))
    if args.out:
        data = json.load(open(args.out)) if os.path.exists(args.out) else {}
        data[args.label] = result
        with open(args.out, "w") as f:
            json.dump(data, f, indent=1)


if __name__ == "__main__":
    main()
