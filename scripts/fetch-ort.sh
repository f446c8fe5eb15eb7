#!/usr/bin/env bash
# Make the ONNX Runtime shared library available project-locally, from the PyPI
# `onnxruntime` wheel only (no other download source, no fallback).
#
#   scripts/fetch-ort.sh            # prints the absolute path of libonnxruntime.so
#   export ORT_DYLIB_PATH="$(scripts/fetch-ort.sh)"
#   ORT_PACKAGE=onnxruntime-gpu ORT_VERSION=1.31.1 scripts/fetch-ort.sh   # + CUDA providers
#
# The library and the wheel's execution-provider libraries (libonnxruntime_providers_*.so)
# go to .cache/ort/lib (ORT_DIR overrides .cache/ort). The worker images run this script too.
#
# Idempotent: when the library is already in .cache/ort/lib it only prints the path.
# Only the path goes to stdout; progress goes to stderr.
# Override the interpreter with PYTHON=... (default python3).
set -euo pipefail

ORT_PACKAGE="${ORT_PACKAGE:-onnxruntime}"
ORT_VERSION="${ORT_VERSION:-1.32.0}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
WHEELS="$ROOT/.cache/wheels"
LIBDIR="${ORT_DIR:-$ROOT/.cache/ort}/lib"
LINK="$LIBDIR/libonnxruntime.so"
VERSIONED="$LIBDIR/libonnxruntime.so.$ORT_VERSION"
PYTHON="${PYTHON:-python3}"

log() { echo "fetch-ort: $*" >&2; }

if [[ -f "$VERSIONED" && -L "$LINK" && "$(readlink "$LINK")" == "libonnxruntime.so.$ORT_VERSION" ]]; then
    echo "$LINK"
    exit 0
fi

mkdir -p "$WHEELS" "$LIBDIR"

shopt -s nullglob
wheels=("$WHEELS"/"${ORT_PACKAGE//-/_}"-"$ORT_VERSION"-*.whl)
if (( ${#wheels[@]} == 0 )); then
    log "downloading $ORT_PACKAGE==$ORT_VERSION wheel from PyPI into $WHEELS"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: "$ORT_PACKAGE==$ORT_VERSION" -d "$WHEELS" >&2
    wheels=("$WHEELS"/"${ORT_PACKAGE//-/_}"-"$ORT_VERSION"-*.whl)
fi
if (( ${#wheels[@]} == 0 )); then
    log "no $ORT_PACKAGE-$ORT_VERSION wheel in $WHEELS after pip download"
    exit 1
fi
# Any platform-matching wheel of this version holds the same library; take the first.
wheel="${wheels[0]}"
log "extracting libonnxruntime.so* from $(basename "$wheel")"

tmp="$(mktemp -d "$ROOT/.cache/ort-extract.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" - "$wheel" "$tmp" <<'PY'
import sys, zipfile, fnmatch
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if fnmatch.fnmatch(n, "onnxruntime/capi/libonnxruntime*.so*")]
    if not names:
        sys.exit("no onnxruntime/capi/libonnxruntime.so* in " + wheel)
    for n in names:
        z.extract(n, dest)
        print(n, file=sys.stderr)
PY

found=("$tmp"/onnxruntime/capi/libonnxruntime.so.*)
if (( ${#found[@]} != 1 )); then
    log "expected one versioned libonnxruntime.so.* in the wheel, found ${#found[@]}"
    exit 1
fi
src="${found[0]}"
if [[ "$(basename "$src")" != "libonnxruntime.so.$ORT_VERSION" ]]; then
    log "unexpected library name $(basename "$src") (wanted libonnxruntime.so.$ORT_VERSION)"
    exit 1
fi
for provider in "$tmp"/onnxruntime/capi/libonnxruntime_providers_*.so; do
    [[ -e "$provider" ]] && install -m 0755 "$provider" "$LIBDIR/"
done
if [[ "$ORT_PACKAGE" == onnxruntime-gpu && ! -e "$LIBDIR/libonnxruntime_providers_cuda.so" ]]; then
    log "no libonnxruntime_providers_cuda.so in $(basename "$wheel")"
    exit 1
fi
install -m 0755 "$src" "$VERSIONED.partial"
mv -f "$VERSIONED.partial" "$VERSIONED"
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$LINK"
log "installed $VERSIONED"
echo "$LINK"
