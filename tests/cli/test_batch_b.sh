#!/usr/bin/env bash
# cutout b: RGB24 frames from Debian's ffmpeg, in parallel, output in order,
# each output equal to `cutout i` on the same frame; a partial trailing
# frame gets a warning; bad sizes get an error.
set -u
BIN=${CUTOUT_BIN:?}
MODELS=${CUTOUT_TEST_MODELS:?}
command -v ffmpeg >/dev/null || { echo "SKIP: ffmpeg missing (scripts/bootstrap.sh installs it)"; exit 77; }
T=$(mktemp -d /tmp/cutout-b-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
M=$MODELS/tiny-64.onnx
PHOTO=${CUTOUT_TEST_PHOTO:-$(dirname "$0")/../../.deps/photos/chelsea.png}
[ -f "$PHOTO" ] || { echo "SKIP: no photo at $PHOTO"; exit 77; }
# 6 frames: the real photo scaled, panned a little each frame
ffmpeg -v error -loop 1 -i "$PHOTO" -vf "scale=160:120,crop=150:110:mod(n*2\,10):mod(n\,10)" \
  -frames:v 6 -f rawvideo -pix_fmt rgb24 - >"$T/frames.rgb" || { bad ffmpeg; exit 1; }
"$BIN" b -m "$M" 150 110 -o "$T/out/f-%03d.png" <"$T/frames.rgb" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok || { bad "b exit $rc"; cat "$T/err"; }
[ "$(ls "$T/out" | wc -l)" -eq 6 ] && ok || bad "want 6 outputs"
# each equals cutout i on that frame
for i in 0 1 2 3 4 5; do
  ffmpeg -v error -f rawvideo -pix_fmt rgb24 -s 150x110 -i "$T/frames.rgb" \
    -vf "select=eq(n\,$i)" -frames:v 1 "$T/frame$i.png"
  "$BIN" i -m "$M" "$T/frame$i.png" "$T/i$i.png" 2>/dev/null
  cmp -s "$T/i$i.png" "$T/out/f-00$i.png" && ok || bad "frame $i differs from cutout i"
done
# stdout: a PNG stream in order (split it and compare with the files)
"$BIN" b -m "$M" 150 110 <"$T/frames.rgb" >"$T/stream.bin" 2>/dev/null && ok || bad "stdout stream"
cat "$T"/out/f-*.png | cmp -s - "$T/stream.bin" && ok || bad "stream != files in order"
# partial trailing frame: a warning, the whole frames still written
head -c $((150 * 110 * 3 * 2 + 1000)) "$T/frames.rgb" | "$BIN" b -m "$M" 150 110 -o "$T/part/%d.png" 2>"$T/err2"; rc=$?
[ $rc -eq 0 ] && grep -q "partial frame is dropped" "$T/err2" && [ "$(ls "$T/part" | wc -l)" -eq 2 ] && ok || { bad "partial frame"; cat "$T/err2"; }
# bad sizes and patterns
"$BIN" b -m "$M" 0 110 </dev/null 2>"$T/e3"; [ $? -eq 2 ] && grep -q "bad frame size" "$T/e3" && ok || bad "zero width"
"$BIN" b -m "$M" abc 110 </dev/null 2>"$T/e4"; [ $? -eq 2 ] && grep -q "bad frame size" "$T/e4" && ok || bad "non-numeric"
"$BIN" b -m "$M" 100000 100000 </dev/null 2>"$T/e5"; [ $? -eq 2 ] && grep -q "over the limit" "$T/e5" && ok || bad "too large"
"$BIN" b -m "$M" 10 10 -o "$T/x.png" </dev/null 2>"$T/e6"; [ $? -eq 2 ] && grep -q "bad -o pattern" "$T/e6" && ok || bad "pattern without field"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
