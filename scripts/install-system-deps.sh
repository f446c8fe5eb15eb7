#!/usr/bin/env bash
# Install the Debian packages LabelJob needs to build (cmake + nasm for the vendored
# libjpeg-turbo 3 that scaled JPEG decode uses, pkg-config) and, with --test, the real S3
# server used by the tests (Ceph RADOS Gateway); with --images, an OCI builder when the
# machine has none that works (podman + runc + debootstrap for local base images).
# The worker Dockerfiles run this script too (no option), so the build list is said once.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
log() { echo "install-system-deps: $*" >&2; }
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

install_missing() {
    local need=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
    done
    ((${#need[@]})) || return 0
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 \
        || { $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; }
}

case "${1:-}" in
    "") install_missing cmake nasm pkg-config ;;
    --test) install_missing cmake nasm pkg-config; "$ROOT/scripts/s3-server.sh" install ;;
    --images)
        # A running Docker daemon is enough; otherwise podman with runc (see scripts/podman-env.sh).
        if ! { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }; then
            install_missing podman runc debootstrap uidmap
        fi
        ;;
    *) log "usage: $0 [--test | --images]"; exit 2 ;;
esac
