# logwarden worker image: `docker build -t logwarden:local .` (docker-compose.yml builds it too).
# The entrypoint is the CLI, so `docker run logwarden:local setup|run|...` runs `logwarden <command>`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# the repository (filtered by .dockerignore): the packages plus the data that sits beside them
# (rules/, dashboards/, deploy/), so relative paths behave as in a checkout
COPY . /app

# The native fast path of api_access (native/, the extension ingest._native) needs Rust 1.88+ to build:
# rustup's minimal toolchain and a C linker are installed for the build only and removed in the same layer
# (the image stays slim). The import check (run from /, not the source tree) fails the build if the
# extension was skipped: setuptools-rust treats it as optional. Not built here yet: no Docker engine.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl gcc libc6-dev \
    && curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
       | sh -s -- -y --profile minimal --default-toolchain 1.95.0 \
    && PATH="/root/.cargo/bin:$PATH" pip install --no-cache-dir . \
    && (cd / && python -c "import ingest._native") \
    && rm -rf /root/.cargo /root/.rustup /app/native/target /app/build /app/*.egg-info \
    && apt-get purge -y --auto-remove curl gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 logwarden \
    && useradd --system --uid 10001 --gid logwarden --create-home --home-dir /home/logwarden \
       --shell /usr/sbin/nologin logwarden \
    && mkdir -p /app/.logwarden \
    && chown logwarden:logwarden /app/.logwarden

# /app/.logwarden holds the worker's durable state (alert outbox); docker-compose.yml mounts a named
# volume there (no VOLUME here: one-shot commands such as `setup` would leave anonymous volumes behind)

USER logwarden:logwarden

# Prometheus metrics (LOGWARDEN_METRICS_PORT)
EXPOSE 9108

ENTRYPOINT ["logwarden"]
CMD ["run"]
