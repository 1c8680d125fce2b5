#!/usr/bin/env bash
# cutout p: nested folders, same-named files, non-images, corrupt images,
# existing outputs, the summary and exit status, --flat, -d, SIGKILL in the
# middle and a rerun that completes the set.
set -u
BIN=${CUTOUT_BIN:?}
MODELS=${CUTOUT_TEST_MODELS:?}
PY=${CUTOUT_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/cutout-p-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
MODEL=$MODELS/tiny-64.onnx

"$PY" - "$T" <<'PY'
import io, os, sys
import numpy as np
from PIL import Image
t = sys.argv[1]
rng = np.random.default_rng(1)
def img(w, h):
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
for d in ["in/a", "in/b/deep", "in/c"]:
    os.makedirs(f"{t}/{d}", exist_ok=True)
img(40, 30).save(f"{t}/in/a/x.jpg")
img(50, 20).save(f"{t}/in/b/x.jpg")            # same name, other folder
img(33, 33).save(f"{t}/in/b/deep/y.png")
img(20, 60).save(f"{t}/in/c/z.webp")
img(25, 25).save(f"{t}/in/top.png")
img(25, 25).save(f"{t}/in/c/png-named.txt", "PNG")  # an image with a wrong name
open(f"{t}/in/notes.txt", "w").write("not an image\n")
open(f"{t}/in/c/fake.jpg", "w").write("not a jpeg either\n")
b = io.BytesIO(); img(64, 64).save(b, "JPEG"); open(f"{t}/in/c/broken.jpg", "wb").write(b.getvalue()[:300])
PY
mkdir -p "$T/out/b/deep"
echo "keep me" >"$T/out/b/deep/y.png"      # an existing output is skipped

"$BIN" p -m "$MODEL" "$T/in" "$T/out" 2>"$T/err1"; rc=$?
[ $rc -eq 1 ] && ok || bad "exit $rc with a corrupt input, want 1"
grep -q "5 processed, 3 skipped, 1 failed" "$T/err1" && ok || { bad "summary"; cat "$T/err1"; }
grep -q "1 output exists, 2 not an image" "$T/err1" && ok || bad "skip reasons"
grep -q "failed: $T/in/c/broken.jpg" "$T/err1" && ok || bad "failure named"
for f in a/x.png b/x.png c/z.png top.png c/png-named.png; do
  [ -s "$T/out/$f" ] && ok || bad "missing $f"
done
[ "$(cat "$T/out/b/deep/y.png")" = "keep me" ] && ok || bad "existing output overwritten"
[ -z "$(find "$T/out" -name '.cutout-tmp.*')" ] && ok || bad "temporary files left"
# outputs equal `cutout i` on the same input, byte for byte
"$BIN" i -m "$MODEL" "$T/in/a/x.jpg" "$T/single.png" && cmp -s "$T/single.png" "$T/out/a/x.png" && ok || bad "p output != i output"

# rerun: everything exists now -> all skipped, exit 1 still for the broken one
"$BIN" p -m "$MODEL" "$T/in" "$T/out" 2>"$T/err2"; rc=$?
grep -q "0 processed, 8 skipped, 1 failed" "$T/err2" && ok || { bad "rerun summary"; cat "$T/err2"; }

# --overwrite redoes, --flat collides same names (first wins), jpg format
rm -f "$T/in/c/broken.jpg"
"$BIN" p -m "$MODEL" --flat --format webp "$T/in" "$T/flat" 2>"$T/err3"; rc=$?
[ $rc -eq 0 ] && ok || { bad "flat exit $rc"; cat "$T/err3"; }
grep -q "flat output name $T/flat/x.webp is taken" "$T/err3" && ok || bad "flat collision reported"
[ -s "$T/flat/x.webp" ] && [ -s "$T/flat/y.webp" ] && ok || bad "flat outputs"
"$BIN" p -m "$MODEL" --overwrite "$T/in" "$T/out" 2>"$T/err4"
[ "$(head -c 4 "$T/out/b/deep/y.png" | od -An -c | tr -d ' ')" = '211PNG' ] && ok || bad "--overwrite"

# -d deletes inputs only once their output is written
mkdir -p "$T/din"; cp "$T/in/top.png" "$T/din/one.png"; cp "$T/in/a/x.jpg" "$T/din/two.jpg"
"$BIN" p -m "$MODEL" -d "$T/din" "$T/dout" 2>/dev/null
[ ! -e "$T/din/one.png" ] && [ ! -e "$T/din/two.jpg" ] && [ -s "$T/dout/one.png" ] && [ -s "$T/dout/two.png" ] && ok || bad "-d"

# SIGKILL midway, then rerun: a complete, correct set and no temporary file
mkdir -p "$T/many"
"$PY" - "$T/many" <<'PY'
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(2)
for i in range(40):
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(f"{sys.argv[1]}/img{i:02d}.png")
PY
BIG=$MODELS/tiny-isnet.onnx
"$BIN" p -m "$BIG" "$T/many" "$T/kout" 2>/dev/null &
pid=$!
for _ in $(seq 200); do
  n=$(find "$T/kout" -name '*.png' 2>/dev/null | wc -l)
  [ "$n" -ge 3 ] && break
  sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
n1=$(find "$T/kout" -name '*.png' | wc -l)
[ "$n1" -ge 1 ] && [ "$n1" -lt 40 ] && ok || bad "kill was not midway ($n1 outputs)"
"$BIN" p -m "$BIG" "$T/many" "$T/kout" 2>"$T/err5"; rc=$?
[ $rc -eq 0 ] && ok || { bad "rerun after kill exit $rc"; cat "$T/err5"; }
[ "$(find "$T/kout" -name '*.png' | wc -l)" -eq 40 ] && ok || bad "incomplete set after rerun"
[ -z "$(find "$T/kout" -name '.cutout-tmp.*')" ] && ok || bad "temporary file left after rerun"
"$PY" - "$T/kout" <<'PY' && ok || bad "a corrupt output after kill + rerun"
import glob, sys
from PIL import Image
for f in glob.glob(sys.argv[1] + "/*.png"):
    im = Image.open(f); im.load()
    assert im.size == (400, 300) and im.mode == "RGBA", f
PY

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
