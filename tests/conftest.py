"""Fixtures every test package may use: the loopback OTLP receiver, launched programs, clean logging,
fresh SDK providers swapped in as the globals (the API lets a process set its global providers once;
the helpers read the globals, so each test installs its own provider directly and restores the old one)."""

from __future__ import annotations

import pytest
import structlog
import support
from opentelemetry import trace as trace_api
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from otlp_receiver import OtlpReceiver
from support import Spans, otlp_env, run_python

from otel_trading import logs
from otel_trading.trading import metrics, tracing


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
def use_tracer_provider():
    """Call with an optional sampler; returns Spans whose provider is the global one for the test."""
    old = trace_api._TRACER_PROVIDER
    metrics._warned.clear()
    tracing.ORDERS.clear()

    def install(sampler=None) -> Spans:
        spans = Spans(sampler)
        trace_api._TRACER_PROVIDER = spans.provider
        return spans

    yield install
    trace_api._TRACER_PROVIDER = old
    tracing.ORDERS.clear()


@pytest.fixture
def spans(use_tracer_provider) -> Spans:
    return use_tracer_provider()


@pytest.fixture
def metric_reader():
    """An InMemoryMetricReader on a fresh global MeterProvider."""
    old = metrics_internal._METER_PROVIDER
    metrics.forget_deferred()  # records another test deferred belong to its provider, not this one
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics_internal._METER_PROVIDER = provider
    yield reader
    metrics_internal._METER_PROVIDER = old
    provider.shutdown()
