"""The local files are OTLP/JSON lines: what the Collector's ``file`` exporter writes and its ``otlpjsonfile`` receiver reads."""

from __future__ import annotations

import base64
import re

import orjson
from google.protobuf.json_format import ParseDict
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind

from otel_trading.export import localfiles
from otel_trading.export.wire import LogEncoder, SpanEncoder

HEX_IDS = {"traceId": 32, "spanId": 16, "parentSpanId": 16}


def _lines(folder, signal: str) -> list[dict]:
    return [orjson.loads(line) for path in sorted(folder.glob(f"{signal}.*.jsonl")) for line in path.read_bytes().splitlines()]


def _as_protobuf_json(node):
    """OTLP/JSON -> protobuf's own JSON mapping (ids base64), to parse with the generated classes."""
    if isinstance(node, dict):
        return {k: base64.b64encode(bytes.fromhex(v)).decode() if k in HEX_IDS and v else _as_protobuf_json(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_as_protobuf_json(v) for v in node]
    return node


def _check_otlp_json(node) -> None:
    """The OTLP/JSON rules: hex ids of the right length, lowerCamelCase keys, enums as integers."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in HEX_IDS and value:
                assert re.fullmatch(f"[0-9a-f]{{{HEX_IDS[key]}}}", value), (key, value)
            if key in ("kind", "severityNumber", "aggregationTemporality", "code"):
                assert isinstance(value, int), (key, value)
            if key not in ("key",) and not isinstance(value, (dict, list)):
                assert "_" not in key, key
            _check_otlp_json(value)
    elif isinstance(node, list):
        for value in node:
            _check_otlp_json(value)


def test_span_lines_are_the_export_request_in_otlp_json(tmp_path):
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("order.submit", kind=SpanKind.CLIENT, attributes={"trading.order.id": "O-1", "qty": 10, "px": 1.5, "tags": ["a", "b"]}) as order:
        with tracer.start_as_current_span("risk.pre_trade"):
            pass
    with tracer.start_as_current_span("fill", links=[Link(order.get_span_context())]):
        pass
    exporter = localfiles.LocalSpanExporter(tmp_path)
    exporter.export(memory.get_finished_spans())
    (line,) = _lines(tmp_path, "spans")
    _check_otlp_json(line)
    assert ParseDict(_as_protobuf_json(line), ExportTraceServiceRequest()) == ExportTraceServiceRequest.FromString(SpanEncoder().encode(memory.get_finished_spans()))
    spans = {s["name"]: s for s in localfiles.read_spans(tmp_path)}  # and back, for the viewer
    assert spans["order.submit"]["kind"] == "CLIENT" and spans["order.submit"]["attributes"] == {"trading.order.id": "O-1", "qty": 10, "px": 1.5, "tags": ["a", "b"]}
    assert spans["risk.pre_trade"]["parent_span_id"] == spans["order.submit"]["span_id"]
    assert spans["fill"]["links"][0]["span_id"] == spans["order.submit"]["span_id"]


def test_log_and_metric_lines_are_otlp_json(tmp_path):
    logs = LoggerProvider()
    memory = InMemoryLogRecordExporter()
    logs.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logs.get_logger("t").emit(body="order acked", severity_text="INFO", attributes={"trading.order.id": "O-1"})
    records = memory.get_finished_logs()
    localfiles.LocalLogExporter(tmp_path).export(records)
    (line,) = _lines(tmp_path, "logs")
    _check_otlp_json(line)
    assert ParseDict(_as_protobuf_json(line), ExportLogsServiceRequest()) == ExportLogsServiceRequest.FromString(LogEncoder().encode(records))

    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    meters.get_meter("t").create_counter("trading.orders").add(3, {"trading.order.status": "acked"})
    meters.get_meter("t").create_histogram("lat", unit="s").record(0.002)
    data = reader.get_metrics_data()
    localfiles.LocalMetricExporter(tmp_path).export(data)
    (line,) = _lines(tmp_path, "metrics")
    _check_otlp_json(line)
    assert ParseDict(_as_protobuf_json(line), ExportMetricsServiceRequest()) == encode_metrics(data)
    points = {p["name"]: p for p in localfiles.read_metrics(tmp_path)}
    assert points["trading.orders"]["value"] == 3 and points["lat"]["count"] == 1
