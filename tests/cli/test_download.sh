#!/usr/bin/env bash
# Model downloads (issue #7) against a model server on loopback
# (model_server.py): success, checksums (a mismatch, and the real ISNet's
# sha256 when the bootstrap has it), a truncated transfer resumed with
# Range, a part left by a killed run resumed, a server ignoring Range, 404,
# a stalled server with a timeout, a read-only model folder, proxies, SAM's
# files (and vit_h's three data parts), `cutout d` without arguments,
# download on first use by `cutout i` and --offline, and two downloads of
# the same model at once.  After every case the model folder holds either
# the finished file or nothing: never a partial or temporary file.
set -u
BIN=${CUTOUT_BIN:?}
MODELS=${CUTOUT_TEST_MODELS:?}
PY=${CUTOUT_PYTHON:-/usr/bin/python3}
REAL=${CUTOUT_REAL_MODELS:-}/isnet-general-use.onnx
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/cutout-dl-XXXXXX)
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
# only the proxies a case sets itself
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
unset MODEL_CHECKSUM_DISABLED CUTOUT_DOWNLOAD_TIMEOUT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; [ -f "$T/err" ] && sed 's/^/    /' "$T/err"; }

# ---- what the server serves
S=$T/serve
mkdir -p "$S"
"$PY" - "$S" "$MODELS/home" <<'PY'
import os, shutil, sys
s, home = sys.argv[1:3]
rnd = lambda n, seed: bytes((i * 7919 + seed * 104729 + (i >> 8)) % 251 for i in range(n))
open(os.path.join(s, "u2netp.onnx"), "wb").write(rnd(300_000, 1))
open(os.path.join(s, "big.onnx"), "wb").write(rnd(2_000_000, 2))
for n in ("sam_vit_b_01ec64.encoder.onnx", "sam_vit_b_01ec64.decoder.onnx",
          "sam_vit_h_4b8939.encoder.onnx", "sam_vit_h_4b8939.decoder.onnx"):
    open(os.path.join(s, n), "wb").write(rnd(5000 + len(n), len(n)))
for i in (1, 2, 3):
    open(os.path.join(s, "sam_vit_h_4b8939.encoder_data.%d.bin" % i), "wb").write(rnd(70_000 * i, i))
os.makedirs(os.path.join(s, "tiny"))
shutil.copy(os.path.join(home, "u2netp.onnx"), os.path.join(s, "tiny", "u2netp.onnx"))
PY
# every asset rembg publishes, as small stand-ins, for `cutout d` alone
mkdir -p "$S/all"
"$BIN" models --json | "$PY" -c '
import json, os, sys
for m in json.load(sys.stdin)["models"]:
    if m["url"]:
        a = m["url"].rsplit("/", 1)[1]
        open(os.path.join(sys.argv[1], a), "wb").write(m["name"].encode() * 100)
' "$S/all"
for f in sam_vit_b_01ec64.encoder.onnx sam_vit_b_01ec64.decoder.onnx; do cp "$S/$f" "$S/all/"; done
[ -f "$REAL" ] && ln -s "$REAL" "$S/isnet-general-use.onnx"

"$PY" "$HERE/model_server.py" "$S" "$T/port" "$T/log" &
SPID=$!
for _ in $(seq 100); do [ -f "$T/port" ] && break; sleep 0.1; done
[ -f "$T/port" ] || { echo "the model server did not start"; exit 1; }
PORT=$(cat "$T/port")
URL=http://127.0.0.1:$PORT

# clean DIR: no .part or other hidden temporary file in the model folder
clean() { ! ls -A "$1" 2>/dev/null | grep -q '\.part'; }
same() { cmp -s "$1" "$2"; }
requests() { grep -c "$1" "$T/log" 2>/dev/null || true; }

# d MODE HOME ARGS...: cutout d from $URL/MODE into HOME
d() {
  local mode=$1 home=$2; shift 2
  U2NET_HOME=$home CUTOUT_MODEL_BASE_URL=$URL/$mode "$BIN" d "$@" >"$T/out" 2>"$T/err"
}

# 1. success, checksums off; a second run fetches nothing
H=$T/h1
: >"$T/log"
if MODEL_CHECKSUM_DISABLED=1 d ok "$H" u2netp && same "$H/u2netp.onnx" "$S/u2netp.onnx" &&
  clean "$H" && grep -q "u2netp: downloaded to $H/u2netp.onnx" "$T/err"; then ok; else bad "success"; fi
n=$(requests u2netp)
if MODEL_CHECKSUM_DISABLED=1 d ok "$H" u2netp && grep -q "already present" "$T/err" &&
  [ "$(requests u2netp)" = "$n" ]; then ok; else bad "second run downloads again"; fi

# 2. checksum on: the served bytes are not rembg's u2netp: nothing is kept,
# and the message gives the file's real md5 (so the md5 path is right)
H=$T/h2
got=$(md5sum "$S/u2netp.onnx" | cut -d' ' -f1)
if ! d ok "$H" u2netp && grep -q "checksum mismatch after download" "$T/err" &&
  grep -q "md5:$got, expected md5:8e83ca70e441ab06c318d82300c84806" "$T/err" &&
  [ -z "$(ls -A "$H")" ]; then ok
