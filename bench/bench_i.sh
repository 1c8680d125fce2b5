#!/usr/bin/env bash
# bench_i.sh: the single-image benchmark of issue #2 (a benchmark, not a
# test).  For anime-girl-1.jpg and a 6000x4000 photo it prints cutout's time
# split (process start, engine, model read, checksum, session creation,
# decode, preprocess, inference, postprocess, encode), the peak RSS and the
# whole run's wall time, median of N cold runs, A B A B against rembg: the
# real `rembg` when it is on PATH (or REMBG=/path/to/rembg), else the
# rembg-equivalent (bench/rembg_equiv.py: rembg's pipeline in Pillow/numpy
# on the same ONNX Runtime with rembg's session options), and the ratios.
#
#   bench/bench_i.sh [BUILD_DIR] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$here/build}/cutout
RUNS=${2:-5}
CONF=${CUTOUT_CONFORMANCE:-$here/../shared/conformance}
export U2NET_HOME=${U2NET_HOME:-$here/.deps/models}
PY=/usr/bin/python3
W=$(mktemp -d /tmp/cutout-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT
REMBG=${REMBG:-$(command -v rembg || true)}
MODEL_FILE=$U2NET_HOME/isnet-general-use.onnx

small=$CONF/inputs/anime-girl-1.jpg
big=$here/.deps/bench/photo-6000x4000.jpg
if [ ! -f "$big" ]; then
  mkdir -p "$(dirname "$big")"
  # a real photo, upscaled with LANCZOS to 24 MP, as a camera JPEG
  "$PY" -c "
from PIL import Image
Image.open('$CONF/inputs/car-2.jpg').convert('RGB').resize((6000, 4000), Image.LANCZOS).save('$big', quality=92)"
fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

run_cutout() { # IN OUT -> prints "wall maxrss_kb" and keeps stats in $W/stats
  /usr/bin/time -f "%e %M" -o "$W/time" "$BIN" i -m isnet-general-use --stats "$1" "$2" 2>"$W/stats"
  cat "$W/time"
}
run_rembg() {
  if [ -n "$REMBG" ]; then
    /usr/bin/time -f "%e %M" -o "$W/time" "$REMBG" i -m isnet-general-use "$1" "$2" 2>/dev/null
  else
    /usr/bin/time -f "%e %M" -o "$W/time" "$PY" "$here/bench/rembg_equiv.py" i "$MODEL_FILE" "$1" "$2" 2>/dev/null
  fi
  cat "$W/time"
}
RNAME=${REMBG:+rembg}
RNAME=${RNAME:-rembg-equivalent}

for img in "$small" "$big"; do
  name=$(basename "$img")
  echo "== $name ($("$PY" -c "from PIL import Image; print('%dx%d' % Image.open('$img').size)"))"
  : >"$W/c" ; : >"$W/r"
  for i in $(seq "$RUNS"); do
    run_cutout "$img" "$W/out.png" >>"$W/c"
    run_rembg "$img" "$W/outr.png" >>"$W/r"
  done
  echo "-- cutout: last run's split"
  sed 's/^stats: /   /' "$W/stats"
  cw=$(cut -d' ' -f1 "$W/c" | median); cm=$(cut -d' ' -f2 "$W/c" | median)
  printf 'cutout: median wall %.2f s, median peak RSS %.0f MB (%d runs)\n' "$cw" "$(echo "$cm/1024" | bc -l)" "$RUNS"
  rw=$(cut -d' ' -f1 "$W/r" | median); rm_=$(cut -d' ' -f2 "$W/r" | median)
  printf '%s: median wall %.2f s, median peak RSS %.0f MB\n' "$RNAME" "$rw" "$(echo "$rm_/1024" | bc -l)"
  printf 'ratio cutout/%s: time %.2f, peak RSS %.2f\n' "$RNAME" "$(echo "$cw/$rw" | bc -l)" "$(echo "$cm/$rm_" | bc -l)"
done
