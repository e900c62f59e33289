"""Shared by the test_logs_* files: every test starts from structlog's defaults and leaves no logging installed."""

from __future__ import annotations

import pytest
import structlog

from otel_trading import logs


@pytest.fixture(autouse=True)
def clean_logging():
    structlog.reset_defaults()
    yield
    logs.uninstall()
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
