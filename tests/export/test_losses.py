"""Drops and failed exports are counted exactly in ``otel_trading.export.dropped`` / ``.failed``,
with the SDK's per-span self-metrics off (the default), and read through an observable counter."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from otel_trading.export import ReportingBatchSpanProcessor, losses


class Collector:
    """Answers every batch with ``result`` (or raises ``error``) once released; counts what it saw."""

    def __init__(self, result=SpanExportResult.SUCCESS, error: Exception | None = None) -> None:
        self.release = threading.Event()
        self.result, self.error = result, error
        self.seen = 0

    def export(self, batch):
        self.release.wait(30)
        self.seen += len(batch)
        if self.error is not None:
            raise self.error
        return self.result

    def shutdown(self):
        self.release.set()

    def force_flush(self, timeout_millis=None):
        return True


def _counts(reader: InMemoryMetricReader, name: str) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        out[point.attributes["signal"], point.attributes["error.type"]] = point.value
    return out


@pytest.fixture
def metrics(monkeypatch):
    monkeypatch.delenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", raising=False)
    monkeypatch.setattr(losses, "LOSSES", losses.Losses())  # counts are per process; start this test at zero
    monkeypatch.setattr("otel_trading.export.processors.LOSSES", losses.LOSSES)
    monkeypatch.setattr("otel_trading.export.spool.LOSSES", losses.LOSSES)
    reader = InMemoryMetricReader()
    losses.observe(MeterProvider(metric_readers=[reader]))
    return reader


def _spans(collector, n: int, queue: int = 200):
    processor = ReportingBatchSpanProcessor(collector, max_queue_size=queue, max_export_batch_size=50)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for i in range(n):
        with tracer.start_as_current_span("tick", attributes={"i": i}):
            pass
    collector.release.set()
    provider.shutdown()
    return provider, processor


def test_queue_full_drops_are_counted_exactly_without_sdk_self_metrics(metrics):
    _, processor = _spans(Collector(), 3000)
    assert processor.dropped > 0
    assert _counts(metrics, "otel_trading.export.dropped") == {("spans", "queue_full"): processor.dropped, ("logs", "queue_full"): 0}
    assert _counts(metrics, "otel_trading.export.failed") == {("spans", "export_failed"): 0, ("logs", "export_failed"): 0}


def test_items_of_failed_batches_are_counted_with_the_error(metrics):
    refused = Collector(SpanExportResult.FAILURE)
    _spans(refused, 120, queue=1000)
    raising = Collector(error=ConnectionError("collector gone"))
    _spans(raising, 80, queue=1000)
    assert (refused.seen, raising.seen) == (120, 80)
    assert _counts(metrics, "otel_trading.export.failed") == {
        ("spans", "export_failed"): 120, ("spans", "ConnectionError"): 80, ("logs", "export_failed"): 0,
    }


def test_nothing_lost_is_a_zero_series_not_a_gap(metrics):
    _spans(Collector(), 100, queue=1000)
    assert _counts(metrics, "otel_trading.export.dropped") == {("spans", "queue_full"): 0, ("logs", "queue_full"): 0}
    assert _counts(metrics, "otel_trading.export.failed") == {("spans", "export_failed"): 0, ("logs", "export_failed"): 0}


def test_the_spool_counts_what_it_evicts_and_what_the_collector_rejects(metrics, tmp_path):
    from otel_trading.export.spool import Outcome, Spool, SpoolingExporter

    def exporter(answer):
        spool = Spool(tmp_path / f"{answer.value}.sqlite", max_bytes=5_000)
        return SpoolingExporter("traces", "span", lambda batch: [(b"x" * 1000, len(batch))], lambda body, items: (answer, "why"),
                                spool, lambda: None, "success", "failure")

    down = exporter(Outcome.RETRY)  # collector down: batches go to a spool too small for them all
    for _ in range(20):
        down.export([1, 2])
    down.shutdown(1000)
    refusing = exporter(Outcome.REJECTED)  # collector refusing every request for good
    refusing.export([1, 2, 3])
    refusing.shutdown(1000)
    assert down.tally.evicted > 0 and refusing.tally.rejected == 3
    assert _counts(metrics, "otel_trading.export.dropped")[("spans", "spool_full")] == down.tally.evicted
    assert _counts(metrics, "otel_trading.export.failed")[("spans", "rejected")] == 3
