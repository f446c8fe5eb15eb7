#!/usr/bin/env bash
# Create the project's test virtualenvs and install their pinned dependencies:
#   .venv          tests/requirements.txt plus helm-sdkpy (installed separately, see below)
#   .venv-formats  tests/requirements-formats.txt: the importers (datumaro, label-studio-sdk)
#                  that tests/formats/check_formats.py runs on `labeljob merge` output. A venv of
#                  its own because datumaro needs pillow~=12 and .venv pins pillow 13.
#
#   scripts/setup-venv.sh           # prints .venv's python path on stdout (only that one)
#
# Idempotent: each venv is skipped when its .stamp holds the sha256 of its requirements
# (for .venv also of the helm-sdkpy pin). Progress goes to stderr. Interpreter: PYTHON=...
# (default python3).
set -euo pipefail

# helm-sdkpy declares Requires-Python >= 3.12 but works for our use on 3.11.
HELM_SDKPY_VERSION="0.1.32"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PYTHON="${PYTHON:-python3}"

log() { echo "setup-venv: $*" >&2; }

# fresh DIR WANT: DIR's venv exists and its .stamp says WANT.
# prepare DIR: create DIR's venv if missing and clear its stamp, so an interrupted install is
# redone next time.
fresh() {
    local venv="$1" want="$2"
    [[ -x "$venv/bin/python" && -f "$venv/.stamp" && "$(cat "$venv/.stamp")" == "$want" ]]
}
prepare() {
    local venv="$1"
    if [[ ! -x "$venv/bin/python" ]]; then
        log "creating $venv"
        "$PYTHON" -m venv "$venv"
    fi
    rm -f "$venv/.stamp"
}

# --- .venv: the main test venv ---------------------------------------------------------------
VENV="$ROOT/.venv"
REQ="$ROOT/tests/requirements.txt"
VPY="$VENV/bin/python"
want="$( { cat "$REQ"; echo "helm-sdkpy==$HELM_SDKPY_VERSION"; } | sha256sum | cut -d' ' -f1)"

if ! fresh "$VENV" "$want"; then
    prepare "$VENV"
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
    echo "$want" > "$VENV/.stamp"
    log "ready: $VENV"
fi

# --- .venv-formats: the importers --------------------------------------------------------------
FVENV="$ROOT/.venv-formats"
FREQ="$ROOT/tests/requirements-formats.txt"
FPY="$FVENV/bin/python"
fwant="$(sha256sum < "$FREQ" | cut -d' ' -f1)"

if ! fresh "$FVENV" "$fwant"; then
    prepare "$FVENV"
    log "installing $FREQ"
    # Binary wheels only: nothing is compiled here (every pin has a manylinux/py3 wheel).
    "$FPY" -m pip --disable-pip-version-check install --quiet --only-binary=:all: -r "$FREQ" >&2
    "$FPY" - <<'PY' >&2
import datumaro, label_studio_sdk.label_interface, imagehash, PIL, numpy, pycocotools.coco
from importlib.metadata import version
print("datumaro", datumaro.__version__, "| label-studio-sdk", version("label-studio-sdk"),
      "| ImageHash", version("ImageHash"), "| pillow", PIL.__version__, "| numpy", numpy.__version__)
PY
    echo "$fwant" > "$FVENV/.stamp"
    log "ready: $FVENV"
fi

echo "$VPY"
