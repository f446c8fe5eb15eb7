# syntax=docker/dockerfile:1.7
# LabelJob worker image with ONNX Runtime's CUDA execution provider:
#   docker build -f docker/worker-cuda.Dockerfile -t ghcr.io/labeljob/labeljob-worker:0.1.0-cuda .
# Runs `labeljob serve --device cuda` on an NVIDIA node (nvidia.com/gpu resource); the worker
# binary is built with `--features cuda`. The CUDA/cuDNN major versions of CUDA_IMAGE must be
# those the onnxruntime-gpu wheel was built for (see ONNX Runtime's CUDA EP requirements).
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM rust:1.95-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libturbojpeg0-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=labeljob-target-cuda \
    cargo build --release --locked -p labeljob-worker --bin labeljob --features cuda \
 && install -m 0755 target/release/labeljob /usr/local/bin/labeljob

# libonnxruntime.so plus the CUDA provider libraries from the PyPI onnxruntime-gpu wheel.
FROM python:3.11-slim-bookworm AS ort
ARG ORT_GPU_VERSION=1.31.1
WORKDIR /wheels
RUN python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        "onnxruntime-gpu==${ORT_GPU_VERSION}" -d /wheels
RUN python - <<'PY'
import glob, os, zipfile
(wheel,) = glob.glob("/wheels/onnxruntime_gpu-*.whl")
os.makedirs("/ort", exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime"):
            with z.open(name) as src, open(os.path.join("/ort", base), "wb") as dst:
                dst.write(src.read())
            print(base)
versioned = [f for f in os.listdir("/ort") if f.startswith("libonnxruntime.so.")]
assert len(versioned) == 1, versioned
os.symlink(versioned[0], "/ort/libonnxruntime.so")
assert os.path.exists("/ort/libonnxruntime_providers_cuda.so"), os.listdir("/ort")
PY

FROM ${CUDA_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libturbojpeg \
 && rm -rf /var/lib/apt/lists/*
COPY --from=ort /ort/ /opt/labeljob/lib/
COPY --from=builder /usr/local/bin/labeljob /usr/local/bin/labeljob
COPY models/ /opt/labeljob/models/
# The CUDA provider libraries are found next to libonnxruntime.so.
ENV ORT_DYLIB_PATH=/opt/labeljob/lib/libonnxruntime.so \
    LD_LIBRARY_PATH=/opt/labeljob/lib:${LD_LIBRARY_PATH} \
    LABELJOB_MODELS_DIR=/opt/labeljob/models \
    LABELJOB_CACHE_DIR=/tmp/labeljob-cache \
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
