# syntax=docker/dockerfile:1
# Portico's two images, as the release workflow (.github/workflows/release.yml) builds them:
#
#   docker buildx build --target portico-controller --build-arg VERSION=0.1.0 -t portico-controller:0.1.0 .
#   docker buildx build --target portico-agent      --build-arg VERSION=0.1.0 -t portico-agent:0.1.0 .
#
# Multi-arch (--platform linux/amd64,linux/arm64): the build stage runs on the build machine's
# architecture and cross-compiles, which is many times faster than compiling under emulation.
# scripts/images assembles the same two images (entrypoint, user, labels, Debian packages)
# without a container engine or a registry; tests/tests/images.rs checks that they agree.

ARG RUST_VERSION=1.94.1

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS build
ARG TARGETARCH
ARG BUILDARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# A C cross toolchain only when the target differs: ring compiles C and assembly, and the final
# link needs the target's libc.
# hadolint ignore=DL3008
RUN case "${TARGETARCH}" in \
      amd64) echo x86_64-unknown-linux-gnu > /rust-target ;; \
      arm64) echo aarch64-unknown-linux-gnu > /rust-target ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH} (amd64, arm64)" >&2; exit 1 ;; \
    esac \
 && if [ "${TARGETARCH}" != "${BUILDARCH}" ]; then \
      gnu="$(sed 's/-unknown//' /rust-target)"; \
      apt-get update \
      && apt-get install -y --no-install-recommends "gcc-${gnu//_/-}" "libc6-dev-${TARGETARCH}-cross" \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && rustup target add "$(cat /rust-target)"
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    rust_target="$(cat /rust-target)" \
 && cc="${rust_target/-unknown/}-gcc" \
 && env_target="${rust_target//-/_}" \
 && export "CARGO_TARGET_${env_target^^}_LINKER=${cc}" "CC_${env_target}=${cc}" \
 && cargo build --release --locked --target "${rust_target}" -p portico-controller -p portico-agent \
 && mkdir -p /out \
 && cp "target/${rust_target}/release/portico-controller" "target/${rust_target}/release/portico-agent" /out/

# The controller needs glibc, libgcc and CA certificates, and no shell: distroless's Debian 12
# image with its nonroot user (65532, as the Deployment's runAsUser).
FROM gcr.io/distroless/cc-debian12:nonroot AS portico-controller
ARG VERSION
ARG REVISION=unknown
LABEL org.opencontainers.image.title="portico-controller" \
      org.opencontainers.image.description="Gives Services of type LoadBalancer an external address and keeps their load balancer in step." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/portico-dev/portico" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/portico-controller /usr/local/bin/portico-controller
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/portico-controller"]

# The agent runs what it programs the node with: iptables (iptables-nft by default,
# iptables-legacy beside it), nftables and conntrack. It runs as root with the capabilities the
# DaemonSet grants (NET_ADMIN, NET_RAW).
FROM debian:bookworm-slim AS portico-agent
ARG VERSION
ARG REVISION=unknown
LABEL org.opencontainers.image.title="portico-agent" \
      org.opencontainers.image.description="Carries NodePort and LoadBalancer traffic to pods on every node, answers health checks, announces VIPs." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/portico-dev/portico" \
      org.opencontainers.image.licenses="Apache-2.0"
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables conntrack \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/portico-agent /usr/local/bin/portico-agent
ENTRYPOINT ["/usr/local/bin/portico-agent"]
