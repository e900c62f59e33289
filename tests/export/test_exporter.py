"""The fast exporters against the loopback receiver, and the drop-reporting processors."""

from __future__ import annotations

import logging
import socket
import time

import grpc
import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from otel_trading.export import (
    FastOTLPLogExporter,
    FastOTLPSpanExporter,
    ReportingBatchLogRecordProcessor,
    ReportingBatchSpanProcessor,
)


def _provider(processor):
    provider = TracerProvider(resource=Resource.create({"service.name": "fast-export"}))
    provider.add_span_processor(processor)
    return provider


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fast_span_exporter_delivers_every_span_decodable(otlp):
    exporter = FastOTLPSpanExporter(endpoint=otlp.grpc_endpoint, insecure=True)
    processor = ReportingBatchSpanProcessor(exporter, schedule_delay_millis=50)
    provider = _provider(processor)
    tracer = provider.get_tracer("bot", "1.0")
    for i in range(1000):
        with tracer.start_as_current_span("order.submit", attributes={"trading.order.id": f"o-{i}", "trading.qty": i}):
            with tracer.start_as_current_span("risk.check"):
                pass
    provider.force_flush()
    spans = otlp.wait_for(lambda r: len(r.spans()) >= 2000 and r.spans())
    assert len(spans) == 2000
    assert processor.dropped == 0
    ids = {s.attributes["trading.order.id"] for s in spans if s.name == "order.submit"}
    assert ids == {f"o-{i}" for i in range(1000)}
    by_id = {s.span_id: s for s in spans}
    for child in (s for s in spans if s.name == "risk.check"):
        assert by_id[child.parent_span_id].name == "order.submit"
        assert by_id[child.parent_span_id].trace_id == child.trace_id
    assert spans[0].resource["service.name"] == "fast-export"
    provider.shutdown()


