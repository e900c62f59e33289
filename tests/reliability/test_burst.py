"""Bursts above the queue sizes: bounded memory, every drop counted (metric + warning), no deadlock.

In-process with the distro's export processors and a collector that stalls,
so the queue really fills; no timing thresholds.
"""

from __future__ import annotations

import logging
import threading

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from support import accounted, counts_by_error_type

from otel_trading.export import (
    ReportingBatchLogRecordProcessor,
    ReportingBatchSpanProcessor,
)


class StalledCollector:
    """Accepts batches only when released; counts what it got."""

    def __init__(self, result) -> None:
        self.release = threading.Event()
        self.received = 0
        self.calls = 0
        self.result = result
        self._lock = threading.Lock()

    def export(self, batch):
        self.release.wait(30)
        with self._lock:
            self.calls += 1
            self.received += len(batch)
        return self.result

    def shutdown(self, *args, **kwargs):
        self.release.set()

    def force_flush(self, timeout_millis=None):
        return True


def test_span_burst_many_threads_bounded_queue_counted_drops_no_deadlock(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    collector = StalledCollector(SpanExportResult.SUCCESS)
    processor = ReportingBatchSpanProcessor(
        collector, max_queue_size=500, max_export_batch_size=100, meter_provider=MeterProvider(metric_readers=[reader])
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("burst")
    queue_high_water = []

    def burst():
        for i in range(2000):
            with tracer.start_as_current_span("tick", attributes={"i": i, "payload": "x" * 100}):
                pass
            if i % 250 == 0:
                queue_high_water.append(len(processor._batch_processor._queue))

    with caplog.at_level(logging.WARNING):
        threads = [threading.Thread(target=burst) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)  # producers never block on a stalled exporter
        assert max(queue_high_water) <= 500  # memory bounded by the queue size
        collector.release.set()
        assert provider.force_flush()
        provider.shutdown()

    total = 8 * 2000
    assert accounted(collector.received, processor.dropped, total)  # every span either delivered or counted
    assert processor.dropped >= total - 500 - 100  # the queue + the batch in flight
    counts = counts_by_error_type(reader, "otel.sdk.processor.span.processed")
    assert counts.get("queue_full") == processor.dropped  # the SDK metric agrees with our count
    warnings = [r.getMessage() for r in caplog.records if r.name == "otel_trading.export"]
    reported = sum(int(m.split("dropped ")[1].split()[0]) for m in warnings)
    assert reported == processor.dropped  # the warnings add up to every drop, in few lines
    assert 1 <= len(warnings) <= 3


def test_log_burst_above_queue_is_bounded_and_counted(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    collector = StalledCollector(LogRecordExportResult.SUCCESS)
    processor = ReportingBatchLogRecordProcessor(
        collector, max_queue_size=300, max_export_batch_size=50, meter_provider=MeterProvider(metric_readers=[reader])
    )
    provider = LoggerProvider()
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("burst")
    with caplog.at_level(logging.WARNING):
        for i in range(5000):
            logger.emit(LogRecord(body=f"line {i}"))
            assert len(processor._batch_processor._queue) <= 300
        collector.release.set()
        provider.shutdown()
    assert accounted(collector.received, processor.dropped, 5000)
    assert counts_by_error_type(reader, "otel.sdk.processor.log.processed").get("queue_full") == processor.dropped > 0
    messages = [r.getMessage() for r in caplog.records if r.name == "otel_trading.export"]
    assert messages and "log records" in messages[0] and "OTEL_BLRP_MAX_QUEUE_SIZE=300" in messages[0]


def test_failing_collector_batches_are_dropped_not_retried_forever(monkeypatch):
    """A collector that rejects everything: the queue keeps draining (exports fail), nothing piles up."""
    collector = StalledCollector(SpanExportResult.FAILURE)
    collector.release.set()
    processor = ReportingBatchSpanProcessor(collector, max_queue_size=1000, max_export_batch_size=100, schedule_delay_millis=10)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for _ in range(3000):
        with tracer.start_as_current_span("s"):
            pass
    provider.force_flush()
    assert len(processor._batch_processor._queue) == 0
    assert accounted(collector.received, processor.dropped, 3000)
    provider.shutdown()


def test_drop_count_restarts_in_a_forked_child():
    import os

    collector = StalledCollector(SpanExportResult.SUCCESS)
    processor = ReportingBatchSpanProcessor(collector, max_queue_size=10, max_export_batch_size=5, report_interval=3600)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    for _ in range(50):
        with provider.get_tracer("t").start_as_current_span("s"):
            pass
    assert processor.dropped > 0
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: its own count, and its lock is usable
        try:
            processor.drops.drop_items(0)
            os.write(write, str(processor.dropped).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 100) == b"0"
    collector.release.set()
    provider.shutdown()
