# syntax=docker/dockerfile:1.7
# LabelJob worker image (CPU): ghcr.io/labeljob/labeljob-worker:<tag>, entrypoint `labeljob`
# (plan | shard | merge | serve | run). ONNX Runtime comes from the PyPI `onnxruntime` wheel
# (scripts/fetch-ort.sh), the default model from models/.
#   docker build -f docker/worker.Dockerfile -t ghcr.io/labeljob/labeljob-worker:0.1.0 .

FROM rust:1.95-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libturbojpeg0-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p labeljob-worker --bin labeljob \
 && install -m 0755 target/release/labeljob /usr/local/bin/labeljob

# libonnxruntime.so from the onnxruntime wheel of the build platform (x86_64 or aarch64).
FROM python:3.11-slim-bookworm AS ort
WORKDIR /src
COPY scripts/fetch-ort.sh scripts/fetch-ort.sh
RUN scripts/fetch-ort.sh

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libturbojpeg0 libstdc++6 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=ort /src/.cache/ort/lib/ /opt/labeljob/lib/
COPY --from=builder /usr/local/bin/labeljob /usr/local/bin/labeljob
COPY models/ /opt/labeljob/models/
ENV ORT_DYLIB_PATH=/opt/labeljob/lib/libonnxruntime.so \
    LABELJOB_MODELS_DIR=/opt/labeljob/models \
    LABELJOB_CACHE_DIR=/tmp/labeljob-cache
LABEL org.opencontainers.image.title="labeljob-worker" \
      org.opencontainers.image.description="LabelJob data plane: plan, shard, merge, serve (CPU)" \
      org.opencontainers.image.source="https://github.com/labeljob/labeljob" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
WORKDIR /tmp
# `labeljob serve`: Open Inference Protocol v2 REST, /metrics.
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/labeljob"]
