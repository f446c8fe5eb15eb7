#!/usr/bin/env bash
# Build and check the container images with whichever OCI builder this machine has.
#
#   scripts/images.sh engine                  # print the builder that would be used
#   scripts/images.sh build [IMAGE...]        # operator worker worker-cuda (default: all)
#   scripts/images.sh bases                   # only the local base-image stand-ins (podman)
#   scripts/images.sh sizes                   # the size of each built image
#
# Builder: $CONTAINER_ENGINE when set; else Docker when its daemon answers (`docker build`
# with BuildKit, exactly as a user runs it); else podman (Debian's podman + runc; installed
# with `scripts/install-system-deps.sh --images` when missing).
#
# Base images under podman: BASE_IMAGES=local (default) builds local stand-ins with the
# Dockerfiles' own names from Debian packages when they are missing (no registry needed:
# scripts/image-bases.sh); BASE_IMAGES=pull lets podman pull the real ones. Docker always
# pulls (or uses) the real ones.
#
# worker-cuda: its runtime base (nvidia/cuda) cannot be made from Debian packages. When it is
# not present, every stage that can be built is built (`--target builder`, `--target ort`).
#
# Tags: $OPERATOR_IMAGE:$IMAGE_TAG, $WORKER_IMAGE:$IMAGE_TAG and $WORKER_IMAGE:$IMAGE_TAG-cuda.
# Prints the build time and size of each image.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

IMAGE_TAG="${IMAGE_TAG:-0.1.0}"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-ghcr.io/labeljob/labeljob-operator}"
WORKER_IMAGE="${WORKER_IMAGE:-ghcr.io/labeljob/labeljob-worker}"
BASE_IMAGES="${BASE_IMAGES:-local}"
CUDA_IMAGE="${CUDA_IMAGE:-nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04}"

log() { echo "images: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/podman-env.sh
source "$ROOT/scripts/podman-env.sh"

engine() {
    if [[ -n "${CONTAINER_ENGINE:-}" ]]; then
        echo "$CONTAINER_ENGINE"
    elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        echo docker
    elif command -v podman >/dev/null 2>&1; then
        echo podman
    else
        die "no OCI builder: start Docker, or install podman (scripts/install-system-deps.sh --images)"
    fi
}

# build DOCKERFILE TAG [extra build args...]
build_one() {
    local file="$1" tag="$2"
    shift 2
    local eng start
    eng="$(engine)"
    start=$SECONDS
    case "$eng" in
        docker)
            # Docker: the Dockerfile as users build it (BuildKit: cache mounts, pulls bases).
            DOCKER_BUILDKIT=1 docker build -f "$file" -t "$tag" "$@" .
            ;;
        podman)
            podman_env
            local pull=(--pull=never)
            [[ "$BASE_IMAGES" == pull ]] && pull=(--pull=missing)
            podman build --network host "${pull[@]}" -f "$file" -t "$tag" "$@" .
            ;;
        *) die "unknown CONTAINER_ENGINE '$eng' (docker or podman)" ;;
    esac
    log "built $tag from $file in $((SECONDS - start)) s"
}

image_exists() {
    local eng
    eng="$(engine)"
    case "$eng" in
        docker) docker image inspect "$1" >/dev/null 2>&1 ;;
        podman) podman_env; podman image exists "$1" ;;
    esac
}

size_of() {
    local eng
    eng="$(engine)"
    "$eng" image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'
}

bases() {
    [[ "$(engine)" == podman && "$BASE_IMAGES" == local ]] || return 0
    "$ROOT/scripts/image-bases.sh"
}

build() {
    local images=("$@")
    ((${#images[@]})) || images=(operator worker worker-cuda)
    log "builder: $(engine)"
    bases
    local built=()
    for img in "${images[@]}"; do
        case "$img" in
            operator)
                build_one docker/operator.Dockerfile "$OPERATOR_IMAGE:$IMAGE_TAG"
                built+=("$OPERATOR_IMAGE:$IMAGE_TAG")
                ;;
            worker)
                build_one docker/worker.Dockerfile "$WORKER_IMAGE:$IMAGE_TAG"
                built+=("$WORKER_IMAGE:$IMAGE_TAG")
                ;;
            worker-cuda)
                if [[ "$(engine)" == docker ]] || image_exists "$CUDA_IMAGE"; then
                    build_one docker/worker-cuda.Dockerfile "$WORKER_IMAGE:$IMAGE_TAG-cuda" \
                        --build-arg "CUDA_IMAGE=$CUDA_IMAGE"
                    built+=("$WORKER_IMAGE:$IMAGE_TAG-cuda")
                else
                    log "worker-cuda: base $CUDA_IMAGE is not here and cannot be made from" \
                        "Debian packages: building its builder and ort stages only"
                    build_one docker/worker-cuda.Dockerfile "labeljob-worker-cuda-builder:$IMAGE_TAG" \
                        --target builder
                    build_one docker/worker-cuda.Dockerfile "labeljob-worker-cuda-ort:$IMAGE_TAG" \
                        --target ort
                    built+=("labeljob-worker-cuda-builder:$IMAGE_TAG" "labeljob-worker-cuda-ort:$IMAGE_TAG")
                fi
                ;;
            *) die "unknown image '$img' (operator, worker, worker-cuda)" ;;
        esac
    done
    for tag in "${built[@]}"; do
        log "size $tag: $(size_of "$tag")"
    done
}

sizes() {
    local tag
    for tag in "$OPERATOR_IMAGE:$IMAGE_TAG" "$WORKER_IMAGE:$IMAGE_TAG" "$WORKER_IMAGE:$IMAGE_TAG-cuda"; do
        if image_exists "$tag"; then
            echo "$tag: $(size_of "$tag")"
        else
            echo "$tag: not built here"
        fi
    done
}

case "${1:-}" in
    engine) engine ;;
    bases) bases ;;
    sizes) sizes ;;
    build) shift; build "$@" ;;
    *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
