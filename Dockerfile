# Demo trading bot image for the bundled stack (docker compose builds it).
# The same pattern works for your own bot: install otel-trading next to it and start
# it under `opentelemetry-instrument` with OTEL_EXPORTER_OTLP_ENDPOINT pointing at the
# collector.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY otel_trading ./otel_trading
RUN pip install ".[system]" \
 && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin bot

USER 10001
# docker-compose.yml sets the OTEL_* environment and the demo arguments.
CMD ["opentelemetry-instrument", "python", "-m", "otel_trading.demo"]
