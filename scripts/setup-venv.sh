#!/usr/bin/env bash
# Create the project's test virtualenv (.venv) and install the pinned test dependencies
# from tests/requirements.txt, plus helm-sdkpy (installed separately, see below).
#
#   scripts/setup-venv.sh           # prints the venv's python path on stdout
#
# Idempotent: skipped when .venv/.stamp holds the sha256 of tests/requirements.txt
# (and of the helm-sdkpy pin). Progress goes to stderr. Interpreter: PYTHON=... (default python3).
set -euo pipefail

# helm-sdkpy declares Requires-Python >= 3.12 but works for our use on 3.11.
HELM_SDKPY_VERSION="0.1.32"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="$ROOT/.venv"
REQ="$ROOT/tests/requirements.txt"
STAMP="$VENV/.stamp"
PYTHON="${PYTHON:-python3}"
VPY="$VENV/bin/python"

log() { echo "setup-venv: $*" >&2; }

want="$( { cat "$REQ"; echo "helm-sdkpy==$HELM_SDKPY_VERSION"; } | sha256sum | cut -d' ' -f1)"

if [[ -x "$VPY" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "$VPY"
    exit 0
fi

if [[ ! -x "$VPY" ]]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi

rm -f "$STAMP"
pip=("$VPY" -m pip --disable-pip-version-check)
log "installing $REQ"
"${pip[@]}" install --quiet --only-binary=pycocotools -r "$REQ" >&2
log "installing helm-sdkpy==$HELM_SDKPY_VERSION (--ignore-requires-python)"
"${pip[@]}" install --quiet --ignore-requires-python "helm-sdkpy==$HELM_SDKPY_VERSION" >&2

"$VPY" - <<'PY' >&2
import numpy, PIL, onnxruntime, pycocotools.coco, boto3, tritonclient.http, pytest, yaml
print("numpy", numpy.__version__, "| pillow", PIL.__version__, "| onnxruntime", onnxruntime.__version__,
      "| boto3", boto3.__version__, "| pytest", pytest.__version__, "| pyyaml", yaml.__version__)
PY

echo "$want" > "$STAMP"
log "ready"
echo "$VPY"
