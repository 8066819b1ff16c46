# syntax=docker/dockerfile:1
# The `townes` binary and the built-in features in one small image.
#
#   docker build -t townes .
#   docker run --rm -p 8080:8080 --env-file .env -v townes-data:/var/lib/townes townes serve
#
# compose.yaml runs it with Postgres and Redis (docs/OPERATIONS.md#containers).

# --- build: the host for this machine, the features for wasm32-wasip2 --------
FROM rust:1.95-slim-bookworm AS build
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
# The caches keep downloaded crates and compiled dependencies between builds;
# what leaves this stage is copied out of them into /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; \
    cargo build --release --locked -p townes; \
    # Only the shipped features (features/*), not the test components that
    # `cargo xtask build-guests` also builds.
    features=""; \
    for dir in features/*/; do features="$features -p $(basename "$dir")"; done; \
    cargo build --release --locked --target wasm32-wasip2 $features; \
    mkdir -p /out/features; \
    cp target/release/townes /out/townes; \
    for dir in features/*/; do \
        lib="$(basename "$dir" | tr - _)"; \
        cp "target/wasm32-wasip2/release/$lib.wasm" /out/features/; \
    done

# --- runtime: the binary, the features, a user without rights ----------------
FROM debian:bookworm-slim
# ca-certificates for Discord, Stripe and the licence server over TLS; curl
# for the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --uid 10001 --create-home --home-dir /var/lib/townes townes
COPY --from=build /out/townes /usr/local/bin/townes
# Install one with `townes feature install /usr/local/share/townes/features/xp.wasm`.
COPY --from=build /out/features/ /usr/local/share/townes/features/
USER townes
WORKDIR /var/lib/townes
# State (the SQLite database unless DATABASE_URL says Postgres, installed
# components, the licence lease) lives in the volume. The API listens on every
# interface: inside a container, 127.0.0.1 is unreachable from outside.
ENV TOWNES_DATA_DIR=/var/lib/townes \
    DATABASE_URL=sqlite:///var/lib/townes/townes.db \
    TOWNES_API_ADDR=0.0.0.0:8080 \
    TOWNES_LOG_FORMAT=json
VOLUME ["/var/lib/townes"]
EXPOSE 8080
# `townes serve` and `townes api` both answer /healthz (unless serve runs
# with --no-api).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["townes"]
CMD ["serve"]
