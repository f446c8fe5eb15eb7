# syntax=docker/dockerfile:1.7
# LabelJob operator image: ghcr.io/labeljob/labeljob-operator:<tag>
#   docker build -f docker/operator.Dockerfile -t ghcr.io/labeljob/labeljob-operator:0.1.0 .
# (build context: the repository root; see .dockerignore). `make images` builds it with Docker
# or podman (scripts/images.sh).
#
# The binary is linked statically (glibc, `+crt-static`) so that the image is `FROM scratch`:
# the binary, the CA bundle, nothing else. Bases are pinned by tag; to pin by digest pass e.g.
#   --build-arg RUST_IMAGE=rust:1.95-bookworm@sha256:<digest>
# (the digest from `docker buildx imagetools inspect rust:1.95-bookworm`).
ARG RUST_IMAGE=rust:1.95-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the registry and target/ between builds (BuildKit, buildah).
RUN --mount=type=cache,target=/usr/local/cargo/registry,id=labeljob-cargo-registry \
    --mount=type=cache,target=/src/target,id=labeljob-target-static \
    triple="$(rustc -vV | sed -n 's/^host: //p')" \
 && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$triple" -p labeljob-operator --bin labeljob-operator \
 && install -m 0755 "target/$triple/release/labeljob-operator" /usr/local/bin/labeljob-operator

# Debian's CA bundle (for HTTPS object stores the progress reader talks to).
FROM ${DEBIAN_IMAGE} AS certs
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM scratch
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /usr/local/bin/labeljob-operator /usr/local/bin/labeljob-operator
LABEL org.opencontainers.image.title="labeljob-operator" \
      org.opencontainers.image.description="LabelJob Kubernetes operator" \
      org.opencontainers.image.source="https://github.com/labeljob/labeljob" \
      org.opencontainers.image.licenses="Apache-2.0"
# Non-root (the chart also sets runAsUser 65532, readOnlyRootFilesystem, and mounts /tmp).
ENV TMPDIR=/tmp
USER 65532:65532
# Admin server: /healthz, /readyz, /metrics.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/labeljob-operator"]
