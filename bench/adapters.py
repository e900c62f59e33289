"""How the benchmarks reach the LOGS area's public API (kept in one place).

Both loggers go through ``otel_trading.logs.install`` exactly as the distro
calls it (correlation, redaction, JSON rendering, OTLP emission when the
LoggerProvider has a processor).
"""

from __future__ import annotations

import logging


def _install(stream, logger_provider, stdlib_output: bool):
    from opentelemetry.sdk._logs import LoggerProvider

    from otel_trading import config as settings
    from otel_trading import logs

    provider = logger_provider if logger_provider is not None else LoggerProvider()  # no processor: no OTLP work
    logs.install(settings.load(environ={}, log_format="json"), provider, stream=stream, stdlib_output=stdlib_output)
    return logs


def structlog_logger(stream, logger_provider=None):
    """A structlog logger on otel_trading's default chain writing JSON lines to ``stream``."""
    logs = _install(stream, logger_provider, stdlib_output=False)
    logger = logs.get_logger("bench")
    return logger.bind() if hasattr(logger, "bind") else logger


def stdlib_logger(name: str, stream, logger_provider=None):
    """A stdlib logger whose records go through otel_trading's bridge, rendered as JSON to ``stream``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    _install(stream, logger_provider, stdlib_output=True)
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    return logger
