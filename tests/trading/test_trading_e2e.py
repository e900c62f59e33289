"""Trading helpers end to end: ``opentelemetry-instrument`` programs exporting to the loopback OTLP receiver."""

from __future__ import annotations

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto
from otlp_receiver import attributes
from support import METRIC_UNITS

KIND = "trading.span.kind"

ALL_KINDS = """
import asyncio
from otel_trading.trading import tracing as t

with t.market_data_span(symbol="AAPL", feed="itch", price=187.5):
    with t.signal_span(strategy_id="mm-1", signal_id="sig-1"):
        with t.model_span(model_id="alpha", model_version="3"):
            pass
        with t.risk_span(strategy_id="mm-1"):
            pass
        with t.order_span(order_id="o-1", side="buy", order_type="limit", quantity=100, limit_price=187.4, venue="XNAS"):
            pass
with t.execution_span(order_id="o-1", fill_id="f-1", fill_price=187.4, fill_quantity=100, liquidity="maker"):
    pass
for helper in (t.portfolio_span, t.backtest_span, t.reconciliation_span):
    with helper():
        pass

@t.traced(kind="signal", capture_args=True)
async def decide(symbol):
    await asyncio.sleep(0)
    raise RuntimeError("no edge")

try:
    asyncio.run(decide("MSFT"))
except RuntimeError:
    pass
"""


def _by_name(otlp):
    return {s.name: s for s in otlp.spans()}


def test_kinds_attributes_links_and_errors_as_exported(otlp, run_instrumented):
    proc = run_instrumented(ALL_KINDS)
    assert proc.returncode == 0, proc.stderr
    spans = otlp.wait_for(lambda r: len(r.spans()) >= 10 and _by_name(r))
    expected = {
        "market_data": SpanProto.SPAN_KIND_CONSUMER,
        "signal": SpanProto.SPAN_KIND_INTERNAL,
        "model": SpanProto.SPAN_KIND_INTERNAL,
        "risk": SpanProto.SPAN_KIND_INTERNAL,
        "order": SpanProto.SPAN_KIND_CLIENT,
        "execution": SpanProto.SPAN_KIND_CONSUMER,
        "portfolio": SpanProto.SPAN_KIND_INTERNAL,
        "backtest": SpanProto.SPAN_KIND_INTERNAL,
        "reconciliation": SpanProto.SPAN_KIND_INTERNAL,
    }
    for name, span_kind in expected.items():
        assert spans[name].kind == span_kind, name
        assert spans[name].attributes[KIND] == name
    order = spans["order"].attributes
    assert order["trading.order.id"] == "o-1" and order["trading.side"] == "buy"
    assert order["trading.order.limit_price"] == 187.4 and order["trading.order.quantity"] == 100
    assert order["trading.tick_to_trade.duration_us"] > 0
    assert spans["order"].trace_id == spans["market_data"].trace_id
    execution = spans["execution"]
    assert [link.span_id.hex() for link in execution.links] == [spans["order"].span_id]
    failed = spans["decide"]
    assert failed.status_code == 2  # STATUS_CODE_ERROR
    assert failed.attributes["trading.symbol"] == "MSFT"
    event = failed.events[0]
    assert event.name == "exception" and "no edge" in attributes(event.attributes)["exception.message"]
    assert "Traceback" in attributes(event.attributes)["exception.stacktrace"] or "raise RuntimeError" in attributes(event.attributes)["exception.stacktrace"]


ORDER_PROCESS = """
import json, sys
from otel_trading.trading import propagation, tracing
headers = []
with propagation.correlation("trade-7"):
    with tracing.order_span(order_id="o-77", side="sell", venue="XLON"):
        with propagation.producer_span("orders", headers, event_id="e-1"):
            pass
print(json.dumps({"traceparent": tracing.order_traceparent("o-77"), "headers": [(k, v.decode()) for k, v in headers]}))
"""

FILL_PROCESS = """
import json, sys
from otel_trading.trading import propagation, tracing
sent = json.loads(sys.argv[1])
headers = [(k, v.encode()) for k, v in sent["headers"]]
with propagation.consumer_span("orders", headers, trading_kind="execution"):
    with tracing.fill_span(order_id="o-77", fill_id="f-9", order_traceparent=sent["traceparent"]):
        pass
"""


