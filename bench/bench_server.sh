#!/usr/bin/env bash
# bench_server.sh: load test of `cutout s` on loopback with wrk (issue #5).
# Not a ctest: run it by hand.
#
#   bench/bench_server.sh [BUILD_DIR]      (default: build)
#
# 1. The real ISNet (.deps/models) with conformance photos at concurrency
#    1, 2, 8 and 64, each for a bounded time: p50, p99, throughput, and
#    every non-200 status (only 503 is allowed, under overload).
# 2. RSS after 100 and after 1000 requests at concurrency 8, with the
#    tiny model and a small image so that it ends in seconds; with
#    RSS_MODEL=real, with the real ISNet and the conformance photos (about
#    half an hour: ISNet costs the same for any photo).
# PHASES=1 or PHASES=2 runs one phase only.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$here/build}
BIN=$BUILD/cutout
MODELS=${CUTOUT_REAL_MODELS:-$here/.deps/models}
TINY=${CUTOUT_TEST_MODELS:-$BUILD/tests/models}/tiny-64.onnx
PHOTOS=${CUTOUT_CONFORMANCE:-$here/../shared/conformance}/inputs
DUR=${BENCH_SECONDS:-20}
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "bench_server: wrk is missing (apt-get install wrk)" >&2; exit 1; }
T=$(mktemp -d /tmp/cutout-bench-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

start() { # ARGS...: start the server, wait until ready; sets pid, port
  "$BIN" s -h 127.0.0.1 -p 0 --offline "$@" 2>"$T/log" & pid=$!
  for _ in $(seq 600); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$T/log" | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return 0
    sleep 0.1
  done
  cat "$T/log" >&2; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || { echo "server exit $?" >&2; exit 1; }; pid=; }
rss() { awk '/VmRSS/ {print $2 / 1024}' "/proc/$pid/status"; }

# wrk posts one of several multipart bodies, built here.
make_lua() { # OUT FILE...
  local out=$1; shift
  "$PY" - "$out" "$@" <<'PY'
import sys
out, files = sys.argv[1], sys.argv[2:]
b = "cutoutbenchboundary"
bodies = []
for f in files:
    data = open(f, "rb").read()
    body = (b"--" + b.encode() + b'\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--" + b.encode() + b"--\r\n")
    bodies.append(body)
def lua_str(s):
    return '"' + "".join("\\%d" % c for c in s) + '"'
with open(out, "w") as f:
    f.write("local bodies = {%s}\n" % ",".join(lua_str(x) for x in bodies))
    f.write('local i = 0\nwrk.method = "POST"\nwrk.headers["Content-Type"] = "multipart/form-data; boundary=%s"\n' % b)
    f.write("request = function()\n  i = i %% %d + 1\n  return wrk.format(nil, \"/api/remove\", nil, bodies[i])\nend\n" % len(bodies))
    f.write("""done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors_socket=%d non_2xx=%d p50_ms=%.1f p99_ms=%.1f rps=%.3f\\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6)))
end
""")
PY
}

if [ "${PHASES:-12}" != 2 ]; then
echo "== 1. ISNet (isnet-general-use), conformance photos, ${DUR}s per level"
photos=$(ls "$PHOTOS"/*.jpg | head -4)
make_lua "$T/isnet.lua" $photos
U2NET_HOME=$MODELS start -m isnet-general-use --queue 16 --request-timeout 300
"$BIN" config --workload server 2>/dev/null | grep -E 'workers|intra' | head -4 || true
for c in 1 2 8 64; do
  out=$(wrk -t 1 -c "$c" -d "${DUR}s" --timeout 300s -s "$T/isnet.lua" "http://127.0.0.1:$port" | grep RESULT)
  echo "concurrency $c: ${out#RESULT } rss_mb=$(rss)"
  # wrk's threads cannot report statuses to its summary: the server's
  # metrics say which statuses were answered (cumulative)
  codes=$(curl -s "http://127.0.0.1:$port/metrics" | grep '^cutout_http_requests_total' | sed 's/cutout_http_requests_total//' | tr '\n' ' ')
  echo "  server statuses so far: $codes"
  bad=$(echo "$codes" | grep -o 'code="[0-9]*"' | grep -v -e 'code="200"' -e 'code="503"' || true)
  [ -z "$bad" ] || echo "  ERROR: statuses other than 200/503: $bad"
done
stop

fi
[ "${PHASES:-12}" = 1 ] && exit 0

# N requests at concurrency 8, exactly, with one of the given files each
# (a Python client: wrk cannot stop after N requests without idling out its
# whole duration).
post_n() { # N FILE...
  "$PY" - "$port" "$@" <<'PY'
import http.client, sys, time
from concurrent.futures import ThreadPoolExecutor
port, n, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
b = "cutoutbenchboundary"
bodies = [(b"--" + b.encode() + b'\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
           b"Content-Type: application/octet-stream\r\n\r\n" + open(f, "rb").read() +
           b"\r\n--" + b.encode() + b"--\r\n") for f in files]
def one(i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3000)
    t = time.time()
    c.request("POST", "/api/remove", bodies[i % len(bodies)],
              {"Content-Type": "multipart/form-data; boundary=" + b})
    r = c.getresponse(); r.read(); c.close()
    return r.status, time.time() - t
t0 = time.time()
with ThreadPoolExecutor(8) as ex:
    res = list(ex.map(one, range(n)))
lat = sorted(x for _, x in res)
codes = {}
for s, _ in res:
    codes[s] = codes.get(s, 0) + 1
print(f"requests={n} statuses={codes} p50_s={lat[len(lat) // 2]:.2f} "
      f"p99_s={lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.2f} rps={n / (time.time() - t0):.3f}")
PY
}

if [ "${RSS_MODEL:-tiny}" = real ]; then
  echo "== 2. RSS after 100 and 1000 requests (isnet-general-use, conformance photos, concurrency 8)"
  export U2NET_HOME=$MODELS
  start -m isnet-general-use --queue 64 --request-timeout 3000
  echo "first 100:  $(post_n 100 "$PHOTOS"/*.jpg)"
  r100=$(rss)
  echo "next 900:   $(post_n 900 "$PHOTOS"/*.jpg)"
  r1000=$(rss)
else
  echo "== 2. RSS after 100 and 1000 requests (tiny-64.onnx, 96x64 PNG, concurrency 8)"
  "$PY" -c "
import numpy as np; from PIL import Image
Image.fromarray(np.random.default_rng(0).integers(0,255,(64,96,3),dtype=np.uint8)).save('$T/small.png')"
  start -m "$TINY" --queue 64
  echo "first 100:  $(post_n 100 "$T/small.png")"
  r100=$(rss)
  echo "next 900:   $(post_n 900 "$T/small.png")"
  r1000=$(rss)
fi
echo "rss_mb after 100: $r100  after 1000: $r1000  ($(awk -v a="$r100" -v b="$r1000" 'BEGIN {printf "%+.1f%%", (b - a) * 100 / a}'))"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^cutout_http_requests_total|^cutout_process_threads|^cutout_ort_pool_threads'
stop
