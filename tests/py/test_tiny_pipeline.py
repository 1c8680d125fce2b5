#!/usr/bin/env python3
"""The cutout binary against rembg's pipeline (rembg_ref.py) on a tiny
generated model whose network numpy can evaluate: images of every mode
(RGB, L, LA, RGBA, P, CMYK JPEG, EXIF-rotated), and the options -om, -ppm,
-bgc, putalpha.  The network's float sums may round differently in ORT and
numpy, so masks may differ by 1 at a few pixels; everything else is exact
arithmetic and must agree to that bound."""
import io
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import rembg_ref  # noqa: E402

BIN = os.environ["CUTOUT_BIN"]
MODELS = os.environ["CUTOUT_TEST_MODELS"]
MODEL = os.path.join(MODELS, "tiny-64.onnx")
FN = rembg_ref.tiny_conv(np.load(os.path.join(MODELS, "tiny-weights.npy")))
failures = []


def photo(w, h, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1),
                     ((xx + yy) * 7) % 256], axis=-1)
    noise = rng.integers(0, 40, size=(h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def encode(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def cases():
    rgb = photo(97, 61, 1)
    yield "rgb-png", encode(rgb, "PNG")
    yield "grey-png", encode(rgb.convert("L"), "PNG")
    yield "la-png", encode(rgb.convert("LA"), "PNG")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray((np.arange(97 * 61) % 256).reshape(61, 97).astype(np.uint8)))
    yield "rgba-png", encode(rgba, "PNG")
    yield "p-png", encode(rgb.convert("P"), "PNG")
    yield "rgb-jpeg", encode(photo(120, 80, 2), "JPEG", quality=92)
    yield "cmyk-jpeg", encode(photo(50, 40, 3).convert("CMYK"), "JPEG")
    ex = Image.Exif()
    ex[0x0112] = 6
    yield "exif6-jpeg", encode(photo(64, 48, 4), "JPEG", exif=ex.tobytes())
    yield "big-upscale", encode(photo(300, 200, 5), "PNG")


def compare(name, got, want, tol, frac=0.0):
    """Fail when more than frac of the values differ by more than tol."""
    if got.mode != want.mode or got.size != want.size:
        failures.append(f"{name}: mode/size {got.mode}{got.size} != {want.mode}{want.size}")
        return
    d = np.abs(np.asarray(got, dtype=np.int16) - np.asarray(want, dtype=np.int16))
    share = float((d > tol).mean())
    if share > frac:
        failures.append(f"{name}: {share:.2%} of values differ by more than {tol} "
                        f"(max {d.max()}, mean {d.mean():.4f})")


def main():
    tmp = tempfile.mkdtemp(prefix="cutout-tiny-")
    variants = [("default", [], {}), ("om", ["-om"], {"only_mask": True}),
                ("ppm", ["-ppm"], {"post_process_mask": True}),
                ("bgc", ["-bgc", "255", "0", "0", "255"], {"bgcolor": (255, 0, 0, 255)}),
                ("semi-bgc", ["-bgc", "10", "200", "30", "128"], {"bgcolor": (10, 200, 30, 128)}),
                ("putalpha", ["-x", '{"putalpha": true}'], {"putalpha": True})]
    n = 0
    for name, data in cases():
        src = os.path.join(tmp, name + ".img")
        with open(src, "wb") as f:
            f.write(data)
        for vname, flags, kw in variants:
            out = os.path.join(tmp, f"{name}.{vname}.png")
            r = subprocess.run([BIN, "i", "-m", MODEL] + flags + [src, out],
                               capture_output=True, text=True)
            n += 1
            if r.returncode != 0:
                failures.append(f"{name}/{vname}: exit {r.returncode}: {r.stderr.strip()}")
                continue
            want = rembg_ref.remove(data, FN, 64, **kw)
            if kw.get("putalpha") and want.mode in ("LA", "PA"):
                want = want.convert("RGBA")  # cutout composites LA as RGBA (documented)
            if vname == "ppm":
                # A 1-off mask value can flip a pixel at the 127 threshold.
                compare(f"{name}/{vname}", Image.open(out), want, 0, 0.01)
            else:
                compare(f"{name}/{vname}", Image.open(out), want, 1)
    for f in failures:
        print("FAIL", f)
    print(f"{n - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
