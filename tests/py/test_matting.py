#!/usr/bin/env python3
"""The cutout binary's alpha matting (-a -af -ab -ae), decontamination
(-dc), --edge and --crop, end to end on a tiny generated model, against
matting_ref.py (pymatting restated) on the mask cutout itself predicts
(`-om`), so only the matting is under test here:

* -a: alpha within 1 of a direct sparse solve (cutout's PCG stops at
  pymatting's rtol 1e-7), colour within 1 where alpha > 0;
* -dc: identical to decontaminate_cutout();
* --edge premultiplied / straight / decontaminate = default / putalpha /
  -dc, byte for byte; --crop [MARGIN] = the uncropped image, cropped;
* fallbacks print a warning and give the plain cutout; in `p` and `b` too;
* bad values are usage errors.
The HTTP server's a/af/ab/ae/dc parameters belong with the server."""
import io
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import matting_ref  # noqa: E402

BIN = os.environ["CUTOUT_BIN"]
MODELS = os.environ["CUTOUT_TEST_MODELS"]
MODEL = os.path.join(MODELS, "tiny-64.onnx")
failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    if not ok:
        failures.append(what)


def run(args, **kw):
    return subprocess.run([BIN] + args, capture_output=True, text=True, **kw)


def subject(w, h, seed):
    """A textured bright disc with a soft rim on a dark textured ground: the
    tiny model's linear mask then has solid foreground and background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.hypot(xx - w * 0.45, yy - h * 0.5) - min(w, h) * 0.28
    a = np.clip(0.5 - d / 6.0, 0, 1)[..., None]
    # the tiny model's mask is 0.7 R - 0.4 G + 0.9 B, min-max normalised
    fg = np.stack([245 + 3 * np.sin(xx / 3.0), 30 + 0 * xx, 235 + (yy % 4)], -1)
    bg = np.stack([20 + (xx % 4), 200 + 0 * xx, 25 + 2 * np.cos(yy / 4.0)], -1)
    img = a * fg + (1 - a) * bg + rng.integers(-3, 4, size=(h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def over_transparent(rgba):
    """rembg's CLI applies bgcolor (0, 0, 0, 0) with alpha_composite."""
    im = Image.fromarray(rgba, "RGBA")
    return np.asarray(Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 0)), im))


def load(path):
    return np.asarray(Image.open(path))