def test_fast_span_exporter_honours_headers_and_gzip(otlp, monkeypatch):
    seen = []

    class Capture(grpc.ServerInterceptor):
        def intercept_service(self, continuation, details):
            seen.append(dict(details.invocation_metadata))
            return continuation(details)

    server = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(2), interceptors=[Capture()])
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as pbg

    received = []

    class Svc(pbg.TraceServiceServicer):
        def Export(self, request, context):  # noqa: N802
            received.append(request)
            return pb.ExportTraceServiceResponse()

    pbg.add_TraceServiceServicer_to_server(Svc(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-api-key=secret,tenant=desk1")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
        exporter = FastOTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True)
        provider = TracerProvider()
        with provider.get_tracer("t").start_as_current_span("s") as span:
            pass
        assert exporter.export([span]) is SpanExportResult.SUCCESS
        assert seen[0]["x-api-key"] == "secret" and seen[0]["tenant"] == "desk1"
        assert exporter._compression is grpc.Compression.Gzip  # the channel compresses; the server decoded it
        assert received[0].resource_spans[0].scope_spans[0].spans[0].name == "s"
        exporter.shutdown()
    finally:
        server.stop(None)


def test_fast_log_exporter_delivers_log_records(otlp):
    provider = LoggerProvider(resource=Resource.create({"service.name": "fast-logs"}))
    processor = ReportingBatchLogRecordProcessor(FastOTLPLogExporter(endpoint=otlp.grpc_endpoint, insecure=True), schedule_delay_millis=50)
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("bot")
    for i in range(500):
        logger.emit(LogRecord(body=f"fill {i}", severity_number=SeverityNumber.INFO, attributes={"i": i}))
    provider.force_flush()
    logs = otlp.wait_for(lambda r: len(r.logs()) >= 500 and r.logs())
    assert sorted(log.attributes["i"] for log in logs) == list(range(500))
    assert logs[0].body.startswith("fill") and logs[0].resource["service.name"] == "fast-logs"
    assert processor.dropped == 0
    provider.shutdown()


def test_collector_down_export_fails_within_the_timeout_and_does_not_raise():
    exporter = FastOTLPSpanExporter(endpoint=f"http://127.0.0.1:{_free_port()}", insecure=True, timeout=1)
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("s") as span:
        pass
    start = time.monotonic()
    assert exporter.export([span]) is SpanExportResult.FAILURE
    assert time.monotonic() - start < 5  # retries are bounded by the 1 s timeout (+ backoff jitter)
    exporter.shutdown()
    log_exporter = FastOTLPLogExporter(endpoint=f"http://127.0.0.1:{_free_port()}", insecure=True, timeout=1)
    assert log_exporter.export([]) in (LogRecordExportResult.FAILURE, LogRecordExportResult.SUCCESS)
    log_exporter.shutdown()


class _Slow:
    """An exporter that blocks until released: a collector that does not keep up."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()
        self.exported = 0

    def export(self, batch):
        self.release.wait(10)
        self.exported += len(batch)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.release.set()

    def force_flush(self, timeout_millis=None):
        return True


def test_drops_are_counted_and_reported_with_the_count(caplog):
    slow = _Slow()
    processor = ReportingBatchSpanProcessor(slow, max_queue_size=100, max_export_batch_size=10, report_interval=3600)
    provider = _provider(processor)
    tracer = provider.get_tracer("t")
    with caplog.at_level(logging.WARNING, logger="otel_trading.export"):
        for _ in range(1000):
            with tracer.start_as_current_span("burst"):
                pass
        assert 800 <= processor.dropped <= 900  # 100 queued, <= 10 taken by the blocked worker
        first = [r.getMessage() for r in caplog.records if r.name == "otel_trading.export"]
        assert len(first) == 1 and "dropped 1 span" in first[0]  # the first drop is reported at once
        slow.release.set()
        provider.shutdown()
    messages = [r.getMessage() for r in caplog.records if r.name == "otel_trading.export"]
    assert len(messages) == 2  # then once more at shutdown with the rest, not once per span
    assert f"dropped {processor.dropped - 1} spans" in messages[1]
    assert "OTEL_BSP_MAX_QUEUE_SIZE=100" in messages[1] and f"{processor.dropped} dropped since start" in messages[1]
    assert abs(slow.exported + processor.dropped - 1000) <= 3  # the SDK's unlocked "queue full" check can miscount a race


def test_periodic_report_from_the_worker(caplog):
    slow = _Slow()
    processor = ReportingBatchSpanProcessor(slow, max_queue_size=20, max_export_batch_size=10, schedule_delay_millis=10, report_interval=0.05)
    provider = _provider(processor)
    tracer = provider.get_tracer("t")
    with caplog.at_level(logging.WARNING, logger="otel_trading.export"):
        for _ in range(200):
            with tracer.start_as_current_span("burst"):
                pass
        time.sleep(0.1)
        slow.release.set()
        deadline = time.monotonic() + 5
        while processor.drops._pending and time.monotonic() < deadline:
            time.sleep(0.02)
        assert processor.drops._pending == 0  # reported by the worker, without another drop or shutdown
        provider.shutdown()
    total = 0
    for record in caplog.records:
        if record.name == "otel_trading.export":
            total += int(record.getMessage().split("dropped ")[1].split()[0])
    assert total == processor.dropped > 0


def test_shutdown_is_bounded_when_the_exporter_hangs():
    slow = _Slow()
    processor = ReportingBatchSpanProcessor(slow, schedule_delay_millis=10, shutdown_timeout_millis=300)
    provider = _provider(processor)
    with provider.get_tracer("t").start_as_current_span("s"):
        pass
    time.sleep(0.05)  # the worker is now blocked in export
    start = time.monotonic()
    provider.shutdown()
    assert time.monotonic() - start < 3


def test_fast_http_exporters_deliver_spans_and_logs(otlp):
    from otel_trading.export import FastOTLPHTTPLogExporter, FastOTLPHTTPSpanExporter

    provider = _provider(ReportingBatchSpanProcessor(FastOTLPHTTPSpanExporter(endpoint=f"{otlp.http_endpoint}/v1/traces"), schedule_delay_millis=50))
    tracer = provider.get_tracer("bot")
    for i in range(300):
        with tracer.start_as_current_span("http-span", attributes={"i": i}):
            pass
    provider.force_flush()
    logs_provider = LoggerProvider(resource=Resource.create({"service.name": "fast-logs"}))
    logs_provider.add_log_record_processor(ReportingBatchLogRecordProcessor(FastOTLPHTTPLogExporter(endpoint=f"{otlp.http_endpoint}/v1/logs"), schedule_delay_millis=50))
    for i in range(100):
        logs_provider.get_logger("bot").emit(LogRecord(body={"event": "fill", "i": i}))
    logs_provider.force_flush()
    spans = otlp.wait_for(lambda r: r.spans() if len(r.spans()) >= 300 else None)
    assert sorted(s.attributes["i"] for s in spans) == list(range(300))
    logs = otlp.wait_for(lambda r: r.logs() if len(r.logs()) >= 100 else None)
    assert sorted(log.body["i"] for log in logs) == list(range(100))
    provider.shutdown()
    logs_provider.shutdown()


def test_faster_maps_only_the_stock_otlp_exporters():
    """Fast encoders for the OTLP exporters; with them off, the stock gRPC exporters still gated for forks."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcSpans,
    )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HttpLogs,
    )
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    from otel_trading.export import FastOTLPHTTPLogExporter, faster

    assert faster(GrpcSpans) is FastOTLPSpanExporter
    assert faster(HttpLogs) is FastOTLPHTTPLogExporter
    assert faster(ConsoleSpanExporter) is ConsoleSpanExporter
    stock = faster(GrpcSpans, enabled=False)  # the stock encoder; only its calls gated for forks
    assert issubclass(stock, GrpcSpans) and stock._translate_data is GrpcSpans._translate_data
    assert faster(HttpLogs, enabled=False) is HttpLogs


