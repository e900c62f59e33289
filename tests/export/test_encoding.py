"""The direct OTLP encoder produces the stock encoder's request for the same data.

Strongest form: the same bytes. Also compared after parsing, and under
hypothesis-generated attribute values (huge strings, bytes, nested, NaN, ...).
"""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from otel_trading.export import LogEncoder, SpanEncoder
from otel_trading.export.wire import any_value, varint

# The stock encoder logs a traceback for each attribute it cannot encode; keep test output readable.
logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal").setLevel(logging.CRITICAL)

WEIRD = {
    "s": "é漢字🙂",
    "empty": "",
    "long": "x" * 70_000,
    "t": True,
    "f": False,
    "zero": 0,
    "neg": -5,
    "min": -(2**63),
    "max": 2**63 - 1,
    "too_big": 2**70,
    "nan": math.nan,
    "inf": -math.inf,
    "fl": 0.0,
    "bytes": b"\x00\x01\xff",
    "strs": ("a", "b"),
    "ints": (1, 2, -3),
    "empty_seq": (),
    "mixed": ("a", None),
}


def _spans(resource_attrs=None):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource_attrs or {"service.name": "enc", "trading.desk": "d1"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _assert_same_spans(spans):
    stock = encode_spans(spans).SerializeToString()
    ours = SpanEncoder().encode(spans)
    assert ExportTraceServiceRequest.FromString(ours) == ExportTraceServiceRequest.FromString(stock)
    assert ours == stock


def test_typical_trading_spans_encode_to_the_stock_bytes():
    provider, exporter = _spans()
    tracer = provider.get_tracer("bot", "1.0")
    attrs = {"trading.span.kind": "order", "trading.symbol": "AAPL", "trading.qty": 100, "trading.price": 101.25}
    for i in range(300):
        with tracer.start_as_current_span("order.submit", attributes={**attrs, "trading.order.id": f"o-{i}"}):
            with tracer.start_as_current_span("risk.check", kind=SpanKind.CLIENT) as child:
                child.set_attribute("trading.risk.passed", i % 2 == 0)
    spans = exporter.get_finished_spans()
    assert len(spans) == 600
    _assert_same_spans(spans)


def test_every_span_field_encodes_to_the_stock_bytes():
    provider, exporter = _spans()
    plain = provider.get_tracer("plain")
    scoped = provider.get_tracer("scoped", "2.1", schema_url="https://opentelemetry.io/schemas/1.21.0", attributes={"a": 1})
    remote = SpanContext(0xABC, 0xDEF, True, TraceFlags(1), TraceState([("k", "v"), ("vendor", "x")]))
    links = [Link(remote, {"link.n": 1}), Link(SpanContext(1, 2, False))]
    with scoped.start_as_current_span(
        "", kind=SpanKind.CONSUMER, attributes=WEIRD, context=set_span_in_context(NonRecordingSpan(remote)), links=links
    ) as span:
        span.add_event("fill", {"qty": 1.5, "venue": "XNAS"})
        span.add_event("", timestamp=0)
        span.set_status(Status(StatusCode.ERROR, "rejected: no liquidity"))
        with plain.start_as_current_span("child", kind=SpanKind.PRODUCER) as child:
            child.set_status(Status(StatusCode.OK))
        with plain.start_as_current_span("server", kind=SpanKind.SERVER):
            pass
    _assert_same_spans(exporter.get_finished_spans())


def test_spans_of_several_resources_and_scopes_group_like_the_stock_encoder():
    spans = []
    for attrs in ({"service.name": "a"}, {"service.name": "b"}, {"service.name": "a"}):  # two equal resources
        provider, exporter = _spans(attrs)
        for name in ("x", "y", "x"):
            with provider.get_tracer(name).start_as_current_span(f"{name}-span"):
                pass
        spans += exporter.get_finished_spans()
    # interleave: grouping must not depend on order
    spans = spans[::2] + spans[1::2]
    _assert_same_spans(spans)


def test_dropped_counts_and_limits_encode_to_the_stock_bytes():
    from opentelemetry.sdk.trace import SpanLimits

    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=2, max_events=1, max_links=1))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ctx = SpanContext(5, 6, False)
    with provider.get_tracer("t").start_as_current_span("s", attributes={"a": 1, "b": 2, "c": 3}, links=[Link(ctx), Link(ctx)]) as s:
        s.add_event("e1")
        s.add_event("e2")
    spans = exporter.get_finished_spans()
    assert spans[0].dropped_attributes and spans[0].dropped_events and spans[0].dropped_links
    _assert_same_spans(spans)


