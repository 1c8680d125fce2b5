#!/usr/bin/env bash
# cutout p --watch: a file written in three chunks over one second is taken
# only once complete, a file moved in is taken, a file that appears during
# the initial pass is processed exactly once, and stop.txt ends the watch.
set -u
BIN=${CUTOUT_BIN:?}
MODELS=${CUTOUT_TEST_MODELS:?}
PY=${CUTOUT_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/cutout-w-XXXXXX)
trap 'kill $pid 2>/dev/null; rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
mkdir -p "$T/in/sub" "$T/staging"
"$PY" - "$T" <<'PY'
import sys
import numpy as np
from PIL import Image
t = sys.argv[1]
rng = np.random.default_rng(3)
for n in ["first", "chunked", "moved", "late"]:
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(f"{t}/staging/{n}.png")
PY
cp "$T/staging/first.png" "$T/in/"
"$BIN" p -w -m "$MODELS/tiny-64.onnx" "$T/in" "$T/out" 2>"$T/log" &
pid=$!
sleep 0.5
# written slowly: three chunks over a second, through one open file
"$PY" - "$T/staging/chunked.png" "$T/in/sub/chunked.png" <<'PY'
import sys, time
data = open(sys.argv[1], "rb").read()
k = len(data) // 3
with open(sys.argv[2], "wb") as f:
    for i in range(3):
        f.write(data[i * k:(i + 1) * k] if i < 2 else data[2 * k:])
        f.flush()
        time.sleep(0.5 if i < 2 else 0)
PY
mv "$T/staging/moved.png" "$T/in/moved.png"
mkdir -p "$T/in/newdir"; cp "$T/staging/late.png" "$T/in/newdir/late.png"
for _ in $(seq 100); do
  [ -s "$T/out/sub/chunked.png" ] && [ -s "$T/out/moved.png" ] && [ -s "$T/out/newdir/late.png" ] && break
  sleep 0.1
done
[ -s "$T/out/first.png" ] && ok || bad "initial file"
[ -s "$T/out/sub/chunked.png" ] && ok || bad "chunked file"
[ -s "$T/out/moved.png" ] && ok || bad "moved-in file"
[ -s "$T/out/newdir/late.png" ] && ok || bad "file in a new folder"
touch "$T/in/stop.txt"
for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then bad "stop.txt did not stop the watch"; kill $pid; fi
wait $pid; rc=$?
[ $rc -eq 0 ] && ok || bad "watch exit $rc"
[ ! -e "$T/in/stop.txt" ] && ok || bad "stop.txt not deleted"
grep -q "4 processed, 0 skipped, 0 failed" "$T/log" && ok || { bad "summary"; cat "$T/log"; }
[ "$(grep -c 'failed:' "$T/log")" -eq 0 ] && ok || bad "a half-written file was attempted"
# the chunked output is the cutout of the complete file
"$BIN" i -m "$MODELS/tiny-64.onnx" "$T/staging/chunked.png" "$T/c.png" && cmp -s "$T/c.png" "$T/out/sub/chunked.png" && ok || bad "chunked output differs"

# SIGTERM stops the watch too
"$BIN" p -w -m "$MODELS/tiny-64.onnx" "$T/in" "$T/out2" 2>/dev/null &
pid=$!
sleep 0.5; kill -TERM $pid
for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && { bad "SIGTERM did not stop the watch"; kill -9 $pid; } || ok
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
