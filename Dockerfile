# syntax=docker/dockerfile:1
# Tocsin's container image: `tocsin` is the entrypoint, so the command is `serve ingest`,
# `serve triage`, `serve escalation`, `serve notifier` or `up` (the default).
#
#   docker build -t tocsin:0.1.0 .
#
# The install steps are the Makefile's (`make setup`): uv, then the runtime part of the hashed
# requirements.lock (--require-hashes; the dev tools in the lock are left out), then Tocsin
# itself without dependencies. Nothing of the build stage but the virtualenv reaches the image.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1
WORKDIR /src
RUN python -m venv --without-pip /opt/tocsin \
 && pip install --no-compile uv==0.13.8
COPY requirements.lock pyproject.toml ./
# Runtime dependencies only (those pyproject.toml names), each pinned and hash-checked by the lock.
RUN uv pip install --python /opt/tocsin/bin/python --require-hashes \
      -c requirements.lock -r pyproject.toml
COPY tocsin ./tocsin
COPY services ./services
COPY schemas ./schemas
RUN uv pip install --python /opt/tocsin/bin/python --no-deps . \
 && /opt/tocsin/bin/tocsin --version

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tocsin" \
      org.opencontainers.image.description="Self-hosted alert triage and on-call paging" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Tocsin"
# A fixed numeric non-root user, so Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 tocsin \
 && useradd --system --uid 10001 --gid tocsin --home-dir /data --no-create-home tocsin \
 && mkdir /data && chown tocsin:tocsin /data
COPY --from=build /opt/tocsin /opt/tocsin
ENV PATH=/opt/tocsin/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TOCSIN_HOST=0.0.0.0 \
    TOCSIN_HEALTHCHECK_PORT=8080
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080 8081 8082 8083 8084
# No curl in a slim image: Python asks /healthz. Set TOCSIN_HEALTHCHECK_PORT to the service's
# port (8081 ingest ... 8084 notifier); compose and the Helm chart use their own checks.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['TOCSIN_HEALTHCHECK_PORT'] + '/healthz', timeout=2)"]
ENTRYPOINT ["tocsin"]
CMD ["up", "--host", "0.0.0.0", "--data-dir", "/data"]
