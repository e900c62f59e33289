"""Shared by the test_trading_* files: fresh SDK providers swapped in as the globals, the expected metric units.

The API lets a process set its global providers once; the helpers read the
globals, so each test installs its own provider directly and restores the old one.
"""

from __future__ import annotations

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_trading import metrics, tracing

# every trading instrument and its unit, as exported (CONTRACT.md "Metric names")
METRIC_UNITS = {
    "trading.orders": "{order}",
    "trading.order.rejections": "{order}",
    "trading.fills": "{fill}",
    "trading.order.ack.duration": "s",
    "trading.order.fill.duration": "s",
    "trading.tick_to_trade.duration": "s",
    "trading.order.slippage": "{bp}",
    "trading.pnl": "{currency}",
    "trading.positions.open": "{position}",
    "trading.market_data.ticks": "{tick}",
    "trading.pipeline.stage.processed": "{event}",
    "trading.pipeline.stage.lag": "s",
    "trading.pipeline.stage.staleness": "s",
}


class Spans:
    def __init__(self, sampler=None):
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def finished(self):
        return list(self.exporter.get_finished_spans())

    def named(self, name):
        found = [s for s in self.finished() if s.name == name]
        assert found, f"no span {name!r} in {[s.name for s in self.finished()]}"
        return found[-1]


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
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics_internal._METER_PROVIDER = provider
    yield reader
    metrics_internal._METER_PROVIDER = old
    provider.shutdown()


def exported(reader) -> dict:
    """{metric name: Metric} from one collection."""
    data = reader.get_metrics_data()
    out = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = m
    return out


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setattr(metrics.CONFIG, "strict", True)
