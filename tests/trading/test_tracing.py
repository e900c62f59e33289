"""Tracing helpers through the real SDK (in-process exporter): kinds, attributes, errors, drops, order links."""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
from decimal import Decimal

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode
from support import exported

from otel_trading.sampling import ParentBasedTradingSampler, TradingSampler
from otel_trading.trading import attributes as A
from otel_trading.trading import tracing
from otel_trading.trading.kinds import TradingSpanKind
from otel_trading.trading.tracing import (
    execution_span,
    fill_span,
    mark_tick,
    market_data_span,
    order_link,
    order_span,
    order_traceparent,
    signal_span,
    traced,
    trading_span,
)

HELPERS = {
    TradingSpanKind.MARKET_DATA: tracing.market_data_span,
    TradingSpanKind.SIGNAL: tracing.signal_span,
    TradingSpanKind.MODEL: tracing.model_span,
    TradingSpanKind.RISK: tracing.risk_span,
    TradingSpanKind.ORDER: tracing.order_span,
    TradingSpanKind.EXECUTION: tracing.execution_span,
    TradingSpanKind.PORTFOLIO: tracing.portfolio_span,
    TradingSpanKind.BACKTEST: tracing.backtest_span,
    TradingSpanKind.RECONCILIATION: tracing.reconciliation_span,
}


@pytest.mark.parametrize("kind", list(TradingSpanKind))
def test_each_kind_helper_sets_span_kind_and_trading_kind(spans, kind):
    with HELPERS[kind](symbol="AAPL") as span:
        assert span.is_recording()
    with trading_span(kind.value, "by-name"):
        pass
    helper_span, generic = spans.named(kind.value), spans.named("by-name")
    for s in (helper_span, generic):
        assert s.kind == kind.span_kind
        assert s.attributes[A.SPAN_KIND] == kind.value
    assert helper_span.attributes[A.SYMBOL] == "AAPL"


