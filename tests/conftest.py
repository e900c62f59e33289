"""Fixtures every test package may use: the loopback OTLP receiver, launched programs, clean logging,
an in-memory metric reader on a fresh global MeterProvider."""

from __future__ import annotations

import pytest
import structlog
import support
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from otlp_receiver import OtlpReceiver
from support import otlp_env, run_python

from otel_trading import logs


@pytest.fixture(autouse=True, scope="session")
def _audit_trail_outside_the_checkout(tmp_path_factory):
    support.AUDIT_DIR = tmp_path_factory.mktemp("audit")


@pytest.fixture
def otlp():
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def run_instrumented(otlp):
    """Run a program under ``opentelemetry-instrument`` exporting to the ``otlp`` receiver."""

    def run(code: str, protocol: str = "grpc", instrumented: bool = True, args=(), timeout: float = 60, **env: str):
        return run_python(code, otlp_env(otlp, protocol, **env), instrumented=instrumented, args=args, timeout=timeout)

    return run


@pytest.fixture
def clean_logging():
    """Start from structlog's defaults and leave no logging installed (``pytestmark = usefixtures(...)``)."""
    structlog.reset_defaults()
    yield
    logs.uninstall()
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def metric_reader():
    """An InMemoryMetricReader on a fresh global MeterProvider."""
    old = metrics_internal._METER_PROVIDER
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics_internal._METER_PROVIDER = provider
    yield reader
    metrics_internal._METER_PROVIDER = old
    provider.shutdown()
