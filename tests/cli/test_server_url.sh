#!/usr/bin/env bash
# GET /api/remove?url= end to end (issue #5 item 7): a real `cutout s` on
# loopback fetches from tests/unit/url_fetch_server.py (on 127.0.0.2, let in
# with --allow-cidr 127.0.0.2/32).  The cutout equals `cutout i`'s byte for
# byte; SSRF attempts (redirects to the server itself on 127.0.0.1 and to
# 169.254.169.254, localhost, ::1, other spellings of 127.0.0.1, file://)
# are all 400 and never reach the trap listeners; --max-body caps the
# fetch (413), --allow-host and --no-url-fetch are obeyed.
set -u
BIN=${CUTOUT_BIN:?}
MODELS=${CUTOUT_TEST_MODELS:?}
PY=${CUTOUT_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/cutout-surl-XXXXXX)
MODEL=$MODELS/tiny-isnet.onnx
pass=0 fail=0 SPID=
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

cleanup() {
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
  [ -n "${FETCH_PID:-}" ] && { exec {FETCH[1]}>&-; wait "$FETCH_PID" 2>/dev/null; }
  rm -rf "$T"
}
trap cleanup EXIT

"$PY" - "$T" <<'PY'
import io, sys
import numpy as np
from PIL import Image
t = sys.argv[1]
y, x = np.mgrid[0:150, 0:200]
img = np.stack([x * 255 // 200, y * 255 // 150, ((x - 100) ** 2 + (y - 75) ** 2 < 2500) * 255], -1)
Image.fromarray(img.astype(np.uint8)).save(f"{t}/in.png")
open(f"{t}/big.bin", "wb").write(b"\x89PNG" + b"x" * 300000)
PY

# the fetch servers: "P Q T T6" on the first line; they exit when we close stdin
coproc FETCH { URL_FETCH_FILES=$T exec "$PY" "$HERE/../unit/url_fetch_server.py"; }
FETCH_PID=$FETCH_PID
read -r P Q TRAP TRAP6 <&"${FETCH[0]}" || { echo "fetch servers did not start"; exit 1; }
SRC=http://127.0.0.2:$P

# start_server LOG ARGS...: cutout s on a free port; sets SPORT and SPID
start_server() {
  local log=$1; shift
  "$BIN" s -p 0 -h 127.0.0.1 -m "$MODEL" "$@" 2>"$log" &
  SPID=$!
  SPORT=
  for _ in $(seq 200); do
    SPORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$log")
    [ -n "$SPORT" ] && curl -sf "http://127.0.0.1:$SPORT/readyz" >/dev/null && return 0
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  echo "cutout s did not start:"; cat "$log"; return 1
}
stop_server() { kill -TERM "$SPID"; wait "$SPID"; local rc=$?; SPID=; return $rc; }

# get URL_PARAM: GET /api/remove?url=...; body in $T/body, status echoed
get() {
  curl -s -o "$T/body" -w '%{http_code}' -G "http://127.0.0.1:$SPORT/api/remove" \
    --data-urlencode "url=$1"
}
# expect_status CODE URL: refused with that status and a JSON detail
expect_status() {
  local want=$1 url=$2 code
  code=$(get "$url")
  if [ "$code" = "$want" ] && grep -q '"detail"' "$T/body"; then ok
  else bad "$url: HTTP $code (want $want): $(head -c 300 "$T/body")"; fi
}

start_server "$T/s1.log" --allow-cidr 127.0.0.2/32 --max-body 200K || exit 1

# 1. a fetched image gives exactly the cutout of `cutout i`
"$BIN" i -m "$MODEL" "$T/in.png" "$T/ref.png" 2>"$T/i.err" || bad "cutout i failed: $(cat "$T/i.err")"
code=$(get "$SRC/files/in.png")
if [ "$code" = 200 ] && cmp -s "$T/body" "$T/ref.png"; then ok
else bad "GET ?url=in.png: HTTP $code, $(wc -c <"$T/body") bytes, differs from cutout i"; fi
# through a relative redirect too
code=$(get "$SRC/redir?to=files/in.png")
if [ "$code" = 200 ] && cmp -s "$T/body" "$T/ref.png"; then ok; else bad "redirected fetch: $code"; fi

# 2. SSRF: all 400, none reaches the server itself or a trap
SELF=http://127.0.0.1:$SPORT/healthz
for u in "$SELF" "http://localhost:$SPORT/healthz" "http://2130706433:$SPORT/healthz" \
  "http://0x7f.1:$SPORT/healthz" "http://[::ffff:127.0.0.1]:$SPORT/healthz" \
  "http://[::1]:${TRAP6:-80}/" "http://127.0.0.1:$TRAP/" "http://169.254.169.254/latest/meta-data/" \
  "$SRC/redir?to=$SELF" "$SRC/redir?code=307&to=http://127.0.0.1:$TRAP/" \
  "$SRC/redir?to=http://169.254.169.254/latest/meta-data/" "$SRC/redir?to=http://localhost:$TRAP/" \
  "$SRC/redir?to=http://[::1]:${TRAP6:-80}/" "$SRC/redir?to=file:///etc/passwd" \
  "file:///etc/passwd" "gopher://127.0.0.2:$P/" "ftp://127.0.0.2:$P/" \
  "http://u@127.0.0.2:$P/files/in.png" "$SRC/chain/6"; do
  expect_status 400 "$u"
done
if grep -q '"GET /healthz"' "$T/s1.log"; then bad "a fetch reached cutout s itself"; else ok; fi
hits=$(curl -s "$SRC/hits")
set -- $hits
[ "${3:-x}" = 0 ] && [ "${4:-x}" = 0 ] && ok || bad "trap listeners were reached: $hits"

# 3. remote errors and the body cap
expect_status 400 "$SRC/status/404"
grep -q 404 "$T/body" && ok || bad "404 detail: $(cat "$T/body")"
expect_status 413 "$SRC/files/big.bin"
expect_status 413 "$SRC/big?n=300000&cl=0"
stop_server && ok || bad "cutout s did not exit 0 on SIGTERM"

# 4. --allow-host restricts, --no-url-fetch turns it off
start_server "$T/s2.log" --allow-cidr 127.0.0.2/32 --allow-host example.invalid || exit 1
expect_status 400 "$SRC/files/in.png"
grep -q allow-host "$T/body" && ok || bad "allow-host detail: $(cat "$T/body")"
stop_server || bad "exit status"
start_server "$T/s3.log" --allow-cidr 127.0.0.2/32 --no-url-fetch || exit 1
code=$(get "$SRC/files/in.png")
case $code in 4*) ok ;; *) bad "--no-url-fetch: HTTP $code" ;; esac
stop_server || bad "exit status"
hits=$(curl -s "$SRC/hits")
set -- $hits
[ "${3:-x}" = 0 ] && [ "${4:-x}" = 0 ] && ok || bad "trap listeners were reached: $hits"

echo "server url fetch: $pass passed, $fail failed"
[ "$fail" = 0 ]