else bad "checksum mismatch"; fi
# a present file whose checksum is wrong is fetched again (rembg/pooch);
# when that fails too, both reasons are given and the old file stays
mkdir -p "$T/h2b" && echo "not u2netp" >"$T/h2b/u2netp.onnx"
if ! d garbage "$T/h2b" u2netp && grep -q "u2netp.onnx: checksum mismatch: md5:" "$T/err" &&
  grep -q "downloading it again failed" "$T/err" && [ "$(cat "$T/h2b/u2netp.onnx")" = "not u2netp" ] &&
  clean "$T/h2b"; then ok; else bad "mismatch, re-download"; fi

# 3. 404: says so, leaves nothing
H=$T/h3
if ! MODEL_CHECKSUM_DISABLED=1 d nosuchmode "$H" u2netp && grep -q "HTTP 404 (Not Found)" "$T/err" &&
  [ -z "$(ls -A "$H")" ]; then ok; else bad "404"; fi

# 4. a transfer cut in the middle is resumed with Range
H=$T/h4
: >"$T/log"
if MODEL_CHECKSUM_DISABLED=1 d trunc "$H" u2netp && same "$H/u2netp.onnx" "$S/u2netp.onnx" &&
  grep -q "GET /trunc/u2netp.onnx bytes=150000-" "$T/log" && clean "$H"; then ok
else bad "truncated + resume"; cat "$T/log"; fi

# 5. a stalled server: the timeout fires, nothing is left
H=$T/h5
t0=$(date +%s)
if ! MODEL_CHECKSUM_DISABLED=1 CUTOUT_DOWNLOAD_TIMEOUT=1 d slow "$H" u2netp &&
  grep -q "no data for 1 s" "$T/err" && [ -z "$(ls -A "$H")" ] && [ $(($(date +%s) - t0)) -lt 15 ]; then ok
else bad "slow server"; fi
if ! MODEL_CHECKSUM_DISABLED=1 d slow "$H" --timeout 1 u2netp && grep -q "no data for 1 s" "$T/err" &&
  [ -z "$(ls -A "$H")" ]; then ok; else bad "slow server, --timeout"; fi

# 6. a read-only model folder (root ignores permission bits: use /proc)
if [ "$(id -u)" != 0 ]; then
  H=$T/ro; mkdir -p "$H"; chmod 555 "$H"
else
  H=/proc
fi
if ! MODEL_CHECKSUM_DISABLED=1 d ok "$H" u2netp && grep -q "cannot write in $H" "$T/err" &&
  [ ! -e "$H/u2netp.onnx" ] && clean "$H"; then ok; else bad "read-only folder"; fi
[ "$H" != /proc ] && chmod 755 "$H"

# 7. proxies: libcurl's http_proxy, and the upper-case HTTP_PROXY that
# pooch (requests) honours; NO_PROXY wins
for var in http_proxy HTTP_PROXY; do
  H=$T/h7-$var
  : >"$T/log"
  if env "$var=$URL" MODEL_CHECKSUM_DISABLED=1 U2NET_HOME=$H CUTOUT_MODEL_BASE_URL=http://models.invalid/ok \
    "$BIN" d u2netp 2>"$T/err" && same "$H/u2netp.onnx" "$S/u2netp.onnx" &&
    grep -q "GET http://models.invalid/ok/u2netp.onnx" "$T/log"; then ok; else bad "proxy $var"; fi
done
H=$T/h7-noproxy
: >"$T/log"
if http_proxy=http://127.0.0.1:9 NO_PROXY=127.0.0.1 MODEL_CHECKSUM_DISABLED=1 d ok "$H" u2netp &&
  grep -q "GET /ok/u2netp.onnx" "$T/log"; then ok; else bad "NO_PROXY"; fi

# 8. SAM: encoder and decoder; vit_h's data from its three parts
H=$T/h8
if d ok "$H" sam && same "$H/sam_vit_b_01ec64.encoder.onnx" "$S/sam_vit_b_01ec64.encoder.onnx" &&
  same "$H/sam_vit_b_01ec64.decoder.onnx" "$S/sam_vit_b_01ec64.decoder.onnx" && clean "$H"; then ok
else bad "sam"; fi
cat "$S"/sam_vit_h_4b8939.encoder_data.{1,2,3}.bin >"$T/vith.bin"
if d ok "$H" -x '{"sam_model": "sam_vit_h_4b8939"}' sam && same "$H/sam_vit_h_4b8939.encoder_data.bin" "$T/vith.bin" &&
  [ -f "$H/sam_vit_h_4b8939.decoder.onnx" ] && clean "$H" && [ -z "$(ls -A "$H" | grep 'data\.[0-9]')" ]; then ok
else bad "sam vit_h"; fi