def main():
    tmp = tempfile.mkdtemp(prefix="cutout-matting-")
    src = os.path.join(tmp, "subject.png")
    img = subject(120, 90, 1)
    img.save(src)
    rgb = np.asarray(img)
    out = lambda name: os.path.join(tmp, name + ".png")  # noqa: E731

    def cli(name, *flags):
        r = run(["i", "-m", MODEL, *flags, src, out(name)])
        check(r.returncode == 0, f"{name}: exit {r.returncode}: {r.stderr.strip()}")
        return r

    cli("om", "-om")
    mask = load(out("om"))
    tri = matting_ref.trimap(mask)
    check((tri == 255).any() and (tri == 0).any() and (tri == 128).any(),
          "test image: the trimap lacks a class")

    # -a against pymatting restated (direct solve)
    r = cli("a", "-a")
    check(r.stderr == "", f"-a: unexpected stderr {r.stderr!r}")
    want = over_transparent(matting_ref.alpha_matting_cutout(rgb, mask))
    got = load(out("a"))
    da = np.abs(got[..., 3].astype(int) - want[..., 3])
    check(da.max() <= 1, f"-a: alpha differs by up to {da.max()}")
    on = (got[..., 3] > 0) & (want[..., 3] > 0)
    drgb = np.abs(got[..., :3].astype(int) - want[..., :3])[on]
    check(drgb.max() <= 1 and drgb.mean() < 0.05,
          f"-a: colour differs: max {drgb.max()}, mean {drgb.mean():.4f}")
    # -af/-ab/-ae change the trimap as rembg's do
    cli("a2", "-a", "-af", "200", "-ab", "30", "-ae", "4")
    want = over_transparent(matting_ref.alpha_matting_cutout(rgb, mask, 200, 30, 4))
    da = np.abs(load(out("a2"))[..., 3].astype(int) - want[..., 3])
    check(da.max() <= 1, f"-a -af 200 -ab 30 -ae 4: alpha differs by {da.max()}")
    cli("a3", "-a", "-ae", "0")  # scipy's default 3x3 cross
    want = over_transparent(matting_ref.alpha_matting_cutout(rgb, mask, 240, 10, 0))
    da = np.abs(load(out("a3"))[..., 3].astype(int) - want[..., 3])
    check(da.max() <= 1, f"-a -ae 0: alpha differs by {da.max()}")

    # -dc: exactly decontaminate_cutout
    cli("dc", "-dc")
    want = over_transparent(matting_ref.decontaminate_cutout(rgb, mask))
    check(np.array_equal(load(out("dc")), want), "-dc differs from decontaminate_cutout")

    # --edge
    cli("default")
    cli("putalpha", "-x", '{"putalpha": true}')
    for mode, same in (("premultiplied", "default"), ("straight", "putalpha"),
                       ("decontaminate", "dc")):
        cli("edge-" + mode, "--edge", mode)
        check(np.array_equal(load(out("edge-" + mode)), load(out(same))),
              f"--edge {mode} differs from {same}")
        cli("edge2-" + mode, f"--edge={mode}")
        check(np.array_equal(load(out("edge2-" + mode)), load(out(same))),
              f"--edge={mode} differs from {same}")

    # --crop [MARGIN]
    full = load(out("default"))
    ys, xs = np.nonzero(full[..., 3] > 0)
    for args, m in ((["--crop"], 0), (["--crop", "3"], 3), (["--crop=7"], 7),
                    (["--crop", "1000"], 1000)):
        r = run(["i", "-m", MODEL, *args, src, out("crop")])
        check(r.returncode == 0, f"{args}: exit {r.returncode}: {r.stderr}")
        x0, y0 = max(xs.min() - m, 0), max(ys.min() - m, 0)
        x1, y1 = min(xs.max() + m + 1, full.shape[1]), min(ys.max() + m + 1, full.shape[0])
        check(np.array_equal(load(out("crop")), full[y0:y1, x0:x1]), f"{args}: wrong crop")
    run(["i", "-m", MODEL, "-om", "--crop", "2", src, out("crop-om")])
    ys2, xs2 = np.nonzero(mask > 0)
    check(np.array_equal(load(out("crop-om")),
                         mask[max(ys2.min() - 2, 0):ys2.max() + 3,
                              max(xs2.min() - 2, 0):xs2.max() + 3]), "-om --crop 2")
    # --crop before the background: an opaque colour still crops to the subject
    run(["i", "-m", MODEL, "--crop", "-bgc", "255", "255", "255", "255", src, out("crop-bgc")])
    check(load(out("crop-bgc")).shape[:2] == (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1),
          "--crop with -bgc: not the subject's box")

    # Fallbacks: a flat image has no foreground after min-max -> warning,
    # and the plain cutout (rembg's except ValueError)
    flat = os.path.join(tmp, "flat.png")
    Image.new("RGB", (40, 30), (90, 120, 150)).save(flat)
    r = run(["i", "-m", MODEL, "-a", flat, out("flat-a")])
    check(r.returncode == 0 and "warning" in r.stderr and "trimap" in r.stderr,
          f"fallback: exit {r.returncode}, stderr {r.stderr!r}")
    run(["i", "-m", MODEL, flat, out("flat")])
    check(np.array_equal(load(out("flat-a")), load(out("flat"))), "fallback != plain cutout")
    r = run(["i", "-m", MODEL, "-a", "-x", '{"putalpha": true}', flat, out("flat-pa")])
    run(["i", "-m", MODEL, "-x", '{"putalpha": true}', flat, out("flat-p")])
    check(np.array_equal(load(out("flat-pa")), load(out("flat-p"))), "fallback with putalpha")
    # a transparent cutout cannot be cropped: warning, image kept
    r = run(["i", "-m", MODEL, "--crop", flat, out("flat-crop")])
    check(r.returncode == 0 and "--crop" in r.stderr and
          load(out("flat-crop")).shape[:2] == (30, 40), f"empty crop: {r.stderr!r}")

    # p and b: same results as i, warnings printed
    pin, pout = os.path.join(tmp, "pin"), os.path.join(tmp, "pout")
    os.makedirs(pin)
    img.save(os.path.join(pin, "subject.png"))
    Image.open(flat).save(os.path.join(pin, "flat.png"))
    r = run(["p", "-m", MODEL, "-a", pin, pout])
    check(r.returncode == 0, f"p -a: exit {r.returncode}: {r.stderr}")
    check("warning" in r.stderr and "flat.png" in r.stderr, f"p -a: no warning: {r.stderr!r}")
    check(np.array_equal(load(os.path.join(pout, "subject.png")), load(out("a"))),
          "p -a differs from i -a")
    frames = rgb.tobytes() * 2
    r = subprocess.run([BIN, "b", "-m", MODEL, "-a", "120", "90", "-o",
                        os.path.join(tmp, "b-%d.png")], input=frames, capture_output=True)
    check(r.returncode == 0, f"b -a: exit {r.returncode}: {r.stderr!r}")
    check(np.array_equal(load(os.path.join(tmp, "b-1.png")), load(out("a"))),
          "b -a differs from i -a")

    # bad values
    for args in (["--edge", "soft"], ["-af", "256"], ["-ab", "-1"], ["-ae", "x"],
                 ["--crop=-3"], ["--crop=abc"]):
        r = run(["i", "-m", MODEL, *args, src, out("bad")])
        check(r.returncode == 2, f"{args}: exit {r.returncode}, want 2")

    for f in failures:
        print("FAIL", f)
    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
