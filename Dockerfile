# syntax=docker/dockerfile:1
# The images of the sharder, the webhosting-operator and loadgen, from one build:
#
#   docker build --target sharder -t controller-sharding/sharder:dev .
#   docker build --target webhosting-operator -t controller-sharding/webhosting-operator:dev .
#   docker build --target loadgen -t controller-sharding/loadgen:dev .
#
# `make images` builds all three. The builder stage compiles the three binaries at once, so
# the second and third targets reuse its layer instead of compiling again.

# bookworm's glibc is the one of the distroless runtime below (Debian 12).
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# The registry and target caches survive between builds; target/ is a cache mount, so the
# binaries are copied out of it within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p sharder -p webhosting-operator -p loadgen \
    && mkdir -p /out \
    && cp target/release/sharder target/release/webhosting-operator target/release/loadgen /out/

# distroless/cc: glibc, libgcc and CA certificates, no shell; `nonroot` runs as uid 65532.
FROM ${RUNTIME_IMAGE} AS sharder
COPY --from=builder /out/sharder /usr/local/bin/sharder
USER 65532:65532
EXPOSE 8080 8081 9443
ENTRYPOINT ["/usr/local/bin/sharder"]

FROM ${RUNTIME_IMAGE} AS webhosting-operator
COPY --from=builder /out/webhosting-operator /usr/local/bin/webhosting-operator
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/webhosting-operator"]

# loadgen with the shipped scenarios, for running an experiment as a Job in the cluster.
FROM ${RUNTIME_IMAGE} AS loadgen
COPY --from=builder /out/loadgen /usr/local/bin/loadgen
COPY experiments/ /experiments/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/loadgen"]