def test_trading_kind_is_visible_to_the_sampler_at_start(use_tracer_provider):
    seen = []

    class Recorder(TradingSampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
            seen.append((kind, dict(attributes or {})))
            return super().should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    use_tracer_provider(Recorder(report=False))
    with order_span(order_id="o-1", side="buy"):
        pass
    assert seen == [(SpanKind.CLIENT, {A.SPAN_KIND: "order", A.ORDER_ID: "o-1", A.SIDE: "buy"})]


def test_keywords_map_to_trading_attributes(spans):
    class Side(enum.Enum):
        BUY = "buy"

    with order_span(
        "submit",
        order_id="o-1",
        client_order_id="c-1",
        side=Side.BUY,
        order_type="limit",
        quantity=100,
        limit_price=Decimal("187.25"),
        time_in_force="ioc",
        venue="XNAS",
        symbol="AAPL",
        strategy_id="mm-1",
        attributes={"custom.flag": True},
    ):
        pass
    attrs = spans.named("submit").attributes
    assert attrs[A.ORDER_ID] == "o-1"
    assert attrs[A.CLIENT_ORDER_ID] == "c-1"
    assert attrs[A.SIDE] == "buy"
    assert attrs[A.ORDER_TYPE] == "limit"
    assert attrs[A.QUANTITY] == 100
    assert attrs[A.LIMIT_PRICE] == 187.25
    assert attrs[A.TIME_IN_FORCE] == "ioc"
    assert attrs[A.VENUE] == "XNAS"
    assert attrs[A.STRATEGY_ID] == "mm-1"
    assert attrs["custom.flag"] is True


def test_nested_spans_form_one_trace(spans):
    with market_data_span(symbol="AAPL"):
        with signal_span(signal_id="s-1"):
            with order_span(order_id="o-1"):
                pass
    md, sig, order = spans.named("market_data"), spans.named("signal"), spans.named("order")
    assert order.parent.span_id == sig.context.span_id
    assert sig.parent.span_id == md.context.span_id
    assert len({md.context.trace_id, sig.context.trace_id, order.context.trace_id}) == 1


def test_exception_recorded_with_stack_trace_and_error_status(spans):
    with pytest.raises(ValueError):
        with risk_span_helper()(strategy_id="s"):
            raise ValueError("limit breached")
    span = spans.named("risk")
    assert span.status.status_code == StatusCode.ERROR
    assert "ValueError: limit breached" in span.status.description
    event = span.events[0]
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert "raise ValueError" in event.attributes["exception.stacktrace"]
    assert span.end_time > span.start_time


def risk_span_helper():
    return tracing.risk_span


def test_traced_sync_and_async(spans):
    @traced(kind="signal", capture_args=True)
    def decide(symbol, qty, strategy_id="s-default"):
        assert trace.get_current_span().is_recording()
        return qty * 2

    @traced(kind=TradingSpanKind.MODEL, name="predict", capture_args=["features"])
    async def predict(features):
        await asyncio.sleep(0)
        return 1

    @traced
    def plain():
        return "ok"

    assert decide("AAPL", 3) == 6
    assert asyncio.run(predict(7)) == 1
    assert plain() == "ok"
    d = spans.named(decide.__qualname__)
    assert d.attributes[A.SPAN_KIND] == "signal"
    assert d.attributes[A.SYMBOL] == "AAPL"
    assert d.attributes[A.STRATEGY_ID] == "s-default"
    assert "trading.arg.qty" not in d.attributes  # only named-like-trading args by default
    assert d.attributes["code.function.name"].endswith("decide")
    p = spans.named("predict")
    assert p.kind == SpanKind.INTERNAL and p.attributes[A.SPAN_KIND] == "model"
    assert p.attributes["trading.arg.features"] == 7
    assert A.SPAN_KIND not in spans.named(plain.__qualname__).attributes


def test_traced_records_exceptions_in_async_functions(spans):
    @traced(kind="order")
    async def send():
        raise ConnectionError("venue down")

    with pytest.raises(ConnectionError):
        asyncio.run(send())
    span = spans.named(send.__qualname__)
    assert span.status.status_code == StatusCode.ERROR
    assert span.events[0].attributes["exception.type"] == "ConnectionError"


def test_plain_otel_span_with_trading_kind_is_a_trading_span(use_tracer_provider):
    use_tracer_provider(ParentBasedTradingSampler(TradingSampler("market_data=0", report=False)))
    tracer = trace.get_tracer("plain")
    with tracer.start_as_current_span("tick", attributes={A.SPAN_KIND: "market_data"}) as span:
        assert not span.is_recording()  # the trading sampler saw it as market data and dropped it
    with tracer.start_as_current_span("order", attributes={A.SPAN_KIND: "order"}) as span:
        assert span.is_recording()


def test_dropped_root_decided_before_building_and_children_follow(use_tracer_provider, monkeypatch):
    spans = use_tracer_provider(ParentBasedTradingSampler(TradingSampler("market_data=0", report=False)))
    built = []
    monkeypatch.setattr(tracing, "_attributes", lambda *a: built.append(a) or {})
    with market_data_span(symbol="AAPL") as md:
        assert not md.is_recording()
        ctx = md.get_span_context()
        assert ctx.is_valid and not ctx.trace_flags.sampled
        assert trace.get_current_span() is md
        with signal_span(signal_id="s") as child:
            assert child is md  # the unsampled context is simply kept
    assert built == [] and spans.finished() == []


def test_order_under_dropped_tick_still_asks_the_sampler(use_tracer_provider):
    asked = []

    class Recorder(ParentBasedTradingSampler):
        def should_sample(self, parent_context, trace_id, name, *args, **kwargs):
            asked.append(name)
            return super().should_sample(parent_context, trace_id, name, *args, **kwargs)

    use_tracer_provider(Recorder(TradingSampler("market_data=0", report=False)))
    with market_data_span():
        with signal_span(), order_span(order_id="o-1"), risk_span_helper()():
            pass
    # must-keep kinds are never fast-dropped: the sampler has the last word; others follow the dropped tick
    assert asked == ["order", "risk"]


def test_always_off_sampler_drops_everything(use_tracer_provider):
    spans = use_tracer_provider(ALWAYS_OFF)
    with market_data_span(), order_span(order_id="o-1"), signal_span():
        pass
    assert spans.finished() == []


def test_fill_in_another_thread_links_to_its_order(spans, metric_reader):
    with order_span(order_id="o-7", venue="XNAS", order_type="limit"):
        pass

    def on_fill():
        with fill_span(order_id="o-7", fill_id="f-1", fill_price=1.5, fill_quantity=10):
            pass
        with order_span("cancel", order_id="o-7", action="cancel"):
            pass

    t = threading.Thread(target=on_fill)
    t.start()
    t.join()
    order, fill, cancel = spans.named("order"), spans.named("execution"), spans.named("cancel")
    assert fill.kind == SpanKind.CONSUMER
    for later in (fill, cancel):
        assert [link.context.span_id for link in later.links] == [order.context.span_id]
        assert later.links[0].attributes[A.ORDER_ID] == "o-7"
        assert later.context.trace_id != order.context.trace_id  # its own trace, linked
    fill_latency = exported(metric_reader)["trading.order.fill.duration"]
    point = fill_latency.data.data_points[0]
    assert point.count == 1 and dict(point.attributes) == {A.VENUE: "XNAS", A.ORDER_TYPE: "limit"}


def test_order_traceparent_round_trip(spans):
    with order_span(order_id="o-9") as span:
        pass
    tp = order_traceparent("o-9")
    ctx = span.get_span_context()
    assert tp == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    tracing.ORDERS.clear()  # as in another process
    assert order_link("o-9") is None
    with execution_span(order_id="o-9", order_traceparent=tp):
        pass
    link = spans.named("execution").links[0]
    assert (link.context.trace_id, link.context.span_id) == (ctx.trace_id, ctx.span_id)
    assert order_link("o-9", tp).context.span_id == ctx.span_id


def test_order_registry_is_bounded():
    registry = tracing.OrderRegistry(size=3)
    for i in range(10):
        registry.put(i, object())
    assert len(registry) == 3 and registry.get(0) is None and registry.get(9) is not None


def test_tick_to_trade_attribute_and_metric(spans, metric_reader):
    with market_data_span(symbol="AAPL"):
        with order_span(order_id="o-1", strategy_id="mm"):
            pass
    mark_tick(received_ns=1)  # explicit receive time far in the past
    with order_span(order_id="o-2"):
        pass
    with order_span(order_id="o-1", action="cancel"):  # a cancel is not a trade
        pass
    first = spans.named("order")  # last "order" span is the cancel; check the first two
    orders = [s for s in spans.finished() if s.name == "order"]
    assert 0 < orders[0].attributes[A.TICK_TO_TRADE] < 60e6
    assert orders[1].attributes[A.TICK_TO_TRADE] > 1e9
    assert A.TICK_TO_TRADE not in first.attributes
    hist = exported(metric_reader)["trading.tick_to_trade.duration"]
    assert hist.unit == "s"
    assert sum(p.count for p in hist.data.data_points) == 2
    assert {tuple(p.attributes.items()) for p in hist.data.data_points} == {((A.STRATEGY_ID, "mm"),), ()}


def test_tick_mark_ends_with_the_market_data_span(spans):
    tracing._tick_ns.set(None)
    with market_data_span():
        pass
    with order_span(order_id="late"):
        pass
    assert A.TICK_TO_TRADE not in spans.named("order").attributes


def test_events_errors_and_attributes_on_current_span(spans):
    with order_span(order_id="o-1"):
        tracing.add_event("order.acked", status="acked")
        tracing.set_attributes(status="acked")
        tracing.record_error(TimeoutError("ack late"), reject_reason="timeout")
    span = spans.named("order")
    assert span.events[0].name == "order.acked" and span.events[0].attributes[A.ORDER_STATUS] == "acked"
    assert span.attributes[A.ORDER_STATUS] == "acked" and span.attributes[A.REJECT_REASON] == "timeout"
    assert span.status.status_code == StatusCode.ERROR
    assert span.events[1].attributes["exception.type"] == "TimeoutError"


def test_bad_input_is_dropped_with_one_warning(spans, caplog):
    caplog.set_level(logging.WARNING, "otel_trading")
    for _ in range(3):
        with order_span(order_id=None, bogus=1, side=object(), venue="X"):
            pass
        with trading_span("not-a-kind"):
            pass
    attrs = spans.named("order").attributes
    assert attrs == {A.SPAN_KIND: "order", A.VENUE: "X"}
    plain = spans.named("span")
    assert A.SPAN_KIND not in plain.attributes and plain.kind == SpanKind.INTERNAL
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4, messages  # one per distinct problem, not per call
    assert any("order_id=None" in m for m in messages)
    assert any("'bogus'" in m for m in messages)
    assert any("unsupported type object" in m for m in messages)
    assert any("accepted: market_data" in m for m in messages)


def test_strict_mode_raises(spans, strict):
    with pytest.raises(TypeError, match="bogus"):
        with order_span(bogus=1):
            pass
    with pytest.raises(ValueError, match="order_id=None"):
        with order_span(order_id=None):
            pass
    with pytest.raises(ValueError, match="unknown trading span kind"):
        trading_span("nope")
    with pytest.raises(ValueError, match="traceparent"):
        order_link("x", "garbage")


def test_helpers_never_break_the_trading_path(spans, monkeypatch):
    with signal_span():  # binds the helpers to this provider's tracer
        pass

    def broken(*a, **k):
        raise RuntimeError("sdk bug")

    monkeypatch.setattr(tracing._state[1], "start_span", broken)
    with signal_span(signal_id="s") as span:
        result = "traded"
        assert span is trace.INVALID_SPAN
    assert result == "traded" and len(spans.finished()) == 1


def test_unsampled_orders_are_measured_but_not_linked(use_tracer_provider, metric_reader):
    spans = use_tracer_provider(ALWAYS_OFF)
    with order_span(order_id="o-u", venue="XNAS", order_type="market"):
        pass
    assert tracing.order_acked("o-u") >= 0
    with fill_span(order_id="o-u"):
        pass
    assert order_link("o-u") is None and spans.finished() == []
    metrics = exported(metric_reader)
    assert metrics["trading.order.ack.duration"].data.data_points[0].count == 1
    assert metrics["trading.order.fill.duration"].data.data_points[0].count == 1


def test_traced_warns_on_generators_and_captures_method_args(spans, caplog):
    caplog.set_level(logging.WARNING, "otel_trading")

    @traced
    def ticks():
        yield 1

    assert list(ticks()) == [1]
    assert "generator" in caplog.text

    class Strategy:
        @traced(kind="signal", capture_args=True)
        def on_tick(self, symbol, *, venue="XNAS"):
            return symbol

    assert Strategy().on_tick("AAPL") == "AAPL"
    attrs = spans.named("test_traced_warns_on_generators_and_captures_method_args.<locals>.Strategy.on_tick").attributes
    assert attrs[A.SYMBOL] == "AAPL" and attrs[A.VENUE] == "XNAS"


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.binary(max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=3),
    st.builds(object),
    st.sampled_from(list(TradingSpanKind)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.one_of(st.sampled_from(list(TradingSpanKind)), st.text(max_size=12), st.none(), st.integers()),
    kw=st.dictionaries(st.sampled_from([*A.KEYWORDS, "bogus", "x"]), _ANY_VALUE, max_size=6),
)
def test_any_input_never_raises_and_always_exports(spans, kind, kw):
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    spans.exporter.clear()
    with trading_span(kind, **kw):
        tracing.add_event("e", **kw)
    with order_span(**kw):
        pass
    finished = spans.finished()
    assert [s.name for s in finished][-1] == "order" and len(finished) == 2  # both spans ended and reached the exporter
    request = encode_spans(finished)  # one bad value must not fail a whole export batch
    assert sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans) == 2
    assert request.SerializeToString()


