#!/usr/bin/env bash
# Thread management through the cutout binary (issue #3): `cutout config`
# shows the plan, the precedence flag > CUTOUT_* > OMP_NUM_THREADS > auto
# holds, every bad value fails with exit 2 and a clear message, taskset and
# a (fake) container quota shrink the plan, every command takes the flags,
# --stats prints text or JSON, and `cutout bench` runs its configurations.
set -u
BIN=${CUTOUT_BIN:?}
MODELS=${CUTOUT_TEST_MODELS:?}
PY=${CUTOUT_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/cutout-threads-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
HEAVY=$MODELS/tiny-heavy.onnx
# Nothing from the caller's environment may leak into the checks.
unset OMP_NUM_THREADS ORT_INTRA_OP_NUM_THREADS ORT_INTER_OP_NUM_THREADS
for v in $(env | sed -n 's/^\(CUTOUT_[A-Z_]*\)=.*/\1/p'); do
  case $v in CUTOUT_BIN|CUTOUT_TEST_MODELS|CUTOUT_PYTHON|CUTOUT_TEST_DATA|\
    CUTOUT_CONFORMANCE|CUTOUT_REAL_MODELS) ;; *) unset "$v" ;; esac
done

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# expect_err NAME WANT -- ARGS...: exit 2 and WANT in stderr.
expect_err() {
  local name=$1 want=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ $rc -eq 2 ] && grep -qF -- "$want" "$T/err"; then ok
  else bad "$name: exit $rc, stderr:"; sed 's/^/    /' "$T/err"; fi
}

# jq-like checks with Python: check NAME PYEXPR < json
check() {
  local name=$1 expr=$2
  if "$PY" -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($expr) else 1)" <"$T/out"; then ok
  else bad "$name: ($expr) is false for:"; head -c 3000 "$T/out" | sed 's/^/    /'; echo; fi
}

# ---------------------------------------------------------------- config
if "$BIN" config >"$T/out" 2>"$T/err" && grep -q "usable CPUs" "$T/out" &&
   grep -q "intra_threads" "$T/out" && grep -q "CPUExecutionProvider" "$T/out"; then ok
else bad "config text"; cat "$T/err"; fi
"$BIN" config --json >"$T/out" 2>"$T/err" || bad "config --json: $(cat "$T/err")"
check "json shape" "set(d) >= {'topology','settings','ort','threads','providers','onnxruntime'}"
check "auto source" "d['settings']['intra_threads']['source'] == 'auto' and d['settings']['intra_threads']['reason']"
check "never ORT's 0" "d['settings']['intra_threads']['value'] == d['topology']['usable']"

# precedence: flag > CUTOUT_* > OMP_NUM_THREADS > auto
OMP_NUM_THREADS=3 "$BIN" config --json >"$T/out" 2>"$T/err"
check "omp" "d['settings']['intra_threads'] == {'value': 3, 'source': 'OMP_NUM_THREADS', 'reason': d['settings']['intra_threads']['reason']} and d['settings']['inter_threads']['value'] == 3"
OMP_NUM_THREADS=3 CUTOUT_INTRA_THREADS=1 "$BIN" config --json >"$T/out" 2>"$T/err"
check "env beats omp" "d['settings']['intra_threads']['value'] == 1 and d['settings']['intra_threads']['source'] == 'env' and d['settings']['inter_threads']['source'] == 'OMP_NUM_THREADS'"
OMP_NUM_THREADS=3 CUTOUT_INTRA_THREADS=1 "$BIN" config --json --intra-threads 2 >"$T/out" 2>"$T/err"
check "flag beats env" "d['settings']['intra_threads']['value'] == 2 and d['settings']['intra_threads']['source'] == 'flag'"
CUTOUT_SPIN=on CUTOUT_THREAD_POOL=per-session CUTOUT_WORKERS=2 "$BIN" config --json >"$T/out" 2>"$T/err"
check "env words" "d['settings']['spin']['value'] is True and d['settings']['thread_pool']['value'] == 'per-session' and d['settings']['workers']['value'] == 2"
"$BIN" config --json --workload throughput >"$T/out" 2>"$T/err"
check "throughput plan" "d['settings']['intra_threads']['value'] * d['settings']['workers']['value'] == d['topology']['usable'] and d['settings']['workers']['value'] == max(1, d['topology']['usable'] // 4)"
"$BIN" config --json --intra-threads=2 --thread-pool per-session --spin on --spin-us 500 >"$T/out" 2>"$T/err"
check "ort config entries" "d['ort']['config_entries']['session.intra_op.spin_duration_us'] == '500' and d['ort']['config_entries']['session.intra_op.allow_spinning'] == '1'"

