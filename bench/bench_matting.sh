#!/usr/bin/env bash
# bench_matting.sh: issue #6's benchmark (not a test).  Alpha matting (-a)
# against pymatting, as rembg 2.0.77's alpha_matting_cutout calls it.
#
# 1. The matting stage alone (trimap to final RGBA) on the same inputs for
#    both: car-1.jpg and the real rembg's own mask of it, upscaled with
#    Pillow's LANCZOS to 1920x1080 and 4000x3000.  cutout: `cutout i --mask
#    MASK -a --stats=json` (its matting stage); pymatting: estimate_alpha_cf
#    then estimate_foreground_ml, in-process, after a warm-up call (so
#    numba's compilation is not counted).  Median of RUNS each, and the
#    peak RSS of each process.
# 2. End to end at 480x360: `cutout i -a car-1.jpg` against `rembg i -a`,
#    A B B A with a pause before each run (see bench_i.sh).
#
# pymatting and rembg cannot be installed here from PyPI: point PYMATTING
# at a folder that holds the pymatting package (it needs Debian's numba,
# scipy and numpy) and REMBG at a rembg command; each part is skipped
# without them.
#   bench/bench_matting.sh [BUILD_DIR] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$here/build}/cutout
RUNS=${2:-3}
CONF=${CUTOUT_CONFORMANCE:-$here/../shared/conformance}
export U2NET_HOME=${U2NET_HOME:-$here/.deps/models}
PY=/usr/bin/python3
DATA=$here/.deps/bench
W=$(mktemp -d /tmp/cutout-benchm-XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$DATA"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for s in 480x360 1920x1080 4000x3000; do
  [ -f "$DATA/car-1-$s.png" ] && continue
  "$PY" - "$CONF" "$DATA" "$s" <<'PY'
import sys
from PIL import Image
conf, out, s = sys.argv[1:]
w, h = map(int, s.split("x"))
img = Image.open(f"{conf}/inputs/car-1.jpg").convert("RGB")
mask = Image.open(f"{conf}/rembg-2.0.77/car-1.isnet.om.png")
if img.size != (w, h):
    img = img.resize((w, h), Image.Resampling.LANCZOS)
    mask = mask.resize((w, h), Image.Resampling.LANCZOS)
img.save(f"{out}/car-1-{s}.png")
mask.save(f"{out}/car-1-{s}.mask.png")
PY
done

echo "== 1. matting stage (trimap to RGBA), car-1 + rembg's mask, median of $RUNS"
for s in 480x360 1920x1080 4000x3000; do
  : >"$W/c"
  for i in $(seq "$RUNS"); do
    /usr/bin/time -f "%M" -o "$W/rss" "$BIN" i --mask "$DATA/car-1-$s.mask.png" -a --stats=json \
      "$DATA/car-1-$s.png" "$W/out.png" 2>"$W/json"
    "$PY" -c "import json,sys; d=json.load(open('$W/json')); print(d['stages']['matting']['wall_s'], $(cat "$W/rss"))" >>"$W/c"
  done
  ct=$(cut -d' ' -f1 "$W/c" | median); cm=$(cut -d' ' -f2 "$W/c" | median)
  line=$(printf '%-10s cutout %7.3f s (peak RSS %5.0f MB)' "$s" "$ct" "$(echo "$cm/1024" | bc -l)")
  if [ -n "${PYMATTING:-}" ]; then
    /usr/bin/time -f "%M" -o "$W/rss" env PYTHONPATH="$PYMATTING" "$PY" - "$DATA/car-1-$s.png" \
      "$DATA/car-1-$s.mask.png" "$RUNS" >"$W/p" <<'PY'
import sys, time
import numpy as np
from PIL import Image
from scipy.ndimage import binary_erosion
from pymatting.alpha.estimate_alpha_cf import estimate_alpha_cf
from pymatting.foreground.estimate_foreground_ml import estimate_foreground_ml
from pymatting.util.util import stack_images
img, mask, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

def stage(img, mask):
    # rembg 2.0.77's alpha_matting_cutout with its defaults (240, 10, 10)
    img = np.asarray(Image.open(img).convert("RGB"))
    mask = np.asarray(Image.open(mask))
    fg = binary_erosion(mask > 240, structure=np.ones((10, 10), dtype=np.uint8))
    bg = binary_erosion(mask < 10, structure=np.ones((10, 10), dtype=np.uint8), border_value=1)
    trimap = np.full(mask.shape, dtype=np.uint8, fill_value=128)
    trimap[fg] = 255
    trimap[bg] = 0
    i = img / 255.0
    alpha = estimate_alpha_cf(i, trimap / 255.0)
    f = estimate_foreground_ml(i, alpha)
    return np.clip(stack_images(f, alpha) * 255, 0, 255).astype(np.uint8)

# warm-up: numba's first calls, on a tiny problem
wi = np.random.default_rng(0).random((24, 32, 3))
wt = np.full((24, 32), 0.5)
wt[:, :8] = 0.0
wt[:, 24:] = 1.0
estimate_foreground_ml(wi, estimate_alpha_cf(wi, wt))
times = []
for r in range(runs):
    t = time.perf_counter()
    stage(img, mask)
    times.append(time.perf_counter() - t)
times.sort()
print(times[len(times) // 2])
PY
    pt=$(tail -n 1 "$W/p"); pm=$(cat "$W/rss") # pymatting prints its warnings on stdout
    line="$line  pymatting $(printf '%7.3f s (peak RSS %5.0f MB)  ratio %5.1fx' "$pt" \
      "$(echo "$pm/1024" | bc -l)" "$(echo "$pt/$ct" | bc -l)")"
  fi
  echo "$line"
done

if [ -n "${REMBG:-}" ]; then
  echo "== 2. end to end, -a on car-1.jpg (480x360), A B B A, pause ${PAUSE:-3} s, median of $RUNS"
  : >"$W/c"; : >"$W/r"
  for i in $(seq "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then order="c r"; else order="r c"; fi
    for who in $order; do
      sleep "${PAUSE:-3}"
      if [ "$who" = c ]; then
        /usr/bin/time -f "%e %M" -o "$W/t" "$BIN" i -m isnet-general-use -a \
          "$CONF/inputs/car-1.jpg" "$W/o.png" 2>/dev/null && cat "$W/t" >>"$W/c"
      else
        /usr/bin/time -f "%e %M" -o "$W/t" "$REMBG" i -m dis_custom \
          -x "{\"model_path\": \"$U2NET_HOME/isnet-general-use.onnx\"}" -a \
          "$CONF/inputs/car-1.jpg" "$W/r.png" 2>/dev/null && cat "$W/t" >>"$W/r"
      fi
    done
  done
  cw=$(cut -d' ' -f1 "$W/c" | median); cm=$(cut -d' ' -f2 "$W/c" | median)
  rw=$(cut -d' ' -f1 "$W/r" | median); rm_=$(cut -d' ' -f2 "$W/r" | median)
  printf 'cutout %.2f s, %.0f MB; rembg %.2f s, %.0f MB; ratio rembg/cutout %.2fx time, cutout/rembg %.2f RSS\n' \
    "$cw" "$(echo "$cm/1024" | bc -l)" "$rw" "$(echo "$rm_/1024" | bc -l)" \
    "$(echo "$rw/$cw" | bc -l)" "$(echo "$cm/$rm_" | bc -l)"
fi
