# The livewatch app (producer and detector workers) for docker-compose.yml.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY detector detector
COPY producers producers
RUN pip install --no-cache-dir . && useradd --system --uid 10001 livewatch

USER livewatch
# Prometheus metrics of a worker (docs/observability.md).
EXPOSE 9464
ENTRYPOINT ["livewatch"]
CMD ["--help"]