# every bad value: exit 2, a message naming the value
expect_err neg      "--intra-threads '-1': expected an integer" -- "$BIN" config --intra-threads -1
expect_err nonnum   "--intra-threads 'abc'"                     -- "$BIN" config --intra-threads abc
expect_err envbad   "CUTOUT_INTRA_THREADS='abc'"                -- env CUTOUT_INTRA_THREADS=abc "$BIN" config
expect_err ompbad   "OMP_NUM_THREADS='x'"                       -- env OMP_NUM_THREADS=x "$BIN" config
expect_err envspin  "CUTOUT_SPIN='sometimes': expected on or off" -- env CUTOUT_SPIN=sometimes "$BIN" config
expect_err outside  "outside the CPUs this process may use"     -- "$BIN" config --cpu-binding "0;1023"
expect_err groups   "has 1 group but --intra-threads '2'"       -- "$BIN" config --cpu-binding 0 --intra-threads 2
expect_err syntax   "only CPU ids"                              -- "$BIN" config --cpu-binding "0;a"
expect_err spinus   "drops the spin window"                     -- "$BIN" config --spin off --spin-us 100 --thread-pool per-session
expect_err interseq "only applies to --execution-mode parallel" -- "$BIN" config --inter-threads 2
expect_err par1     "falls back to sequential"                  -- "$BIN" config --execution-mode parallel --inter-threads 1
expect_err shared   "only works with per-session pools"         -- "$BIN" config --thread-pool shared --spin on --spin-us 10
expect_err stop     "only works with per-session pools"         -- "$BIN" config --thread-pool shared --spin on --spin-stop on
expect_err spinword "--spin 'maybe': expected on or off"        -- "$BIN" config --spin maybe
expect_err gopt     "--graph-opt 'fast': expected one of"       -- "$BIN" config --graph-opt fast
expect_err mode     "--execution-mode 'fast'"                   -- "$BIN" config --execution-mode fast
expect_err workers  "--workers '0'"                             -- "$BIN" config --workers 0
expect_err pool     "--thread-pool 'global'"                    -- "$BIN" config --thread-pool global
expect_err denorm   "--denormals-zero 'maybe'"                  -- "$BIN" config --denormals-zero maybe
expect_err profile  "cannot write profiles"                     -- "$BIN" config --ort-profile /nonexistent-dir/p
expect_err novalue  "needs a value"                             -- "$BIN" config --intra-threads
expect_err statsbad "--stats"                                   -- "$BIN" config --stats=xml

# a restricted mask and a container quota shrink the plan
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then
  taskset -c 0 "$BIN" config --json >"$T/out" 2>"$T/err"
  check "taskset" "d['topology']['affinity'] == '0' and d['topology']['usable'] == 1 and d['settings']['intra_threads']['value'] == 1"
  taskset -c 0 "$BIN" config --json --workload throughput >"$T/out" 2>"$T/err"
  check "taskset throughput" "d['settings']['workers']['value'] == 1"
fi
mkdir -p "$T/cg"; echo "100000 100000" >"$T/cg/cpu.max"
CUTOUT_CGROUP_ROOT=$T/cg "$BIN" config --json >"$T/out" 2>"$T/err"
check "quota" "d['topology']['quota'] == 1 and d['topology']['usable'] == 1 and d['settings']['intra_threads']['value'] == 1 and 'cpu.max' in d['topology']['quota_source']"

# real threads: the shared pool exists with the engine; per-session pools
# with each model.
"$BIN" config --json --intra-threads 2 --load -m "$HEAVY" >"$T/out" 2>"$T/err"
check "shared live" "d['threads']['live'] == 1 and d['threads']['names'] == ['cutout-intra-1']"
"$BIN" config --json --intra-threads 2 --thread-pool per-session >"$T/out" 2>"$T/err"
check "per-session before load" "d['threads']['live'] == 0"
"$BIN" config --json --intra-threads 2 --thread-pool per-session --load -m "$HEAVY" >"$T/out" 2>"$T/err"
check "per-session after load" "d['threads']['live'] == 1"

