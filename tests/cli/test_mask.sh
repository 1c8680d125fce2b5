#!/usr/bin/env bash
# `cutout i --mask FILE` (cutout_apply_mask): the rest of the pipeline on a
# mask the user brings, checked against numpy on real pixels: the naive
# cutout (rembg's premultiplied RGB, Pillow's rounding), -om, putalpha and
# -bgc; an RGB mask is taken as Pillow's convert("L"); a mask of the wrong
# size, or no mask file, is one clear error and no output.  With rembg's
# own mask of a conformance photo, the cutout equals rembg's byte for byte.
set -u
BIN=${CUTOUT_BIN:?}
PY=${CUTOUT_PYTHON:-/usr/bin/python3}
CONF=${CUTOUT_CONFORMANCE:-}
T=$(mktemp -d /tmp/cutout-mask-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

"$PY" - "$T" <<'PY'
import sys
import numpy as np
from PIL import Image
t = sys.argv[1]
rng = np.random.default_rng(7)
Image.fromarray(rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)).save(f"{t}/img.png")
m = rng.integers(0, 256, (90, 130), dtype=np.uint8)
Image.fromarray(m).save(f"{t}/mask.png")
Image.fromarray(np.stack([m, m // 2, 255 - m], -1)).save(f"{t}/mask-rgb.png")
Image.fromarray(m[:50, :60]).save(f"{t}/small.png")
PY

check() { # NAME EXPECT-SCRIPT (compares $T/out.png with what Pillow makes)
  "$PY" - "$T" "$2" <<'PY' && ok "$1" || bad "$1"
import sys
import numpy as np
from PIL import Image
t, kind = sys.argv[1], sys.argv[2]
img = Image.open(f"{t}/img.png").convert("RGB")
mask = Image.open(f"{t}/mask.png")
if kind == "rgbmask":
    mask = Image.open(f"{t}/mask-rgb.png").convert("L")
if kind in ("naive", "rgbmask"):
    want = Image.composite(img, Image.new("RGBA", img.size, 0), mask)
    want = Image.alpha_composite(Image.new("RGBA", img.size, (0, 0, 0, 0)), want)
elif kind == "om":
    want = mask
elif kind == "putalpha":  # then the CLI's default background, as rembg
    want = img.copy(); want.putalpha(mask)
    want = Image.alpha_composite(Image.new("RGBA", img.size, (0, 0, 0, 0)), want)
elif kind == "bgc":
    cut = Image.composite(img, Image.new("RGBA", img.size, 0), mask)
    want = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), cut)
got = Image.open(f"{t}/out.png")
a, b = np.asarray(got), np.asarray(want)
if got.mode != want.mode or a.shape != b.shape or not (a == b).all():
    print(f"{kind}: {got.mode} {a.shape} vs {want.mode} {b.shape}, "
          f"max diff {np.abs(a.astype(int) - b.astype(int)).max() if a.shape == b.shape else '-'}")
    sys.exit(1)
PY
}

"$BIN" i --mask "$T/mask.png" "$T/img.png" "$T/out.png" && check naive naive || bad "naive: exit $?"
"$BIN" i --mask "$T/mask.png" -om "$T/img.png" "$T/out.png" && check only-mask om || bad "om: exit $?"
"$BIN" i --mask "$T/mask.png" -x '{"putalpha": true}' "$T/img.png" "$T/out.png" &&
  check putalpha putalpha || bad "putalpha: exit $?"
"$BIN" i --mask "$T/mask.png" -bgc 255 255 255 255 "$T/img.png" "$T/out.png" &&
  check bgcolor bgc || bad "bgc: exit $?"
"$BIN" i --mask "$T/mask-rgb.png" "$T/img.png" "$T/out.png" && check rgb-mask rgbmask ||
  bad "rgb mask: exit $?"

rm -f "$T/out.png"
if "$BIN" i --mask "$T/small.png" "$T/img.png" "$T/out.png" 2>"$T/err"; then
  bad "wrong-size mask accepted"
elif [ -e "$T/out.png" ] || [ "$(wc -l <"$T/err")" != 1 ] ||
  ! grep -q "small.png: the mask must be greyscale (L) and 130x90" "$T/err"; then
  bad "wrong-size mask: $(cat "$T/err")"
else
  ok "wrong-size mask refused: $(cat "$T/err")"
fi
if "$BIN" i --mask "$T/nope.png" "$T/img.png" "$T/out.png" 2>"$T/err" ||
  [ -e "$T/out.png" ] || ! grep -q "nope.png" "$T/err"; then
  bad "missing mask file: $(cat "$T/err")"
else
  ok "missing mask file: $(cat "$T/err")"
fi

# rembg's own mask of a real photo gives rembg's own cutout
if [ -n "$CONF" ] && [ -d "$CONF/rembg-2.0.77" ]; then
  "$BIN" i --mask "$CONF/rembg-2.0.77/girl-1.isnet.om.png" "$CONF/inputs/girl-1.jpg" "$T/out.png" &&
    "$PY" -c "
import sys, numpy as np
from PIL import Image
a = np.asarray(Image.open('$T/out.png')); b = np.asarray(Image.open('$CONF/rembg-2.0.77/girl-1.isnet.png'))
sys.exit(0 if a.shape == b.shape and (a == b).all() else 1)" &&
    ok "girl-1 with rembg's mask equals rembg's cutout" || bad "girl-1 with rembg's mask"
else
  echo "skip: no conformance data for the real-photo check"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
