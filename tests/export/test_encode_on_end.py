"""Spans encoded as they end: the export queue holds their bytes when the exporter encodes with ours."""

from __future__ import annotations

import logging
import os
import threading

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from otel_trading.export import ReportingBatchSpanProcessor, SpanEncoder
from otel_trading.export.wire import EncodedSpan


class _Capture:
    """An exporter that encodes each batch with otel-trading's encoder, as the OTLP ones and the spool do."""

    takes_encoded_spans = True

    def __init__(self) -> None:
        self.encoder = SpanEncoder()
        self.requests: list[bytes] = []
        self.items: list = []

    def export(self, batch):
        self.items += batch
        self.requests.append(self.encoder.encode(batch))
        return SpanExportResult.SUCCESS

    def shutdown(self, *args, **kwargs) -> None:
        pass


class _Plain(_Capture):
    takes_encoded_spans = False


def _setup(exporter):
    seen = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "encode-on-end"}))
    provider.add_span_processor(SimpleSpanProcessor(seen))
    processor = ReportingBatchSpanProcessor(exporter, max_export_batch_size=4096, max_queue_size=4096, schedule_delay_millis=60_000)
    provider.add_span_processor(processor)
    return provider, processor, seen


def _trade(provider, n: int) -> None:
    orders, risk = provider.get_tracer("bot", "1.0"), provider.get_tracer("risk")
    for i in range(n):
        with orders.start_as_current_span("order.submit", attributes={"trading.order.id": f"o-{i}", "trading.qty": i, "trading.price": 1.5}) as parent:
            parent.add_event("sent", {"venue": "XNAS"})
            with risk.start_as_current_span("risk.check", kind=SpanKind.CLIENT, links=[Link(parent.get_span_context(), {"why": "x"})]) as child:
                if i % 3 == 0:
                    child.set_status(Status(StatusCode.ERROR, "limit"))


def test_spans_encoded_at_end_reach_the_collector_as_the_stock_encoders_bytes():
    exporter = _Capture()
    provider, processor, seen = _setup(exporter)
    _trade(provider, 200)
    provider.force_flush()
    assert len(exporter.items) == 400
    assert all(type(item) is EncodedSpan for item in exporter.items)  # the queue held bytes, not span objects
    assert b"".join(exporter.requests) == encode_spans(seen.get_finished_spans()).SerializeToString()
    assert processor.dropped == 0
    provider.shutdown()


def test_an_exporter_that_does_not_take_encoded_spans_gets_the_sdk_spans():
    exporter = _Plain()
    provider, _, seen = _setup(exporter)
    _trade(provider, 10)
    provider.force_flush()
    assert len(exporter.items) == 20
    assert all(isinstance(item, ReadableSpan) for item in exporter.items)
    assert b"".join(exporter.requests) == encode_spans(seen.get_finished_spans()).SerializeToString()
    provider.shutdown()


def test_a_span_that_cannot_be_encoded_is_skipped_with_a_warning_and_the_rest_delivered(caplog):
    exporter = _Capture()
    provider, _, _ = _setup(exporter)
    tracer = provider.get_tracer("bot")
    with tracer.start_as_current_span("before"):
        pass
    with tracer.start_as_current_span(42):  # type: ignore[arg-type]  # a name that is not text
        pass
    with tracer.start_as_current_span("after"):
        pass
    with caplog.at_level(logging.WARNING, logger="otel_trading.export.wire"):
        provider.force_flush()
    assert b"before" in exporter.requests[0] and b"after" in exporter.requests[0]
    assert "could not encode a span" in caplog.text
    provider.shutdown()


class _Slow(_Capture):
    """Takes encoded spans and blocks until released: a collector that does not keep up."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def export(self, batch):
        self.release.wait(10)
        return super().export(batch)

    def shutdown(self, *args, **kwargs) -> None:
        self.release.set()


def test_encoded_spans_beyond_the_queue_are_dropped_and_counted():
    slow = _Slow()
    provider = TracerProvider()
    processor = ReportingBatchSpanProcessor(slow, max_queue_size=100, max_export_batch_size=10, report_interval=3600)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for _ in range(1000):
        with tracer.start_as_current_span("burst"):
            pass
    assert 800 <= processor.dropped <= 900  # 100 queued, <= 10 taken by the blocked worker
    slow.release.set()
    provider.force_flush()
    assert abs(len(slow.items) + processor.dropped - 1000) <= 3  # the SDK's unlocked "queue full" check can miscount a race
    provider.shutdown()


def test_a_forked_child_queues_and_exports_its_own_encoded_spans():
    exporter = _Capture()
    provider, processor, _ = _setup(exporter)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("parent-before-fork"):
        pass
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's queued span is not its own; its new span is exported by its own worker
        try:
            with tracer.start_as_current_span("child"):
                pass
            provider.force_flush()
            os.write(write, b"".join(exporter.requests))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        sent_by_child = pipe.read()
    os.waitpid(pid, 0)
    assert b"child" in sent_by_child and b"parent-before-fork" not in sent_by_child
    provider.force_flush()
    assert b"parent-before-fork" in b"".join(exporter.requests) and b"child" not in b"".join(exporter.requests)
    provider.shutdown()
