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

# python:3.11-slim has no Rust toolchain: the optional native fast path (native/, ingest._native) is not
# built here and the worker runs the pure-Python chain (same documents, slower). To build it, install cargo
# (rustup, 1.88+) in this stage before `pip install .`; setuptools-rust then compiles it (about 40 s).
RUN pip install --no-cache-dir . \
    && rm -rf /app/build /app/*.egg-info \
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
