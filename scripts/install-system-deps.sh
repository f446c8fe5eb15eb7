#!/usr/bin/env bash
# Install the Debian packages LabelJob needs to build (cmake + nasm for the vendored
# libjpeg-turbo 3 that scaled JPEG decode uses,
# pkg-config) and, with --test, the real S3 server used by the tests (Ceph RADOS Gateway).
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
log() { echo "install-system-deps: $*" >&2; }
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

need=()
for pkg in cmake nasm pkg-config; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 \
        || { $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; }
fi
if [[ "${1:-}" == "--test" ]]; then
    "$ROOT/scripts/s3-server.sh" install
fi