# 9. `cutout d` alone: everything rembg publishes; the custom models are
# skipped, not failed
H=$T/h9
if MODEL_CHECKSUM_DISABLED=1 d ok/all "$H" && grep -q "No models specified, downloading all models" "$T/err" &&
  grep -q "u2net_custom: skipped" "$T/err" && grep -q "dis_custom: skipped" "$T/err" &&
  grep -q "ben_custom: skipped" "$T/err" && ! grep -q "cutout:" "$T/err" && clean "$H"; then ok
else bad "d without arguments"; fi
missing=$(U2NET_HOME=$H MODEL_CHECKSUM_DISABLED=1 "$BIN" models --json | "$PY" -c '
import json, sys
print(" ".join(m["name"] for m in json.load(sys.stdin)["models"] if m["downloadable"] and not m["present"]))')
if [ -z "$missing" ]; then ok; else bad "not downloaded by d: $missing"; fi
if ! d ok/all "$T/h9b" nosuchmodel u2netp && grep -q "no model found: nosuchmodel" "$T/err" &&
  [ ! -e "$T/h9b/u2netp.onnx" ]; then ok; else bad "unknown model"; fi
if ! MODEL_CHECKSUM_DISABLED=1 d ok/all "$T/h9c" u2net_custom && grep -q "nothing to download" "$T/err"; then ok
else bad "d u2net_custom"; fi

# 10. first use: cutout i fetches the model (a real tiny one here);
# --offline does not; with no server, one line says both things
H=$T/h10
"$PY" -c 'from PIL import Image; Image.new("RGB", (40, 30), (200, 10, 10)).save("'"$T"'/in.png")'
: >"$T/log"
if ! MODEL_CHECKSUM_DISABLED=1 U2NET_HOME=$H CUTOUT_MODEL_BASE_URL=$URL/ok/tiny \
  "$BIN" i --offline -m u2netp "$T/in.png" "$T/out.png" 2>"$T/err" &&
  grep -q "u2netp.onnx not found" "$T/err" && [ ! -e "$H/u2netp.onnx" ] && [ ! -s "$T/log" ]; then ok
else bad "--offline"; fi
if MODEL_CHECKSUM_DISABLED=1 U2NET_HOME=$H CUTOUT_MODEL_BASE_URL=$URL/ok/tiny \
  "$BIN" i -m u2netp "$T/in.png" "$T/out.png" 2>"$T/err" && [ -s "$T/out.png" ] &&
  same "$H/u2netp.onnx" "$S/tiny/u2netp.onnx" && clean "$H"; then ok; else bad "first use"; fi
if ! U2NET_HOME=$T/h10c CUTOUT_MODEL_BASE_URL=http://127.0.0.1:9 "$BIN" i -m u2netp "$T/in.png" "$T/o.png" 2>"$T/err" &&
  [ "$(wc -l <"$T/err")" = 1 ] && grep -q "u2netp.onnx not found" "$T/err" && grep -q "download" "$T/err" &&
  [ -z "$(ls -A "$T/h10c" 2>/dev/null)" ]; then ok; else bad "first use, server down"; fi

# 11. two downloads of one model at once: one fetches, the other waits
# and finds the file
H=$T/h11
mkdir -p "$S/par" && cp "$S/big.onnx" "$S/par/u2netp.onnx"
MODEL_CHECKSUM_DISABLED=1 U2NET_HOME=$H CUTOUT_MODEL_BASE_URL=$URL/ok/par "$BIN" d u2netp 2>"$T/err1" &
p1=$!
MODEL_CHECKSUM_DISABLED=1 U2NET_HOME=$H CUTOUT_MODEL_BASE_URL=$URL/ok/par "$BIN" d u2netp 2>"$T/err2" &
p2=$!
if wait $p1 && wait $p2 && same "$H/u2netp.onnx" "$S/par/u2netp.onnx" && clean "$H"; then ok
else bad "concurrent downloads"; cat "$T/err1" "$T/err2"; fi

# 12. with the real ISNet (bootstrap): rembg's checksum verified (the fp16
# file's sha256), a resumed transfer still verifies, a part left by a
# killed run is resumed, and a server that ignores Range restarts it
if [ -f "$REAL" ]; then
  H=$T/h12
  if d trunc "$H" isnet-general-use && same "$H/isnet-general-use.onnx" "$REAL" && clean "$H" &&
    U2NET_HOME=$H "$BIN" models | grep -q "^isnet-general-use .* verified"; then ok
  else bad "real model, truncated + verified"; fi
  H=$T/h12b; mkdir -p "$H"
  head -c 40000000 "$REAL" >"$H/.isnet-general-use.onnx.part"
  : >"$T/log"
  if d ok "$H" isnet-general-use && same "$H/isnet-general-use.onnx" "$REAL" &&
    grep -q "bytes=40000000-" "$T/log" && clean "$H"; then ok; else bad "resume a killed run's part"; fi
  H=$T/h12c; mkdir -p "$H"
  head -c 1000 /dev/urandom >"$H/.isnet-general-use.onnx.part"
  if d noranges "$H" isnet-general-use && same "$H/isnet-general-use.onnx" "$REAL" && clean "$H"; then ok
  else bad "server without Range"; fi
else
  echo "note: $REAL absent (scripts/bootstrap.sh): the real-checksum cases are skipped"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
