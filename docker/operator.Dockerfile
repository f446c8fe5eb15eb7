# syntax=docker/dockerfile:1.7
# LabelJob operator image: ghcr.io/labeljob/labeljob-operator:<tag>
#   docker build -f docker/operator.Dockerfile -t ghcr.io/labeljob/labeljob-operator:0.1.0 .
# (build context: the repository root; see .dockerignore)

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the registry and target/ between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p labeljob-operator --bin labeljob-operator \
 && install -m 0755 target/release/labeljob-operator /usr/local/bin/labeljob-operator

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/bin/labeljob-operator /usr/local/bin/labeljob-operator
LABEL org.opencontainers.image.title="labeljob-operator" \
      org.opencontainers.image.description="LabelJob Kubernetes operator" \
      org.opencontainers.image.source="https://github.com/labeljob/labeljob" \
      org.opencontainers.image.licenses="Apache-2.0"
# Non-root (the chart also sets runAsUser 65532, readOnlyRootFilesystem).
USER 65532:65532
# Admin server: /healthz, /readyz, /metrics.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/labeljob-operator"]
