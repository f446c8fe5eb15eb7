# syntax=docker/dockerfile:1.7
# LabelJob worker image with ONNX Runtime's CUDA execution provider:
#   docker build -f docker/worker-cuda.Dockerfile -t ghcr.io/labeljob/labeljob-worker:0.1.0-cuda .
# Runs `labeljob serve --device cuda` on an NVIDIA node (nvidia.com/gpu resource); the worker
# binary is built with `--features cuda`. The CUDA/cuDNN major versions of CUDA_IMAGE must be
# those the onnxruntime-gpu wheel was built for (see ONNX Runtime's CUDA EP requirements).
# Bases are pinned by tag; to pin by digest pass e.g.
#   --build-arg CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04@sha256:<digest>
ARG RUST_IMAGE=rust:1.95-bookworm
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# The same build tools as the CPU image (cmake + nasm): scripts/install-system-deps.sh.
COPY scripts/install-system-deps.sh scripts/install-system-deps.sh
RUN apt-get update \
 && scripts/install-system-deps.sh \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,id=labeljob-cargo-registry \
    --mount=type=cache,target=/src/target,id=labeljob-target \
    cargo build --release --locked -p labeljob-worker --bin labeljob --features cuda \
 && install -m 0755 target/release/labeljob /usr/local/bin/labeljob

# libonnxruntime.so plus the CUDA provider libraries from the PyPI onnxruntime-gpu wheel.
FROM ${PYTHON_IMAGE} AS ort
ARG ORT_GPU_VERSION=1.31.1
WORKDIR /src
COPY scripts/fetch-ort.sh scripts/fetch-ort.sh
RUN ORT_PACKAGE=onnxruntime-gpu ORT_VERSION="${ORT_GPU_VERSION}" scripts/fetch-ort.sh >/dev/null \
 && rm -rf .cache/wheels

FROM ${CUDA_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=ort /src/.cache/ort/lib/ /opt/labeljob/lib/
COPY --from=builder /usr/local/bin/labeljob /usr/local/bin/labeljob
COPY models/ /opt/labeljob/models/
# The CUDA provider libraries are found next to libonnxruntime.so.
ENV ORT_DYLIB_PATH=/opt/labeljob/lib/libonnxruntime.so \
    LD_LIBRARY_PATH=/opt/labeljob/lib:${LD_LIBRARY_PATH} \
    LABELJOB_MODELS_DIR=/opt/labeljob/models \
    LABELJOB_CACHE_DIR=/tmp/labeljob-cache \
    HOME=/tmp \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
LABEL org.opencontainers.image.title="labeljob-worker-cuda" \
      org.opencontainers.image.description="LabelJob data plane with the ONNX Runtime CUDA execution provider" \
      org.opencontainers.image.source="https://github.com/labeljob/labeljob" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
WORKDIR /tmp
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/labeljob"]