def test_unusable_order_id_keeps_the_span(spans):
    with order_span(order_id=["not", "hashable"], side="buy") as span:
        assert span.is_recording()
    assert spans.named("order").attributes[A.SIDE] == "buy"


def test_captured_argument_of_an_unsupported_type_is_dropped_with_a_warning(spans, caplog):
    caplog.set_level(logging.WARNING, "otel_trading")

    @traced(kind="signal", capture_args=["features", "symbol"])
    def predict(features, symbol):
        return len(features)

    assert predict([1.0, 2.0], "AAPL") == 2
    attrs = spans.named(predict.__qualname__).attributes
    assert attrs[A.SYMBOL] == "AAPL" and "trading.arg.features" not in attrs
    assert "capture_args" in caplog.text and "'features'" in caplog.text and "list" in caplog.text


def test_added_attributes_land_on_the_span_within_the_sdk_limits(caplog):
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=3, max_span_attribute_length=4))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("as is", attributes={"a": 1}) as span:
        tracing.add_attributes(span, {A.ORDER_ID: "o-1", A.ORDER_STATUS: "open"})
    with tracer.start_as_current_span("too long") as span:
        tracing.add_attributes(span, {A.ORDER_ID: "o-12345"})  # the SDK's own call: truncated to its limit
    with tracer.start_as_current_span("too many", attributes={"a": 1, "b": 2}) as span:
        tracing.add_attributes(span, {A.ORDER_ID: "o-1", A.ORDER_STATUS: "open"})  # the SDK's own call: the oldest goes
    tracing.add_attributes(span, {A.ORDER_ID: "o-2"})  # ended: the SDK's warning, nothing changes
    found = {s.name: dict(s.attributes) for s in exporter.get_finished_spans()}
    assert found == {
        "as is": {"a": 1, A.ORDER_ID: "o-1", A.ORDER_STATUS: "open"},
        "too long": {A.ORDER_ID: "o-12"},
        "too many": {"b": 2, A.ORDER_ID: "o-1", A.ORDER_STATUS: "open"},
    }
    assert "ended span" in caplog.text
