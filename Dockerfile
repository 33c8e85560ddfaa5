# syntax=docker/dockerfile:1
#
# Multi-stage build of the onair binary.
#   docker build -t onair .
#   docker run --rm -p 3000:3000 -e ONAIR_DATABASE_URL=... -e ONAIR_NATS_URL=... onair
# (docker-compose.yml runs it together with nats-server and PostgreSQL.)

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# sqlx: never try to reach a database at build time (uses .sqlx/ if present).
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never
COPY . .
# Cache mounts keep the registry and target dir between builds (BuildKit);
# the binary is copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/onair /usr/local/bin/onair

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent onair
COPY --from=builder /usr/local/bin/onair /usr/local/bin/onair
ENV ONAIR_LISTEN=0.0.0.0:3000 \
    RUST_LOG=info
USER onair
EXPOSE 3000
CMD ["onair", "serve"]