# ---------------------------------------------------------------- commands
"$PY" - "$T" <<'PY'
import sys
from PIL import Image
Image.new("RGB", (120, 90), (200, 40, 30)).save(sys.argv[1] + "/in.png")
PY
mkdir -p "$T/in" "$T/outdir"; cp "$T/in.png" "$T/in/a.png"
FLAGS=(--intra-threads 1 --spin off --thread-pool per-session --graph-opt basic
       --execution-mode sequential --denormals-zero on --workers 1 --io-threads 1
       --mem-arena on --mem-pattern off)
if "$BIN" i -m "$HEAVY" "${FLAGS[@]}" "$T/in.png" "$T/o.png" 2>"$T/err" && [ -s "$T/o.png" ]; then ok
else bad "i with flags"; cat "$T/err"; fi
if "$BIN" p -m "$HEAVY" "${FLAGS[@]}" "$T/in" "$T/outdir" >/dev/null 2>"$T/err" && [ -n "$(ls "$T/outdir")" ]; then ok
else bad "p with flags"; cat "$T/err"; fi
expect_err iflag "--spin 'x'" -- "$BIN" i -m "$HEAVY" --spin x "$T/in.png" "$T/o.png"

# --stats: text and JSON
if "$BIN" i -m "$HEAVY" --stats "$T/in.png" "$T/o.png" 2>"$T/err" &&
   grep -q "inference" "$T/err" && grep -q "peak RSS" "$T/err" && grep -q "cores busy" "$T/err"; then ok
else bad "--stats text"; cat "$T/err"; fi
"$BIN" i -m "$HEAVY" --stats=json "$T/in.png" "$T/o.png" 2>"$T/out"
check "--stats=json" "d['images'] == 1 and d['stages']['inference']['wall_s'] > 0 and d['peak_rss_mb'] > 0 and d['cpu_utilisation'] > 0"

# ORT profiling
if "$BIN" i -m "$HEAVY" --ort-profile "$T/prof" "$T/in.png" "$T/o.png" 2>"$T/err" &&
   ls "$T"/prof*.json >/dev/null 2>&1; then ok
else bad "--ort-profile"; cat "$T/err"; fi

# ---------------------------------------------------------------- bench
QB=(-m "$HEAVY" --quick --warmup 1 --runs 2 --wait-quiet 0 --max-other 1000 "$T/in.png")
if "$BIN" bench "${QB[@]}" >"$T/out" 2>"$T/err" &&
   for c in ort-default rembg-omp ort-parallel auto-latency auto-throughput ort-default-x; do
     grep -q "^$c" "$T/out" || exit 1; done; then ok
else bad "bench"; cat "$T/out" "$T/err"; fi
"$BIN" bench "${QB[@]}" --json --only ort-default,auto-latency >"$T/out" 2>"$T/err"
check "bench json" "[c['name'] for c in d['configs']] == ['ort-default', 'auto-latency'] and all(c['latency_s'] > 0 and c['peak_rss_mb'] > 0 for c in d['configs'])"
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then
  "$BIN" bench "${QB[@]}" --json --cpus 0 --only auto-latency,auto-throughput >"$T/out" 2>"$T/err"
  check "bench --cpus" "d['cpus'] == '0' and all(c['escaped'] is None for c in d['configs'])"
fi
# no IMAGE: the images come from a folder (more of them than arguments;
# this once overflowed the file list)
mkdir -p "$T/imgs"
for k in $(seq 16); do cp "$T/in.png" "$T/imgs/in$k.png"; done
if CUTOUT_BENCH_IMAGES="$T/imgs" "$BIN" bench -m "$HEAVY" --runs 16 --rounds 1 --warmup 0 \
     --wait-quiet 0 --only auto-latency >"$T/out" 2>"$T/err" &&
   grep -q "^auto-latency" "$T/out"; then ok
else bad "bench images from a folder"; cat "$T/out" "$T/err"; fi
expect_err cpus "not available to this process" -- "$BIN" bench "${QB[@]}" --cpus 1023
"$BIN" bench "${QB[@]}" --quota 1 --only auto-latency >"$T/out" 2>"$T/err"
rc=$?
if { [ $rc -eq 0 ] && grep -q "CPU quota: cgroup v" "$T/out"; } ||
   { [ $rc -ne 0 ] && grep -q "cannot make a cgroup" "$T/err"; }; then ok
else bad "bench --quota: exit $rc"; cat "$T/out" "$T/err"; fi
ls -d /sys/fs/cgroup/*/cutout-bench-* /sys/fs/cgroup/cutout-bench-* 2>/dev/null && bad "bench left a cgroup"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
