# syntax=docker/dockerfile:1
# tasklane's images from one build: `--target api`, `--target worker` or `--target cli`.
# Dependencies are compiled in a layer of their own (cargo-chef), so a change to tasklane's code
# rebuilds only tasklane; the runtime images are distroless (no shell, no package manager) and
# run as an unprivileged user.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.73
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --profile dist --locked --recipe-path recipe.json
COPY . .
RUN cargo build --profile dist --locked --bin tasklane-api --bin tasklane-worker --bin tasklane \
    && mkdir -p /data

# glibc and CA certificates, nothing else; uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
# The data directory (SQLite, mail files) belongs to the unprivileged user; there is no shell
# here to chown it, so an empty directory is copied in with its owner.
COPY --from=builder --chown=65532:65532 /data /var/lib/tasklane
WORKDIR /var/lib/tasklane
ENV TASKLANE_DATA_DIR=/var/lib/tasklane

FROM runtime AS api
COPY --from=builder /src/target/dist/tasklane-api /usr/local/bin/tasklane-api
# The public API, and /metrics apart from it.
ENV TASKLANE_LISTEN=0.0.0.0:8080 TASKLANE_METRICS_LISTEN=0.0.0.0:9464
EXPOSE 8080 9464
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/tasklane-api", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/tasklane-api"]

FROM runtime AS worker
COPY --from=builder /src/target/dist/tasklane-worker /usr/local/bin/tasklane-worker
# /healthz, /readyz and /metrics.
ENV TASKLANE_WORKER_LISTEN=0.0.0.0:8081
EXPOSE 8081
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/tasklane-worker", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/tasklane-worker"]

# The operator CLI: migrations, `queues init`, `archive init`, dead letters, reports.
FROM runtime AS cli
COPY --from=builder /src/target/dist/tasklane /usr/local/bin/tasklane
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tasklane"]
