#!/usr/bin/env python3
"""Benchmark of alpha matting (issue #6), not a test: `cutout i -a` on
conformance photos at 480x360-ish (as shot), 1920x1080 and 4000x3000
(upscaled with Pillow's LANCZOS into a temporary folder, saved as JPEG
quality 95), N runs each; prints the fastest run's matting stage (trimap to
final RGBA: wall, CPU, CPU/wall) and end-to-end wall time, peak RSS, and
the same photo without -a for comparison.

  CUTOUT_BIN=build/cutout U2NET_HOME=.deps/models \\
      /usr/bin/python3 tests/conformance/bench_matting.py [RUNS] [PHOTO...]
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from PIL import Image

BIN = os.environ.get("CUTOUT_BIN", "build/cutout")
CONF = os.environ.get("CUTOUT_CONFORMANCE",
                      os.path.join(os.path.dirname(__file__), "../../../shared/conformance"))
SIZES = [None, (1920, 1080), (4000, 3000)]


def run(args):
    t0 = time.monotonic()
    r = subprocess.run([BIN, "i", "-m", "isnet-general-use", "--stats=json"] + args,
                       capture_output=True, text=True)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"cutout failed: {r.stderr}")
    stats = json.loads([ln for ln in r.stderr.splitlines() if ln.startswith("{")][-1])
    warn = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    return wall, stats, warn


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    photos = sys.argv[2:] or ["car-1", "girl-1"]
    tmp = tempfile.mkdtemp(prefix="cutout-bench-matting-")
    print(f"{'input':24s} {'matting s':>9s} {'CPU s':>6s} {'CPU/wall':>8s} "
          f"{'e2e -a s':>8s} {'e2e s':>6s} {'RSS -a MB':>9s} {'RSS MB':>7s} unknown")
    for name in photos:
        src = os.path.join(CONF, "inputs", name + ".jpg")
        im = Image.open(src).convert("RGB")
        for size in SIZES:
            if size:
                path = os.path.join(tmp, f"{name}-{size[0]}x{size[1]}.jpg")
                im.resize(size, Image.LANCZOS).save(path, quality=95)
            else:
                path, size = src, im.size
            out = os.path.join(tmp, "out.png")
            best = None
            for _ in range(runs):
                wall, st, warn = run(["-a", path, out])
                m = st["stages"]["matting"]
                if best is None or m["wall_s"] < best[1]["stages"]["matting"]["wall_s"]:
                    best = (wall, st, warn)
            plain = min((run([path, out]) for _ in range(runs)), key=lambda r: r[0])
            wall, st, warn = best
            m = st["stages"]["matting"]
            print(f"{name + ' %dx%d' % size:24s} {m['wall_s']:9.3f} {m['cpu_s']:6.2f} "
                  f"{m['cpu_s'] / m['wall_s']:8.2f} {wall:8.2f} {plain[0]:6.2f} "
                  f"{st['peak_rss_mb']:9.0f} {plain[1]['peak_rss_mb']:7.0f}"
                  f"{'  ' + warn[0] if warn else ''}", flush=True)


if __name__ == "__main__":
    main()
