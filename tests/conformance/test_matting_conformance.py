#!/usr/bin/env python3
"""Conformance of alpha matting: `cutout i -a -m isnet-general-use` against
what the real rembg 2.0.77 + pymatting 1.1.15 wrote for the same photos
(../shared/conformance/rembg-2.0.77/*.isnet.a.png).  The bar (issue #6):
same size and mode; alpha mean absolute difference <= 1.0 and 99% of the
pixels within +-8; the same for RGB where alpha > 0 (0-255 units).

Then every other photo of the set goes through -a (a few through -dc)
once, as a smoke test (no reference exists): exit 0, an RGBA image of the
input's size; warnings (fallbacks) are shown.

Exit 77 (skipped) when ../shared/conformance or the model is missing."""
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

BIN = os.environ["CUTOUT_BIN"]
CONF = os.environ.get("CUTOUT_CONFORMANCE", "")
MODELS = os.environ.get("CUTOUT_REAL_MODELS", "")
REF = os.path.join(CONF, "rembg-2.0.77")
MODEL = "isnet-general-use"


def metrics(got, want):
    g = np.asarray(got, dtype=np.int16)
    w = np.asarray(want, dtype=np.int16)
    da = np.abs(g[..., 3] - w[..., 3])
    on = (g[..., 3] > 0) | (w[..., 3] > 0)
    dc = np.abs(g[..., :3] - w[..., :3])[on]
    return (da.mean(), float((da <= 8).mean()), int(da.max()),
            dc.mean(), float((dc <= 8).mean()), int(dc.max()))


def main():
    if not os.path.isdir(REF):
        print(f"SKIP: {REF} not found (conformance data lives in ../shared)")
        return 77
    if not os.path.isfile(os.path.join(MODELS, MODEL + ".onnx")):
        print(f"SKIP: no {MODEL}.onnx in {MODELS} (run scripts/bootstrap.sh)")
        return 77
    env = dict(os.environ, U2NET_HOME=MODELS)
    tmp = tempfile.mkdtemp(prefix="cutout-matting-conf-")
    failures = []
    refs = sorted(glob.glob(os.path.join(REF, "*.isnet.a.png")))
    if not refs:
        print("SKIP: no *.isnet.a.png references")
        return 77
    print(f"{'reference':22s} {'alpha MAD':>9s} {'<=8':>8s} {'max':>4s} "
          f"{'RGB MAD':>8s} {'<=8':>8s} {'max':>4s} {'matting s':>9s}")
    done = set()
    for ref in refs:
        name = os.path.basename(ref).split(".")[0]
        done.add(name)
        src = os.path.join(CONF, "inputs", name + ".jpg")
        out = os.path.join(tmp, name + ".a.png")
        r = subprocess.run([BIN, "i", "-a", "-m", MODEL, "--stats=json", src, out],
                           env=env, capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"{name}: exit {r.returncode}: {r.stderr.strip()}")
            continue
        if "warning" in r.stderr:
            failures.append(f"{name}: matting fell back: {r.stderr.strip()}")
        stats = {}
        for line in r.stderr.splitlines():
            if line.startswith("{"):
                stats = json.loads(line)
        t = stats.get("stages", {}).get("matting", {}).get("wall_s", float("nan"))
        got, want = Image.open(out), Image.open(ref)
        if got.mode != want.mode or got.size != want.size:
            failures.append(f"{name}: {got.mode}{got.size} != {want.mode}{want.size}")
            continue
        am, a8, amax, cm, c8, cmax = metrics(got, want)
        print(f"{name:22s} {am:9.4f} {a8:8.4%} {amax:4d} {cm:8.4f} {c8:8.4%} {cmax:4d} {t:9.3f}")
        if am > 1.0 or a8 < 0.99:
            failures.append(f"{name}: alpha MAD {am:.4f}, within 8: {a8:.4%}")
        if cm > 1.0 or c8 < 0.99:
            failures.append(f"{name}: RGB MAD {cm:.4f}, within 8: {c8:.4%}")

    # Smoke: the other photos through -a (and the first three through -dc,
    # whose arithmetic the unit tests check exactly).
    others = [p for p in sorted(glob.glob(os.path.join(CONF, "inputs", "*.jpg")))
              if os.path.basename(p)[:-4] not in done]
    for k, src in enumerate(others):
        name = os.path.basename(src)[:-4]
        size = Image.open(src).size
        for flag in ("-a", "-dc") if k < 3 else ("-a",):
            out = os.path.join(tmp, f"{name}{flag}.png")
            r = subprocess.run([BIN, "i", flag, "-m", MODEL, src, out], env=env,
                               capture_output=True, text=True)
            if r.returncode != 0:
                failures.append(f"{name} {flag}: exit {r.returncode}: {r.stderr.strip()}")
                continue
            im = Image.open(out)
            if im.mode != "RGBA" or im.size != size:
                failures.append(f"{name} {flag}: {im.mode}{im.size}")
            note = r.stderr.strip().replace("\n", " ")
            print(f"smoke {name:16s} {flag:3s} ok{'  (' + note + ')' if note else ''}")

    for f in failures:
        print("FAIL", f)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
