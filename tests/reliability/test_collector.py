"""Collector down, hung, or going away and coming back: the app is never blocked
or raised into, drops and failed exports are counted, delivery resumes."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from support import accounted, counts_by_error_type

from otel_trading.export import FastOTLPSpanExporter, ReportingBatchSpanProcessor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench.receiver import serve  # noqa: E402 - the bench's receiver can be restarted on a fixed port


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spans(tracer, n: int, name: str) -> None:
    for i in range(n):
        with tracer.start_as_current_span(name, attributes={"i": i}):
            pass


@pytest.mark.slow
def test_collector_going_away_and_coming_back(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    port = _free_port()
    server, _, counts = serve(port)
    exporter = FastOTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True, timeout=1.5, meter_provider=meters)
    processor = ReportingBatchSpanProcessor(exporter, schedule_delay_millis=20, meter_provider=meters)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bot")

    _spans(tracer, 300, "before")
    provider.force_flush()
    assert counts.spans == 300

    server.stop(None).wait()  # the collector goes away
    with caplog.at_level(logging.ERROR):
        _spans(tracer, 300, "during")  # the app carries on: nothing raises
        provider.force_flush()  # the export fails after bounded retries (timeout 1.5 s)
    assert counts.spans == 300
    failed = counts_by_error_type(reader, "otel.sdk.exporter.span.exported")
    assert sum(v for k, v in failed.items() if k) == 300  # the lost batch is counted as failed, by error type

    server, _, counts = serve(port)  # ... and comes back on the same address
    try:
        _spans(tracer, 300, "after")
        provider.force_flush()
        assert counts.spans == 300  # the exporter reconnected by itself
        assert counts.bad == 0
    finally:
        provider.shutdown()
        server.stop(None)


def _hanging_collector():
    """A gRPC trace receiver whose Export waits until ``release`` is set: a collector that hangs."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    release = threading.Event()
    received = []

    def export(raw: bytes, context) -> bytes:
        release.wait(60)
        request = ExportTraceServiceRequest.FromString(raw)
        received.extend(s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans)
        return b""

    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("opentelemetry.proto.collector.trace.v1.TraceService", {"Export": grpc.unary_unary_rpc_method_handler(export)}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port, release, received


def test_hung_collector_does_not_block_the_hot_path():
    server, port, release, received = _hanging_collector()
    exporter = FastOTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True, timeout=60)
    inside, finished = threading.Event(), threading.Event()
    export = exporter.export

    def watched(batch):
        inside.set()
        try:
            return export(batch)
        finally:
            finished.set()

    exporter.export = watched
    processor = ReportingBatchSpanProcessor(exporter, max_queue_size=1000, max_export_batch_size=100, schedule_delay_millis=10)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bot")
    try:
        _spans(tracer, 100, "first")
        assert inside.wait(10)
        _spans(tracer, 5000, "while-stuck")
        assert not finished.is_set()  # 5000 spans were made while the export thread waited on the collector
    finally:
        release.set()
    provider.force_flush()
    provider.shutdown()
    server.stop(None)
    assert processor.dropped >= 5000 - 1000  # the overflow was dropped and counted, not buffered
    assert accounted(len(received), processor.dropped, 5100)


def test_collector_down_for_the_whole_run_nothing_raises_and_all_is_counted(monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    exporter = FastOTLPSpanExporter(endpoint=f"http://127.0.0.1:{_free_port()}", insecure=True, timeout=0.5, meter_provider=meters)
    processor = ReportingBatchSpanProcessor(exporter, max_queue_size=2000, meter_provider=meters, shutdown_timeout_millis=2000)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bot")
    _spans(tracer, 10_000, "nowhere")
    provider.shutdown()
    processed = counts_by_error_type(reader, "otel.sdk.processor.span.processed")
    exported = counts_by_error_type(reader, "otel.sdk.exporter.span.exported")
    dropped = processed.get("queue_full", 0)
    failed = sum(v for k, v in exported.items() if k)
    unsent = len(processor._batch_processor._queue)  # left when the shutdown bound was reached
    assert dropped == processor.dropped
    assert accounted(failed + unsent, dropped, 10_000)  # every span accounted for
