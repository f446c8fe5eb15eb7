# syntax=docker/dockerfile:1.7
# LabelJob worker image (CPU): ghcr.io/labeljob/labeljob-worker:<tag>, entrypoint `labeljob`
# (plan | shard | merge | serve | run). ONNX Runtime comes from the PyPI `onnxruntime` wheel
# (scripts/fetch-ort.sh), the default model from models/.
#   docker build -f docker/worker.Dockerfile -t ghcr.io/labeljob/labeljob-worker:0.1.0 .
# `make images` builds it with Docker or podman (scripts/images.sh). Bases are pinned by tag;
# to pin by digest pass e.g. --build-arg DEBIAN_IMAGE=debian:bookworm-slim@sha256:<digest>.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# What the build needs beyond the Rust image (cmake + nasm for the vendored libjpeg-turbo):
# the same script, so the same list, as on a developer machine and in CI.
COPY scripts/install-system-deps.sh scripts/install-system-deps.sh
RUN apt-get update \
 && scripts/install-system-deps.sh \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,id=labeljob-cargo-registry \
    --mount=type=cache,target=/src/target,id=labeljob-target \
    cargo build --release --locked -p labeljob-worker --bin labeljob \
 && install -m 0755 target/release/labeljob /usr/local/bin/labeljob

# libonnxruntime.so from the onnxruntime wheel of the build platform (x86_64 or aarch64).
FROM ${PYTHON_IMAGE} AS ort
WORKDIR /src
COPY scripts/fetch-ort.sh scripts/fetch-ort.sh
RUN scripts/fetch-ort.sh >/dev/null \
 && rm -rf .cache/wheels

FROM ${DEBIAN_IMAGE}
# libstdc++6 for ONNX Runtime (already in -slim); CA roots for HTTPS inputs and outputs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=ort /src/.cache/ort/lib/ /opt/labeljob/lib/
COPY --from=builder /usr/local/bin/labeljob /usr/local/bin/labeljob
COPY models/ /opt/labeljob/models/
ENV ORT_DYLIB_PATH=/opt/labeljob/lib/libonnxruntime.so \
    LABELJOB_MODELS_DIR=/opt/labeljob/models \
    LABELJOB_CACHE_DIR=/tmp/labeljob-cache \
    HOME=/tmp
LABEL org.opencontainers.image.title="labeljob-worker" \
      org.opencontainers.image.description="LabelJob data plane: plan, shard, merge, serve (CPU)" \
      org.opencontainers.image.source="https://github.com/labeljob/labeljob" \
      org.opencontainers.image.licenses="Apache-2.0"
# Non-root; the operator's pods also run with a read-only root and an emptyDir on /tmp.
USER 65532:65532
WORKDIR /tmp
# `labeljob serve`: Open Inference Protocol v2 REST, /metrics.
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/labeljob"]
