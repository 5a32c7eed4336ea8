# syntax=docker/dockerfile:1
# Tandem: one image, configured by environment only (TANDEM_DATABASE_URL, TANDEM_TRUSTED_ISSUERS, ...).

FROM python:3.11-slim AS build
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml constraints.txt README.md ./
COPY service ./service
COPY fhir_mappings ./fhir_mappings
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install -c constraints.txt .

FROM python:3.11-slim AS runtime
# The source in /app comes first on the path: migrations and alembic.ini are found beside it.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TANDEM_ENVIRONMENT=production \
    TANDEM_DOCS_ENABLED=false \
    PORT=8000
RUN groupadd --system --gid 10001 tandem \
    && useradd --system --uid 10001 --gid tandem --home-dir /app --no-create-home tandem
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY alembic.ini ./
COPY migrations ./migrations
COPY service ./service
COPY fhir_mappings ./fhir_mappings
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)"]
# Migrations first (idempotent), then the API; exec so uvicorn receives SIGTERM for a graceful shutdown.
CMD ["sh", "-c", "tandem db upgrade && exec uvicorn service.main:app --host 0.0.0.0 --port \"$PORT\" --proxy-headers --no-access-log"]
