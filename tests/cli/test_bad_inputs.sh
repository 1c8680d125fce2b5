#!/usr/bin/env bash
# Every bad input of issue #2 gets one clear line on stderr naming the file
# and the reason, a non-zero exit status, no crash, and no output file (nor
# a temporary one) left behind.
set -u
BIN=${CUTOUT_BIN:?}
MODELS=${CUTOUT_TEST_MODELS:?}
PY=${CUTOUT_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/cutout-bad-XXXXXX)
trap 'rm -rf "$T"' EXIT
OUT=$T/out
mkdir -p "$OUT"
pass=0 fail=0
MODEL=$MODELS/tiny-64.onnx

# make the inputs
"$PY" - "$T" <<'PY'
import io, struct, sys, zlib
import numpy as np
from PIL import Image
t = sys.argv[1]
rng = np.random.default_rng(0)
img = Image.fromarray(rng.integers(0, 255, (80, 120, 3), dtype=np.uint8))
def save(name, fmt, **kw):
    b = io.BytesIO(); img.save(b, fmt, **kw); open(f"{t}/{name}", "wb").write(b.getvalue()); return b.getvalue()
save("ok.png", "PNG")
j = save("ok.jpg", "JPEG", quality=90)
open(f"{t}/trunc.jpg", "wb").write(j[: len(j) // 2])
p = save("full.png", "PNG")
open(f"{t}/trunc.png", "wb").write(p[: len(p) // 2])
w = save("full.webp", "WEBP", quality=80)
open(f"{t}/trunc.webp", "wb").write(w[: len(w) // 2])
def png_header(wd, ht, crc_ok=True):
    ihdr = struct.pack(">IIBBBBB", wd, ht, 8, 2, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + ihdr) ^ (0 if crc_ok else 0xFFFF)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", crc)
idat = zlib.compress(b"\x00" * 10)
chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
open(f"{t}/zero.png", "wb").write(png_header(0, 0) + chunk + iend)
open(f"{t}/badcrc.png", "wb").write(png_header(120, 80, False) + chunk + iend)
open(f"{t}/huge.png", "wb").write(png_header(100000, 100000) + chunk + iend)
jb = bytearray(j); k = jb.find(b"\xff\xc0")
jb[k + 5:k + 9] = b"\x00\x00\x00\x00"  # SOF: height 0, width 0
open(f"{t}/zero.jpg", "wb").write(bytes(jb))
open(f"{t}/text.png", "wb").write(b"hello, I am not an image\n" * 10)
open(f"{t}/empty.png", "wb").write(b"")
PY

# expect NAME WANT_IN_MESSAGE -- ARGS...: exit != 0, one stderr line
# mentioning WANT, no output left in $OUT.
expect() {
  local name=$1 want=$2; shift 3
  rm -rf "$OUT"; mkdir -p "$OUT"
  "$BIN" "$@" >"$T/stdout" 2>"$T/stderr"
  local rc=$? lines; lines=$(wc -l <"$T/stderr")
  local leftover; leftover=$(ls -A "$OUT" 2>/dev/null)
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && grep -qF -- "$want" "$T/stderr" && [ -z "$leftover" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $name: exit $rc, $lines stderr lines, leftover '$leftover'"; sed 's/^/    /' "$T/stderr"
  fi
}

# a model folder with a wrong file under a registry name
mkdir -p "$T/home"
echo "not u2netp" >"$T/home/u2netp.onnx"
cp "$MODELS/not-a-model.onnx" "$T/home/"

expect missing   "$T/nope.png: no such file"   -- i -m "$MODEL" "$T/nope.png" "$OUT/o.png"
expect directory "is a directory"              -- i -m "$MODEL" "$T" "$OUT/o.png"
expect empty     "$T/empty.png: empty"         -- i -m "$MODEL" "$T/empty.png" "$OUT/o.png"
expect notimage  "$T/text.png: not an image"   -- i -m "$MODEL" "$T/text.png" "$OUT/o.png"
expect truncjpeg "$T/trunc.jpg"                -- i -m "$MODEL" "$T/trunc.jpg" "$OUT/o.png"
expect truncpng  "$T/trunc.png"                -- i -m "$MODEL" "$T/trunc.png" "$OUT/o.png"
expect truncwebp "$T/trunc.webp"               -- i -m "$MODEL" "$T/trunc.webp" "$OUT/o.png"
expect badcrc    "$T/badcrc.png"               -- i -m "$MODEL" "$T/badcrc.png" "$OUT/o.png"
expect zeropng   "$T/zero.png"                 -- i -m "$MODEL" "$T/zero.png" "$OUT/o.png"
expect zerojpg   "$T/zero.jpg"                 -- i -m "$MODEL" "$T/zero.jpg" "$OUT/o.png"
expect hugepng   "$T/huge.png"                 -- i -m "$MODEL" "$T/huge.png" "$OUT/o.png"
expect maxpixels "$T/ok.png"                   -- i -m "$MODEL" --max-pixels 1000 "$T/ok.png" "$OUT/o.png"
expect unknownm  "unknown model 'nosuch'"      -- i -m nosuch "$T/ok.png" "$OUT/o.png"
U2NET_HOME=$T/empty-home expect missingm "u2net.onnx not found" -- i -m u2net "$T/ok.png" "$OUT/o.png"
expect corruptm  "not-a-model.onnx is not a valid ONNX model" -- i -m "$T/home/not-a-model.onnx" "$T/ok.png" "$OUT/o.png"
U2NET_HOME=$T/home expect checksum "checksum mismatch" -- i -m u2netp "$T/ok.png" "$OUT/o.png"
expect badjson   "not a valid JSON"            -- i -m "$MODEL" -x '{"putalpha": tru' "$T/ok.png" "$OUT/o.png"
expect jsontype  "putalpha must be"            -- i -m "$MODEL" -x '{"putalpha": "yes"}' "$T/ok.png" "$OUT/o.png"
expect bgcrange  "bad -bgc value '256'"        -- i -m "$MODEL" -bgc 0 0 256 0 "$T/ok.png" "$OUT/o.png"
expect bgcword   "bad -bgc value 'red'"        -- i -m "$MODEL" -bgc red 0 0 0 "$T/ok.png" "$OUT/o.png"
expect bgcshort  "needs four values"           -- i -m "$MODEL" "$T/ok.png" "$OUT/o.png" -bgc 1 2
expect jpegalpha "JPEG cannot store transparency" -- i -m "$MODEL" "$T/ok.png" "$OUT/o.jpg"
expect badfmt    "bad --format"                -- i -m "$MODEL" --format gif "$T/ok.png" "$OUT/o.png"
expect nodir     "cannot write in $T/nodir"    -- i -m "$MODEL" "$T/ok.png" "$T/nodir/o.png"
if [ "$(id -u)" != 0 ]; then
  mkdir -p "$T/ro"; chmod 555 "$T/ro"
  expect readonly "cannot write in $T/ro"      -- i -m "$MODEL" "$T/ok.png" "$T/ro/o.png"
else
  # root ignores permission bits: a read-only mount is the honest test, so
  # use /proc, which refuses new files.
  expect readonly "cannot write in /proc"      -- i -m "$MODEL" "$T/ok.png" /proc/o.png
fi
expect unknownopt "unknown option --bogus"     -- i --bogus "$T/ok.png"

# and the good path works, leaving exactly the output
rm -rf "$OUT"; mkdir -p "$OUT"
if "$BIN" i -m "$MODEL" "$T/ok.jpg" "$OUT/o.png" 2>"$T/stderr" && [ "$(ls -A "$OUT")" = o.png ]; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL good path"; cat "$T/stderr"
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
