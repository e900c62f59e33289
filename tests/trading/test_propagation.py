"""Propagation over dict / Kafka / Redis carriers, messaging spans, correlation and causation."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, trace
from opentelemetry.trace import SpanKind

from otel_trading.trading import attributes as A
from otel_trading.trading import propagation as P
from otel_trading.trading.tracing import order_span


def _kafka_with_bytes(headers):
    return [(k, v if isinstance(v, bytes) else v.encode()) for k, v in headers]


@pytest.mark.parametrize(
    "make, to_wire",
    [
        (dict, lambda c: c),  # HTTP headers / plain dict
        (list, _kafka_with_bytes),  # Kafka: list of (str, bytes)
        (dict, lambda c: {k.encode(): v.encode() for k, v in c.items()}),  # Redis stream fields as returned (bytes)
        (dict, lambda c: {k.title(): v for k, v in c.items()}),  # HTTP header names in another case
    ],
    ids=["dict", "kafka", "redis-bytes", "http-case"],
)
def test_inject_extract_round_trip(spans, make, to_wire):
    carrier = make()
    with P.correlation("corr-1"), order_span(order_id="o-1") as span:
        P.inject(carrier)
    if isinstance(carrier, list):
        assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in carrier)
    ctx = P.extract(to_wire(carrier))
    remote = trace.get_current_span(ctx).get_span_context()
    assert (remote.trace_id, remote.span_id) == (span.get_span_context().trace_id, span.get_span_context().span_id)
    assert remote.is_remote and remote.trace_flags.sampled
    assert baggage.get_baggage(P.CORRELATION_BAGGAGE_KEY, ctx) == "corr-1"


def test_kafka_inject_replaces_stale_headers(spans):
    carrier = [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"), ("other", b"x")]
    with order_span(order_id="o-1") as span:
        P.inject(carrier)
    assert [k for k, _ in carrier].count("traceparent") == 1
    remote = trace.get_current_span(P.extract(carrier)).get_span_context()
    assert remote.span_id == span.get_span_context().span_id


@pytest.mark.parametrize(
    "carrier",
    [
        {"traceparent": "garbage"},
        {"traceparent": b"\xff\xfe"},
        {"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"},
        [("traceparent", b"zz"), ("baggage", b"%%%")],
        [("not-a-pair",), 42],
        {},
        None,
    ],
)
def test_garbage_headers_start_a_fresh_trace(spans, carrier):
    with P.consumer_span("orders", carrier) as span:
        assert span.is_recording()
    consumed = spans.named("process orders")
    assert consumed.parent is None and consumed.links == ()


def test_unsupported_carrier_warns_not_raises(spans, caplog):
    assert P.inject("not a carrier") == "not a carrier"
    assert trace.get_current_span(P.extract(42)).get_span_context().is_valid is False
    assert "unsupported carrier type" in caplog.text


def test_unsupported_carrier_raises_in_strict_mode(spans, strict):
    with pytest.raises(TypeError, match="unsupported carrier"):
        P.inject(("a", "tuple"))


def test_producer_consumer_spans_follow_messaging_conventions(spans):
    headers: list = []
    with P.correlation("trade-42"):
        with P.producer_span("orders", headers, system="kafka", order_id="o-1") as producer:
            pass
    with P.consumer_span("orders", headers, system="kafka", trading_kind="execution") as consumer:
        assert baggage.get_baggage(P.CORRELATION_BAGGAGE_KEY) == "trade-42"
        assert P.correlation_id() == "trade-42"
    send, process = spans.named("send orders"), spans.named("process orders")
    assert send.kind == SpanKind.PRODUCER and process.kind == SpanKind.CONSUMER
    assert send.attributes["messaging.system"] == "kafka"
    assert send.attributes["messaging.destination.name"] == "orders"
    assert send.attributes["messaging.operation.type"] == "send"
    assert process.attributes["messaging.operation.type"] == "process"
    assert send.attributes[A.ORDER_ID] == "o-1"
    assert process.attributes[A.SPAN_KIND] == "execution"
    assert process.attributes[A.CORRELATION_ID] == "trade-42"
    assert process.parent.span_id == producer.get_span_context().span_id
    assert process.context.trace_id == send.context.trace_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id]
    assert process.attributes[A.EVENT_ID] == send.attributes[A.EVENT_ID] == send.attributes["messaging.message.id"]
    assert consumer.get_span_context().span_id == process.context.span_id


def test_causation_chain_through_a_pipeline(spans):
    tick: dict = {}
    with P.producer_span("ticks", tick, system="redis", event_id="e-1"):
        pass
    signal: dict = {}
    with P.consumer_span("ticks", {k.encode(): v.encode() for k, v in tick.items()}, system="redis"):
        assert P.current_event_id() == "e-1"
        with P.producer_span("signals", signal, system="redis", event_id="e-2"):
            pass
    assert P.current_event_id() is None
    assert signal[P.EVENT_ID_HEADER] == "e-2" and signal[P.CAUSATION_ID_HEADER] == "e-1"
    with P.consumer_span("signals", signal, system="redis"):
        pass
    assert spans.named("send signals").attributes[A.CAUSATION_ID] == "e-1"
    processed = spans.named("process signals").attributes
    assert processed[A.EVENT_ID] == "e-2" and processed[A.CAUSATION_ID] == "e-1"
    assert A.CAUSATION_ID not in spans.named("send ticks").attributes


def test_correlation_id_generated_and_scoped():
    with P.correlation() as cid:
        assert len(cid) == 32 and P.correlation_id() == cid
    assert P.correlation_id() is None


def test_messaging_helpers_drop_bad_keywords(spans, caplog):
    headers: dict = {}
    with P.producer_span("orders", headers, trading_kind="nope", bogus=1, order_id=None, side="buy"):
        pass
    attrs = spans.named("send orders").attributes
    assert attrs[A.SIDE] == "buy" and A.SPAN_KIND not in attrs and "bogus" not in str(dict(attrs))
    assert "'bogus'" in caplog.text and "unknown trading span kind" in caplog.text
    assert P.EVENT_ID_HEADER in headers and "traceparent" in headers