@pytest.mark.slow
def test_a_batch_too_large_for_one_request_is_split_not_lost(otlp):
    """The receiver (like the collector) refuses messages over 4 MiB: the stock exporter loses the
    whole batch; ours sends it in parts that fit."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider()
    big = "x" * 300_000
    spans = []
    for i in range(20):  # ~6 MB as one request
        with provider.get_tracer("t").start_as_current_span("big", attributes={"i": i, "blob": big}) as span:
            pass
        spans.append(span)
    stock = OTLPSpanExporter(endpoint=otlp.grpc_endpoint, insecure=True, timeout=2)
    assert stock.export(spans) is SpanExportResult.FAILURE  # RESOURCE_EXHAUSTED for the whole batch
    stock.shutdown()
    assert otlp.spans() == []
    ours = FastOTLPSpanExporter(endpoint=otlp.grpc_endpoint, insecure=True, timeout=2)
    assert ours.export(spans) is SpanExportResult.SUCCESS
    assert sorted(s.attributes["i"] for s in otlp.spans()) == list(range(20))
    assert len(otlp.requests["traces"]) >= 2
    ours.shutdown()


def test_http_batch_over_max_request_size_is_split(otlp):
    from otel_trading.export import FastOTLPHTTPSpanExporter

    provider = TracerProvider()
    spans = []
    for i in range(10):
        with provider.get_tracer("t").start_as_current_span("s", attributes={"i": i, "blob": "y" * 1000}) as span:
            pass
        spans.append(span)
    exporter = FastOTLPHTTPSpanExporter(endpoint=f"{otlp.http_endpoint}/v1/traces", max_request_size=3000)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert sorted(s.attributes["i"] for s in otlp.spans()) == list(range(10))
    lonely = FastOTLPHTTPSpanExporter(endpoint=f"{otlp.http_endpoint}/v1/traces", max_request_size=500)
    assert lonely.export(spans[:1]) is SpanExportResult.FAILURE  # one span over the limit: dropped, as the stock exporter does


def test_log_processor_queues_the_same_readable_record_as_the_sdk():
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.trace import (
        NonRecordingSpan,
        SpanContext,
        TraceFlags,
        set_span_in_context,
    )

    captured = []

    class Grab:
        def on_emit(self, record):
            captured.append(record)

        def shutdown(self):
            pass

        def force_flush(self, timeout_millis=None):
            return True

    provider = LoggerProvider(resource=Resource.create({"service.name": "same"}))
    provider.add_log_record_processor(Grab())
    context = set_span_in_context(NonRecordingSpan(SpanContext(7, 8, False, TraceFlags(1))))
    provider.get_logger("bot", "2.0").emit(LogRecord(body={"k": [1, 2]}, severity_number=SeverityNumber.WARN, attributes={"a": 1}, context=context, event_name="e"))
    original = captured[0]

    class Keep:
        def __init__(self):
            self.got = []

        def export(self, batch):
            self.got += batch

        def shutdown(self):
            pass

    stock_exporter, ours_exporter = Keep(), Keep()
    stock = BatchLogRecordProcessor(stock_exporter, schedule_delay_millis=60_000)
    ours = ReportingBatchLogRecordProcessor(ours_exporter, schedule_delay_millis=60_000)
    stock.on_emit(original)
    ours.on_emit(original)
    stock.force_flush()
    ours.force_flush()
    a, b = stock_exporter.got[0], ours_exporter.got[0]
    assert type(a) is type(b)
    assert vars(a.log_record) == vars(b.log_record)  # same values, context replaced by an empty one
    assert (a.resource, a.instrumentation_scope, a.limits) == (b.resource, b.instrumentation_scope, b.limits)
    assert b.log_record is not original.log_record and original.log_record.context is context  # the app's record untouched
    assert b.log_record.trace_id == 7 and b.log_record.span_id == 8
    stock.shutdown()
    ours.shutdown()


