#!/usr/bin/env bash
# bench_p.sh: issue #4's benchmark (not a test).  `cutout p` against rembg's
# `p` (the real one when REMBG points at it, else bench/rembg_equiv.py) on
# the 14 conformance photos, A B, B A, ...; then `cutout b` on 100 frames of
# 640x360.  Prints wall time, images/s, CPU utilisation (user+sys over wall
# x usable CPUs) and peak RSS.
#   bench/bench_p.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$here/build}/cutout
ROUNDS=${2:-2}
CONF=${CUTOUT_CONFORMANCE:-$here/../shared/conformance}
export U2NET_HOME=${U2NET_HOME:-$here/.deps/models}
PY=/usr/bin/python3
W=$(mktemp -d /tmp/cutout-benchp-XXXXXX)
trap 'rm -rf "$W"' EXIT
CPUS=$(nproc)
report() { # NAME TIMEFILE NIMAGES
  read -r wall user sys rss <"$2"
  awk -v n="$1" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v k="$3" -v c="$CPUS" \
    'BEGIN { printf "%-18s %6.1f s  %5.2f img/s  CPU %3.0f%%  peak RSS %5.0f MB\n", n, w, k / w, 100 * (u + s) / (w * c), r / 1024 }'
}
echo "== p on $(ls "$CONF/inputs" | wc -l) photos, $CPUS CPUs"
run_cutout_p() {
  /usr/bin/time -f "%e %U %S %M" -o "$W/t1" "$BIN" p -m isnet-general-use "$CONF/inputs" "$W/o1" 2>/dev/null
  report "cutout p" "$W/t1" 14
}
for r in $(seq "$ROUNDS"); do
  rm -rf "$W/o1" "$W/o2"
  [ $((r % 2)) = 1 ] && run_cutout_p
  if [ -n "${REMBG:-}" ]; then
    # the npm ISNet as rembg's dis_custom, as the conformance references
    # were made (rembg's isnet-general-use insists on its own file's md5)
    /usr/bin/time -f "%e %U %S %M" -o "$W/t2" "$REMBG" p -m dis_custom \
      -x "{\"model_path\": \"$U2NET_HOME/isnet-general-use.onnx\"}" "$CONF/inputs" "$W/o2" 2>/dev/null
    report "rembg p" "$W/t2" 14
  else
    /usr/bin/time -f "%e %U %S %M" -o "$W/t2" "$PY" "$here/bench/rembg_equiv.py" p \
      "$U2NET_HOME/isnet-general-use.onnx" "$CONF/inputs" "$W/o2" 2>/dev/null
    report "rembg-equivalent p" "$W/t2" 14
  fi
  [ $((r % 2)) = 0 ] && run_cutout_p
done
echo "== b on 100 frames of 640x360"
ffmpeg -v error -loop 1 -i "$CONF/inputs/car-2.jpg" -vf "scale=640:360" -frames:v 100 \
  -f rawvideo -pix_fmt rgb24 - >"$W/frames.rgb"
/usr/bin/time -f "%e %U %S %M" -o "$W/t3" "$BIN" b -m isnet-general-use 640 360 -o "$W/b/%03d.png" <"$W/frames.rgb" 2>/dev/null
report "cutout b" "$W/t3" 100
