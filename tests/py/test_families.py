#!/usr/bin/env python3
"""Every rembg model family end to end through `cutout i` (issue #7), against
rembg's pipeline restated in rembg_ref.py with the tiny networks of
tests/models/gen_family_models.py evaluated in numpy.

The tiny models sit under rembg's file names in a model folder ($MODELS/home)
with checksums off, as a user's converted models would.  ORT and numpy sum
floats in different orders, so a mask may differ by 1 at some pixels, and
cloth-seg's argmax may flip where two classes tie to the last bit; SAM's
pixels whose decoder value is within 0.05 of 0 (but not exactly 0) are
left out.  Everything
else is exact.  Also: the cc / cloth_category extras, SAM prompts (points,
rectangles, errors), custom models inside and outside the model folder,
execution providers, `cutout models` and the providers in `cutout config`.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import rembg_ref as R  # noqa: E402

BIN = os.environ["CUTOUT_BIN"]
HOME = os.path.join(os.environ["CUTOUT_TEST_MODELS"], "home")
NET = R.TinyFamilies(HOME)
ENV = dict(os.environ, U2NET_HOME=HOME, MODEL_CHECKSUM_DISABLED="1")
TMP = tempfile.mkdtemp(prefix="cutout-families-")
failures = []
count = 0


def photo(w, h, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1),
                     ((xx + yy) * 7) % 256], axis=-1)
    a = np.clip(base + rng.integers(0, 40, size=(h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(a, "RGB").convert(mode)


def run(args, env=ENV):
    return subprocess.run([BIN] + args, capture_output=True, text=True, env=env)


def cutout(img, model, flags=(), name="x"):
    """cutout i on img; the result image, or None (failure recorded)."""
    src = os.path.join(TMP, name + ".png")
    out = os.path.join(TMP, name + ".out.png")
    img.save(src)
    r = run(["i", "--offline", "-m", model] + list(flags) + [src, out])
    if r.returncode != 0:
        failures.append(f"{name}: exit {r.returncode}: {r.stderr.strip()}")
        return None
    return Image.open(out)


def compare(name, got, want, tol=1, frac=0.0, where=None):
    global count
    count += 1
    if got is None:
        return
    if got.mode != want.mode or got.size != want.size:
        failures.append(f"{name}: mode/size {got.mode}{got.size} != {want.mode}{want.size}")
        return
    d = np.abs(np.asarray(got, dtype=np.int16) - np.asarray(want, dtype=np.int16))
    if where is not None:
        d = d[where]
    share = float((d > tol).mean()) if d.size else 0.0
    if share > frac:
        failures.append(f"{name}: {share:.3%} of values differ by more than {tol} "
                        f"(max {d.max()}, mean {d.mean():.4f})")


def common_families():
    img = photo(97, 61, 1)
    names = ["u2net", "u2netp", "u2net_human_seg", "silueta", "isnet-anime", "bria-rmbg"]
    names += R.BIREFNETS
    for name in names:
        masks = R.predict_family(img, name, NET.common)
        compare(f"{name} -om", cutout(img, name, ["-om"], name), R.remove_masks(img, masks, only_mask=True))
        if name in ("u2net", "birefnet-general", "bria-rmbg"):
            compare(f"{name} default", cutout(img, name, [], name + "-d"), R.remove_masks(img, masks))
    # a grey and an RGBA photo through two families
    for mode in ("L", "RGBA"):
        im = photo(70, 90, 2, mode)
        for name in ("silueta", "birefnet-dis"):
            masks = R.predict_family(im, name, NET.common)
            compare(f"{name} {mode} -om", cutout(im, name, ["-om"], f"{name}-{mode}"),
                    R.remove_masks(im, masks, only_mask=True))


def custom_models():
    img = photo(64, 48, 3)
    inside = os.path.join(HOME, "my-custom-u2net.onnx")
    masks = R.predict_family(img, "u2net_custom", NET.common)
    compare("u2net_custom", cutout(img, "u2net_custom", ["-om", "-x", json.dumps({"model_path": inside})],
                                   "custom"), R.remove_masks(img, masks, only_mask=True))
    dis = os.path.join(HOME, "my-custom-dis.onnx")
    for name in ("dis_custom", "ben_custom"):
        masks = R.predict_family(img, name, NET.common)
        compare(name, cutout(img, name, ["-om", "-x", json.dumps({"model_path": dis})], name),
                R.remove_masks(img, masks, only_mask=True))
    # outside the model folder: rembg's path-traversal rule
    src = os.path.join(TMP, "custom.png")
    for path in (os.path.join(os.environ["CUTOUT_TEST_MODELS"], "tiny-64.onnx"),
                 os.path.join(HOME, "..", "tiny-64.onnx")):
        r = run(["i", "--offline", "-m", "u2net_custom", "-x", json.dumps({"model_path": path}),
                 src, os.path.join(TMP, "nope.png")])
        if r.returncode == 0 or "outside the model folder" not in r.stderr:
            failures.append(f"custom outside: exit {r.returncode}: {r.stderr.strip()}")
    r = run(["i", "--offline", "-m", "u2net_custom", src, os.path.join(TMP, "nope.png")])
    if r.returncode == 0 or "needs model_path" not in r.stderr:
        failures.append(f"custom without model_path: {r.stderr.strip()}")


def cloth():
    img = photo(120, 90, 4)
    # argmax near-ties can fall either way between ORT and numpy: allow a
    # few pixels (and their LANCZOS neighbourhood) to differ
    frac = 0.002
    masks = R.cloth_masks(img, NET.cloth)
    got = cutout(img, "u2net_cloth_seg", [], "cloth")
    compare("cloth default (3 stacked)", got, R.remove_masks(img, masks), 1, frac)
    compare("cloth -om", cutout(img, "u2net_cloth_seg", ["-om"], "cloth-om"),
            R.remove_masks(img, masks, only_mask=True), 1, frac)
    compare("cloth putalpha -bgc", cutout(img, "u2net_cloth_seg",
                                          ["-x", '{"putalpha": true}', "-bgc", "9", "8", "7", "255"],
                                          "cloth-pa"),
            R.remove_masks(img, masks, putalpha=True, bgcolor=(9, 8, 7, 255)), 1, frac)
    for cat in ("upper", "lower", "full"):
        one = R.cloth_masks(img, NET.cloth, cat)
        compare(f"cloth cc={cat} -om", cutout(img, "u2net_cloth_seg", ["-om", "-x", json.dumps({"cc": cat})],
                                              "cloth-" + cat),
                R.remove_masks(img, one, only_mask=True), 1, frac)
    one = R.cloth_masks(img, NET.cloth, "lower")
    compare("cloth cloth_category=lower", cutout(img, "u2net_cloth_seg",
                                                 ["-x", '{"cloth_category": "lower"}'], "cloth-cat"),
            R.remove_masks(img, one), 1, frac)
    # cc wins over cloth_category when both are given; an unknown one
    # gives all three masks (with a warning)
    compare("cloth cc+cloth_category", cutout(img, "u2net_cloth_seg",
                                              ["-om", "-x", '{"cloth_category": "lower", "cc": "full"}'],
                                              "cloth-both"),
            R.remove_masks(img, R.cloth_masks(img, NET.cloth, "full"), only_mask=True), 1, frac)
    compare("cloth cc=shirt", cutout(img, "u2net_cloth_seg", ["-om", "-x", '{"cc": "shirt"}'],
                                     "cloth-shirt"),
            R.remove_masks(img, masks, only_mask=True), 1, frac)


def sam_case(name, img, prompt, flags=()):
    canvas, coord, label, matrix = R.sam_inputs(img, prompt)
    emb = NET.sam_encoder(canvas)
    masks = NET.sam_decoder(emb, coord, label)
    values = R.sam_unwarp(masks, img.size, matrix)
    want = R.sam_mask(values)
    v = np.stack(values)
    # exact zeros (outside every disc: 0 * distance) are exact in ORT too
    certain = (v > 0.05).any(axis=0) | ((v < -0.05) | (v == 0)).all(axis=0)
    x = [] if prompt is None else ["-x", json.dumps({"sam_prompt": prompt})]
    got = cutout(img, "sam", ["-om"] + x + list(flags), "sam-" + name)
    compare(f"sam {name}", got, want, 0, 0.0, where=certain)
    if certain.mean() < 0.9:
        failures.append(f"sam {name}: only {certain.mean():.1%} of pixels are decidable")
    return want


def sam():
    img = photo(400, 300, 5)
    sam_case("default", img, None)
    sam_case("points", img, [{"type": "point", "label": 1, "data": [60, 70]},
                             {"type": "point", "label": 0, "data": [300, 200]}])
    sam_case("rectangle", img, [{"type": "rectangle", "data": [100, 50, 380, 260]}])
    sam_case("wide", photo(1600, 300, 6), [{"type": "point", "label": 1, "data": [1500.5, 10]}])
    sam_case("tall", photo(200, 900, 7, "RGBA"), [{"type": "point", "label": 2, "data": [20, 850]}])
    # the cutout itself: the naive cutout of the mask
    want = R.remove_masks(img, [sam_case("for-cutout", img, None)])
    compare("sam cutout", cutout(img, "sam", [], "sam-cut"), want, 0, 0.002)
    # bad prompts: one clear line each, nothing written
    src = os.path.join(TMP, "sam-default.png")
    for prompt, want_msg in (('{"sam_prompt": {"type": "point"}}', "must be a list"),
                             ('{"sam_prompt": [{"type": "point", "data": [1, 2]}]}', "without a \"label\""),
                             ('{"sam_prompt": [{"type": "circle", "label": 1, "data": [1, 2]}]}', "type other"),
                             ('{"sam_prompt": [{"type": "rectangle", "data": [1, 2]}]}', "[x1, y1, x2, y2]"),
                             ('{"sam_prompt": [{"type": "point", "label": 1.5, "data": [1, 2]}]}', "not an integer"),
                             ('{"sam_prompt": []}', "no point"),
                             ('{"sam_model": "../../x"}', "bad sam_model")):
        out = os.path.join(TMP, "bad-sam.png")
        r = run(["i", "--offline", "-m", "sam", "-x", prompt, src, out])
        if r.returncode == 0 or want_msg not in r.stderr or os.path.exists(out):
            failures.append(f"sam bad prompt {prompt}: exit {r.returncode}: {r.stderr.strip()}")


def providers_and_listing():
    img = photo(50, 40, 8)
    masks = R.predict_family(img, "u2netp", NET.common)
    compare("--providers cpu", cutout(img, "u2netp", ["-om", "--providers", "cpu"], "prov"),
            R.remove_masks(img, masks, only_mask=True))
    compare("-x providers", cutout(img, "u2netp", ["-om", "-x", '{"providers": ["CPUExecutionProvider"]}'],
                                   "prov2"), R.remove_masks(img, masks, only_mask=True))
    src = os.path.join(TMP, "prov.png")
    for flag, msg in ((["--providers", "cuda"], "CUDAExecutionProvider"),
                      (["-x", '{"providers": ["TensorrtExecutionProvider"]}'], "TensorrtExecutionProvider"),
                      (["--providers", "quantum"], "unknown execution provider")):
        r = run(["i", "--offline", "-m", "u2netp"] + flag + [src, os.path.join(TMP, "np.png")])
        if r.returncode == 0 or msg not in r.stderr or len(r.stderr.strip().splitlines()) != 1:
            failures.append(f"providers {flag}: exit {r.returncode}: {r.stderr.strip()}")
    r = run(["config"])
    if r.returncode != 0 or "CPUExecutionProvider" not in r.stdout:
        failures.append(f"cutout config does not list the providers: {r.stdout[-300:]}")

    r = run(["models", "--json"])
    try:
        listing = json.loads(r.stdout)
    except ValueError:
        failures.append(f"cutout models --json: not JSON: {r.stdout[:200]} {r.stderr}")
        return
    by = {m["name"]: m for m in listing["models"]}
    want = ["u2net", "u2netp", "u2net_human_seg", "u2net_cloth_seg", "silueta", "isnet-general-use",
            "isnet-anime", "sam", "bria-rmbg", "u2net_custom", "dis_custom", "ben_custom"] + R.BIREFNETS
    for n in want:
        if n not in by:
            failures.append(f"cutout models: {n} missing")
    checks = [("u2net", "present", True), ("u2net_cloth_seg", "present", True), ("sam", "present", True),
              ("isnet-general-use", "present", False), ("u2net_custom", "status", "custom"),
              ("bria-rmbg", "family", "bria"), ("u2net_cloth_seg", "input", "768x768"),
              ("sam", "input", "1024x684"), ("u2net", "input", "320x320")]
    for n, key, val in checks:
        if by.get(n, {}).get(key) != val:
            failures.append(f"cutout models: {n}.{key} = {by.get(n, {}).get(key)!r}, want {val!r}")
    if "non-commercial" not in (by.get("bria-rmbg", {}).get("note") or ""):
        failures.append("cutout models: bria-rmbg's licence note is missing")
    if listing.get("model_dir") != HOME:
        failures.append(f"cutout models: model_dir {listing.get('model_dir')}")
    r = run(["models"])
    if r.returncode != 0 or "u2net_cloth_seg" not in r.stdout or "non-commercial" not in r.stdout:
        failures.append(f"cutout models (text): {r.stdout[:300]} {r.stderr}")


def main():
    for fn in (common_families, custom_models, cloth, sam, providers_and_listing):
        fn()
    for f in failures:
        print("FAIL", f)
    print(f"{count} comparisons, {len(failures)} failures")
    if failures:
        print("inputs and outputs kept in", TMP)
        return 1
    shutil.rmtree(TMP, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
