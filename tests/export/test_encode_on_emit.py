"""Log records encoded as they are emitted: the export queue holds their bytes when the exporter encodes with ours."""

from __future__ import annotations

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from otel_trading.export import ReportingBatchLogRecordProcessor
from otel_trading.export.wire import EncodedLog, LogEncoder
from otel_trading.logs.otlp import OtlpEmitter
from otel_trading.redaction import RedactingLogRecordProcessor


class _Capture:
    """An exporter that encodes each batch with otel-trading's encoder, as the OTLP ones and the spool do."""

    takes_encoded_logs = True

    def __init__(self) -> None:
        self.encoder = LogEncoder()
        self.requests: list[bytes] = []
        self.items: list = []

    def export(self, batch):
        self.items += batch
        self.requests.append(self.encoder.encode(batch))
        return LogRecordExportResult.SUCCESS

    def shutdown(self, *args, **kwargs) -> None:
        pass


class _Plain(_Capture):
    takes_encoded_logs = False


def _provider(exporter, *extra) -> tuple[LoggerProvider, ReportingBatchLogRecordProcessor]:
    provider = LoggerProvider(resource=Resource.create({"service.name": "encode-on-emit"}))
    for processor in extra:
        provider.add_log_record_processor(processor)
    batch = ReportingBatchLogRecordProcessor(exporter, max_export_batch_size=4096, max_queue_size=4096, schedule_delay_millis=60_000)
    provider.add_log_record_processor(batch)
    return provider, batch


_CONTEXT = set_span_in_context(NonRecordingSpan(SpanContext(0xABC, 0xDEF, False, TraceFlags(1))), Context())


def _emit_sdk(provider: LoggerProvider, n: int) -> None:
    for name in ("bot", "risk"):
        logger = provider.get_logger(name, "1.0")
        for i in range(n):
            logger.emit(
                LogRecord(timestamp=1_000 + i, observed_timestamp=2_000 + i, context=_CONTEXT, severity_text="WARN", severity_number=SeverityNumber.WARN,
                          body={"event": "order sent", "i": i}, attributes={"trading.order.id": f"o-{i}", "trading.qty": i, "trading.price": 1.5})
            )


def _emit_ours(provider: LoggerProvider, n: int) -> None:
    emitter = OtlpEmitter(provider)
    for i in range(n):
        emitter.emit("bot", "warning", f"order sent {i}", {"trading.order.id": f"o-{i}", "qty": i}, _CONTEXT, 1_000 + i)
        emitter.emit("risk", "info", "checked", {"ok": True}, None, 5_000 + i, exc=("ValueError", "bad", "Traceback ..."))


def test_sdk_records_encoded_on_emit_reach_the_collector_as_the_stock_encoders_bytes():
    exporter, seen = _Capture(), InMemoryLogRecordExporter()
    provider, batch = _provider(exporter, SimpleLogRecordProcessor(seen))
    _emit_sdk(provider, 100)
    provider.force_flush()
    assert len(exporter.items) == 200
    assert all(type(item) is EncodedLog for item in exporter.items)  # the queue held bytes, not records
    stock = encode_logs([ReadableLogRecord(r.log_record, r.resource, r.instrumentation_scope) for r in seen.get_finished_logs()])
    assert b"".join(exporter.requests) == stock.SerializeToString()
    assert batch.dropped == 0
    provider.shutdown()


def test_otel_tradings_own_lines_skip_the_sdk_record_and_send_the_same_bytes():
    """structlog / stdlib lines (already redacted) are encoded from their fields when the batch processor is the
    only processor acting on them (the default redacting processor passes them): the same request bytes as the
    record path, with its trace context, severity, exception attributes."""
    encoded, plain = _Capture(), _Plain()
    for exporter in (encoded, plain):
        provider, batch = _provider(exporter, RedactingLogRecordProcessor())
        _emit_ours(provider, 50)
        provider.force_flush()
        assert batch.dropped == 0
        provider.shutdown()
    assert all(type(item) is EncodedLog for item in encoded.items) and len(encoded.items) == 100
    assert not any(type(item) is EncodedLog for item in plain.items)
    assert b"".join(encoded.requests) == b"".join(plain.requests)
    assert b"order sent 7" in encoded.requests[0] and b"exception.stacktrace" in encoded.requests[0]


def test_another_processor_beside_ours_still_sees_an_sdk_record_of_each_line():
    exporter, seen = _Capture(), InMemoryLogRecordExporter()
    provider, _ = _provider(exporter, SimpleLogRecordProcessor(seen))
    _emit_ours(provider, 5)
    provider.force_flush()
    assert [r.log_record.body for r in seen.get_finished_logs()][:2] == ["order sent 0", "checked"]
    assert len(exporter.items) == 10 and all(type(item) is EncodedLog for item in exporter.items)
    provider.shutdown()