attribute_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=300)
    | st.binary(max_size=300),
    lambda children: st.lists(children, max_size=4).map(tuple) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(min_size=1, max_size=40), attribute_values, max_size=8))
def test_any_attribute_values_encode_like_the_stock_encoder(attrs):
    from opentelemetry.sdk.trace import ReadableSpan

    # ReadableSpan directly, so values the SDK would clean away (nested, None) still reach the encoder.
    span = ReadableSpan(
        name="fuzz",
        context=SpanContext(1, 2, False),
        attributes=attrs,
        resource=Resource.create({"service.name": "fuzz"}),
        start_time=1,
        end_time=2,
    )
    stock = ExportTraceServiceRequest.FromString(encode_spans([span]).SerializeToString())
    ours = ExportTraceServiceRequest.FromString(SpanEncoder().encode([span]))
    # NaN != NaN: compare serialized forms (deterministic for the same message)
    assert ours.SerializeToString(deterministic=True) == stock.SerializeToString(deterministic=True)


def test_varint_and_values():
    assert varint(0) == b"\x00" and varint(127) == b"\x7f" and varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"
    assert any_value(None) == b""


def _logs():
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "enc"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return provider, exporter


def test_log_records_encode_to_the_stock_bytes():
    from opentelemetry._logs import LogRecord

    provider, exporter = _logs()
    logger = provider.get_logger("bot.logs", "1.0")
    tracer_provider, _ = _spans()
    with tracer_provider.get_tracer("t").start_as_current_span("parent"):
        logger.emit(LogRecord(body="order accepted", severity_number=SeverityNumber.INFO, severity_text="INFO", attributes={"trading.order.id": "o-1", "qty": 3}))
    logger.emit(LogRecord(body={"event": "fill", "px": 1.25, "nested": {"a": [1, 2]}}, severity_number=SeverityNumber.WARN, attributes=WEIRD))
    logger.emit(LogRecord(body=None, event_name="trading.order.rejected", timestamp=123, observed_timestamp=456))
    logger.emit(LogRecord(body=b"raw"))
    other = provider.get_logger("other", schema_url="https://x/1")
    other.emit(LogRecord(body=7))
    records = exporter.get_finished_logs()
    assert len(records) == 5 and records[0].log_record.trace_id
    stock = encode_logs(records).SerializeToString()
    ours = LogEncoder().encode(records)
    assert ExportLogsServiceRequest.FromString(ours) == ExportLogsServiceRequest.FromString(stock)
    assert ours == stock


def test_caches_stay_bounded_with_high_cardinality_values():
    provider, exporter = _spans()
    tracer = provider.get_tracer("t")
    encoder = SpanEncoder()
    for batch in range(3):
        for i in range(3000):
            with tracer.start_as_current_span("s", attributes={"id": f"{batch}-{i}"}):
                pass
        encoder.encode(exporter.get_finished_spans())
        exporter.clear()
    assert len(encoder._span_attrs._pairs) <= 8192


def test_long_strings_are_never_cached():
    provider, exporter = _spans()
    tracer = provider.get_tracer("t")
    for i in range(50):
        with tracer.start_as_current_span("n" * 1000 + str(i), attributes={"blob": f"{i}" + "x" * 100_000, "k" * 300: "v"}):
            pass
    spans = exporter.get_finished_spans()
    encoder = SpanEncoder()
    assert encoder.encode(spans) == encode_spans(spans).SerializeToString()
    assert not encoder._span_attrs._pairs and not encoder._span_attrs._keys.get("k" * 300)
    assert not any(len(name) > 256 for name in encoder._names)


def test_spans_without_sdk_fields_use_the_public_properties():
    """Any ReadableSpan-like object (another SDK version, a wrapper) encodes through its properties."""
    provider, exporter = _spans()
    with provider.get_tracer("t").start_as_current_span("wrapped", attributes={"a": 1, "b": "x"}) as span:
        span.add_event("e", {"k": 2})
    real = exporter.get_finished_spans()[0]

    class Wrapper:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            return getattr(self._inner, name)

    assert SpanEncoder().encode([Wrapper(real)]) == encode_spans([real]).SerializeToString()