@pytest.mark.slow
def test_fill_in_another_process_links_to_its_order(otlp, run_instrumented):
    first = run_instrumented(ORDER_PROCESS)
    assert first.returncode == 0, first.stderr
    second = run_instrumented(FILL_PROCESS, args=[first.stdout.strip().splitlines()[-1]])
    assert second.returncode == 0, second.stderr
    spans = otlp.wait_for(lambda r: {"order", "send orders", "process orders", "execution"} <= set(_by_name(r)) and _by_name(r))
    order, send, process, fill = spans["order"], spans["send orders"], spans["process orders"], spans["execution"]
    assert order.resource["process.pid"] != fill.resource["process.pid"]
    # the fill links to the order span of the other process
    assert [(link.trace_id.hex(), link.span_id.hex()) for link in fill.links] == [(order.trace_id, order.span_id)]
    # the message carried the trace on: send -> process -> fill is one trace, with baggage and causation
    assert process.parent_span_id == send.span_id and fill.parent_span_id == process.span_id
    assert process.trace_id == order.trace_id
    assert process.attributes["trading.correlation_id"] == "trade-7"
    assert process.attributes["trading.event.id"] == "e-1"
    assert send.kind == SpanProto.SPAN_KIND_PRODUCER and process.kind == SpanProto.SPAN_KIND_CONSUMER


DROPPED_TICKS = """
from otel_trading.trading import tracing as t
for i in range(200):
    with t.market_data_span(symbol="AAPL"):
        with t.signal_span():
            pass
with t.order_span(order_id="o-1"):
    pass
"""


def test_trading_sampler_drops_ticks_through_the_helpers(otlp, run_instrumented):
    proc = run_instrumented(DROPPED_TICKS, OTEL_TRACES_SAMPLER="parentbased_trading", OTEL_TRACES_SAMPLER_ARG="market_data=0")
    assert proc.returncode == 0, proc.stderr
    otlp.wait_for(lambda r: "order" in _by_name(r))
    assert [s.name for s in otlp.spans()] == ["order"]


METRICS = """
from otel_trading.trading import metrics as m, tracing as t
m.record_order("buy", "limit", "XNAS", "acked", "mm-1")
m.record_rejection("price_band", "XNAS", "mm-1")
m.record_fill("buy", "XNAS", "taker")
m.record_order_ack(0.0003, "XNAS", "limit")
m.record_slippage(2.5, "XNAS", "buy")
m.set_pnl(10.0, "realized", "mm-1")
m.set_open_positions(2, "mm-1")
m.record_stage("risk", lag_seconds=0.001)
with t.market_data_span():
    with t.order_span(order_id="o-1", strategy_id="mm-1"):
        pass
with t.fill_span(order_id="o-1"):
    pass
for i in range(40):
    m.record_tick("itch", symbol=f"SYM{i}")
"""


def _metrics(otlp):
    """{name: latest Metric} from the receiver."""
    return {m.name: m for m in otlp.metrics()}


def test_metrics_as_exported_with_cardinality_limit(otlp, run_instrumented):
    proc = run_instrumented(METRICS, OTEL_TRADING_PER_SYMBOL_METRICS="true", OTEL_TRADING_CARDINALITY_LIMIT="10")
    assert proc.returncode == 0, proc.stderr
    names = METRIC_UNITS
    metrics = otlp.wait_for(lambda r: set(names) <= set(_metrics(r)) and _metrics(r))
    assert {n: metrics[n].unit for n in names} == names
    ack = metrics["trading.order.ack.duration"].points[0]
    assert list(ack.explicit_bounds)[:3] == [0.00001, 0.000025, 0.00005] and ack.explicit_bounds[-1] == 10.0
    assert attributes(ack.attributes) == {"trading.venue": "XNAS", "trading.order.type": "limit"}
    slippage = metrics["trading.order.slippage"].points[0]
    assert list(slippage.explicit_bounds) == [0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0]
    t2t = metrics["trading.tick_to_trade.duration"].points[0]
    assert t2t.count == 1 and attributes(t2t.attributes) == {"trading.strategy.id": "mm-1"}
    assert attributes(metrics["trading.orders"].points[0].attributes) == {
        "trading.side": "buy",
        "trading.order.type": "limit",
        "trading.venue": "XNAS",
        "trading.order.status": "acked",
        "trading.strategy.id": "mm-1",
    }
    ticks = [attributes(p.attributes) for p in metrics["trading.market_data.ticks"].points]
    assert len(ticks) <= 10  # 40 symbols, limit 10: the rest are one overflow series
    assert {"otel.metric.overflow": True} in ticks
    assert all("trading.symbol" in a for a in ticks if "otel.metric.overflow" not in a)
    assert not [n for n in metrics if n.startswith(("process.", "system.", "cpython."))]  # system metrics are opt-in


def test_system_metrics_switch(otlp, run_instrumented):
    proc = run_instrumented("from otel_trading.trading import metrics", OTEL_TRADING_SYSTEM_METRICS="true")
    assert proc.returncode == 0, proc.stderr
    metrics = otlp.wait_for(lambda r: {"process.cpu.time", "process.memory.usage", "process.thread.count", "cpython.gc.collections"} <= set(_metrics(r)) and _metrics(r))
    assert metrics["process.cpu.time"].unit == "s"
