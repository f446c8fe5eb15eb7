#!/usr/bin/env bash
# Local stand-ins for the base images the Dockerfiles name, for a podman machine that cannot
# pull them (no registry: this machine, CI). Made only from Debian packages and this machine's
# Rust toolchain; each is skipped when an image of that name already exists with the same
# recipe (label dev.labeljob.recipe).
#
#   debian:bookworm-slim        debootstrap --variant=minbase bookworm, trimmed like -slim
#                               (no docs, man pages, locales, apt lists or .deb caches)
#   python:3.11-slim-bookworm   docker/local-bases/python.Containerfile (Debian's Python 3.11)
#   rust:1.95-bookworm          docker/local-bases/rust.Containerfile (this machine's rustup
#                               toolchain, which must be 1.95, copied in)
#
# Only builder stages get this machine's CA bundle (to reach the registries as the host does);
# final images start from the plain debian:bookworm-slim stand-in or from scratch.
# Env: DEBIAN_MIRROR (default http://deb.debian.org/debian), RUST_SYSROOT (rustc --print sysroot).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
RUST_TAG="1.95"
log() { echo "image-bases: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/podman-env.sh
source "$ROOT/scripts/podman-env.sh"
podman_env

[[ $(id -u) -eq 0 ]] || die "debootstrap and podman import need root"
command -v debootstrap >/dev/null || die "debootstrap missing (scripts/install-system-deps.sh --images)"

# recipe_of FILE...: the digest that names one version of a stand-in's recipe.
recipe_of() { cat "$@" | sha256sum | cut -c1-16; }

# current NAME RECIPE: true when NAME exists and was made from RECIPE.
current() {
    podman image exists "$1" \
        && [[ "$(podman image inspect --format '{{index .Labels "dev.labeljob.recipe"}}' "$1")" == "$2" ]]
}

work="$(mktemp -d "${TMPDIR:-/tmp}/labeljob-bases.XXXXXX")"
cleanup() {
    # debootstrap may leave /proc mounted inside the root when it fails half-way.
    umount -R "$work/rootfs/proc" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

debian_slim() {
    local name=localhost/debian:bookworm-slim recipe
    recipe="$(recipe_of "$0" <(echo "$DEBIAN_MIRROR"))"
    if current "$name" "$recipe"; then log "$name is current"; return; fi
    log "debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR"
    local start=$SECONDS rootfs="$work/rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    # Trim as debian:*-slim does, and keep later apt-get installs trimmed the same way.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/labeljob-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/labeljob-slim" <<'EOF'
APT::Install-Recommends "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
    tar -C "$rootfs" --numeric-owner --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -c . \
        | podman import \
            --change 'CMD ["bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change "LABEL dev.labeljob.recipe=$recipe" \
            --change 'LABEL dev.labeljob.stand-in="debootstrap --variant=minbase bookworm (scripts/image-bases.sh)"' \
            - "$name" >/dev/null
    log "$name made in $((SECONDS - start)) s"
}

# from_recipe NAME CONTAINERFILE [podman build args...]
from_recipe() {
    local name="$1" file="$2" recipe start=$SECONDS
    shift 2
    recipe="$(recipe_of "$file" /etc/ssl/certs/ca-certificates.crt <(podman image inspect \
        --format '{{.Id}}' localhost/debian:bookworm-slim) <(echo "$*"))"
    if current "$name" "$recipe"; then log "$name is current"; return; fi
    local ctx="$work/ctx-$(basename "$file")"
    mkdir -p "$ctx"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca.crt"
    podman build --network host --pull=never -f "$file" --label "dev.labeljob.recipe=$recipe" \
        --label "dev.labeljob.stand-in=$(basename "$file") (scripts/image-bases.sh)" \
        "$@" -t "$name" "$ctx" >"$work/build.log" 2>&1 \
        || { tail -30 "$work/build.log" >&2; die "building $name from $file failed"; }
    log "$name made in $((SECONDS - start)) s"
}

debian_slim
from_recipe localhost/python:3.11-slim-bookworm "$ROOT/docker/local-bases/python.Containerfile"

sysroot="${RUST_SYSROOT:-$(rustc --print sysroot)}"
version="$("$sysroot/bin/rustc" --version)"
[[ "$version" == "rustc $RUST_TAG."* ]] \
    || die "this machine's toolchain is '$version'; the Dockerfiles want rust:$RUST_TAG-bookworm"
from_recipe "localhost/rust:$RUST_TAG-bookworm" "$ROOT/docker/local-bases/rust.Containerfile" \
    -v "$sysroot:/toolchain:ro" --label "dev.labeljob.toolchain=$version"
