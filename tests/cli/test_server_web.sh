#!/usr/bin/env bash
# The page of `cutout s` in a real browser: Debian's headless chromium,
# driven by playwright-core (server_web.mjs), against a real server on
# loopback.  It loads /, picks isnet-general-use, uploads a conformance photo
# through the file input, checks the cutout (an RGBA PNG of the photo's
# size, equal byte for byte to `cutout i`, with transparent and opaque
# pixels), downloads it, asks for the mask only (equal to the cutout's
# alpha), and sees a server error shown to the user.  Screenshots go into
# the working directory (the build's tests/ folder under ctest).
set -u
BIN=${CUTOUT_BIN:?}
MODELS=${CUTOUT_TEST_MODELS:?}
PY=${CUTOUT_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PHOTO=${CUTOUT_CONFORMANCE:-$ROOT/../shared/conformance}/inputs/car-1.jpg
REAL=${CUTOUT_REAL_MODELS:-$ROOT/.deps/models}/isnet-general-use.onnx
PW=${CUTOUT_DEPS:-$ROOT/.deps}/node/node_modules/playwright-core
CHROMIUM=/usr/bin/chromium
OUT=$PWD

# Only the photo may be missing (no ../shared); the rest is the bootstrap's.
[ -f "$PHOTO" ] || { echo "skip: no conformance photo at $PHOTO"; exit 77; }
for f in "$REAL" "$PW/index.js" "$CHROMIUM"; do
  [ -e "$f" ] || { echo "FAIL: $f is missing (run scripts/bootstrap.sh)"; exit 1; }
done
command -v node >/dev/null || { echo "FAIL: node is missing (run scripts/bootstrap.sh)"; exit 1; }

T=$(mktemp -d /tmp/cutout-web-XXXXXX)
SPID=
cleanup() {
  if [ -n "$SPID" ]; then kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; fi
  rm -rf "$T"
}
trap cleanup EXIT

# The models: the tiny ones under rembg's names (the server's default loads
# fast) with the real ISNet, which the page asks for.
mkdir -p "$T/models"
for m in "$MODELS"/home/*.onnx; do ln -s "$m" "$T/models/"; done
ln -sf "$REAL" "$T/models/isnet-general-use.onnx"
export U2NET_HOME=$T/models

# The reference the page's result must equal (made while the server starts).
"$BIN" i -m isnet-general-use "$PHOTO" "$T/ref.png" 2>"$T/err" &
REF=$!
read -r W H < <("$PY" -c 'import sys; from PIL import Image; print(*Image.open(sys.argv[1]).size)' "$PHOTO")

# A free port on loopback; another process may take it before the server
# binds, so a server that exits at once is started again on a new one.
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
for attempt in 1 2 3; do
  PORT=$(free_port)
  "$BIN" s -h 127.0.0.1 -p "$PORT" >"$T/server.log" 2>&1 &
  SPID=$!
  sleep 0.5
  kill -0 "$SPID" 2>/dev/null && break
  wait "$SPID"; SPID=
done
[ -n "$SPID" ] || { echo "FAIL: cutout s does not start"; cat "$T/server.log"; exit 1; }

wait $REF || { echo "FAIL: cutout i"; cat "$T/err"; exit 1; }
node "$HERE/server_web.mjs" "$PW" "http://127.0.0.1:$PORT" "$ROOT/src/server/web/index.html" \
  "$PHOTO" "$W" "$H" "$T/ref.png" "$OUT"
rc=$?
if [ $rc != 0 ]; then
  echo "--- server log"; tail -n 40 "$T/server.log"
fi
echo "screenshots: $OUT/server_web.png $OUT/server_web_mask.png $OUT/server_web_error.png"
exit $rc
