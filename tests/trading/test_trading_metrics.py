"""Trading instruments as the SDK exports them: names, units, attributes, buckets, symbol opt-in, install()."""

from __future__ import annotations

import sys
import types

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from support import METRIC_UNITS, exported

from otel_trading import config
from otel_trading.config import load
from otel_trading.trading import attributes as A
from otel_trading.trading import metrics as M


def record_everything():
    M.record_order("buy", "limit", "XNAS", "acked", "mm-1", symbol="AAPL")
    M.record_rejection("insufficient_margin", "XNAS", "mm-1")
    M.record_fill("buy", "XNAS", "maker")
    M.record_order_ack(0.0004, "XNAS", "limit")
    M.record_fill_latency(0.02, "XNAS", "limit")
    M.record_tick_to_trade(0.00003, "mm-1")
    M.record_slippage(1.5, "XNAS", "buy")
    M.record_slippage(-0.7, "XNAS", "buy")
    M.set_pnl(1250.5, "realized", "mm-1")
    M.set_pnl(-20.0, "unrealized", "mm-1")
    M.set_open_positions(3, "mm-1")
    M.record_tick("itch", count=5)
    M.record_stage("signals", lag_seconds=0.002)


def points(metric):
    return list(metric.data.data_points)


def test_names_units_and_attributes(metric_reader):
    record_everything()
    metrics = exported(metric_reader)
    assert {name: m.unit for name, m in metrics.items() if name.startswith("trading.")} == METRIC_UNITS
    orders = points(metrics["trading.orders"])[0]
    assert dict(orders.attributes) == {A.SIDE: "buy", A.ORDER_TYPE: "limit", A.VENUE: "XNAS", A.ORDER_STATUS: "acked", A.STRATEGY_ID: "mm-1"}
    assert dict(points(metrics["trading.order.rejections"])[0].attributes)[A.REJECT_REASON] == "insufficient_margin"
    assert dict(points(metrics["trading.fills"])[0].attributes)[A.LIQUIDITY] == "maker"
    assert points(metrics["trading.market_data.ticks"])[0].value == 5
    pnl = {p.attributes[A.PNL_TYPE]: p.value for p in points(metrics["trading.pnl"])}
    assert pnl == {"realized": 1250.5, "unrealized": -20.0}
    assert points(metrics["trading.positions.open"])[0].value == 3
    slippage = {p.attributes["trading.slippage.direction"]: p.sum for p in points(metrics["trading.order.slippage"])}
    assert slippage == {"adverse": 1.5, "favorable": 0.7}
    staleness = {p.attributes[A.STAGE]: p.value for p in points(metrics["trading.pipeline.stage.staleness"])}
    assert 0 <= staleness["signals"] < 60  # stages recorded by earlier tests in this process may be there too
    assert points(metrics["trading.pipeline.stage.lag"])[0].sum == pytest.approx(0.002)


def test_bucket_boundaries_fit_what_they_measure(metric_reader):
    record_everything()
    metrics = exported(metric_reader)
    for name in ("trading.order.ack.duration", "trading.order.fill.duration", "trading.tick_to_trade.duration", "trading.pipeline.stage.lag"):
        assert tuple(points(metrics[name])[0].explicit_bounds) == tuple(load().latency_buckets), name
    assert tuple(points(metrics["trading.order.slippage"])[0].explicit_bounds) == M.SLIPPAGE_BUCKETS
    ack = points(metrics["trading.order.ack.duration"])[0]
    # 400 us lands in the (250 us, 500 us] bucket, not the SDK default's first bucket
    assert ack.bucket_counts[list(ack.explicit_bounds).index(0.0005)] == 1


def test_symbol_only_with_per_symbol_opt_in(metric_reader, monkeypatch):
    M.record_order("buy", "limit", "XNAS", symbol="AAPL")
    monkeypatch.setattr(config.current(), "per_symbol_metrics", True)
    M.record_order("buy", "limit", "XNAS", symbol="MSFT")
    M.record_tick("itch", symbol="MSFT")
    orders = points(exported(metric_reader)["trading.orders"])
    assert sorted(p.attributes.get(A.SYMBOL, "-") for p in orders) == ["-", "MSFT"]


def test_attribute_cache_is_bounded(metric_reader, monkeypatch):
    monkeypatch.setattr(config.current(), "per_symbol_metrics", True)
    monkeypatch.setattr(config.current(), "cardinality_limit", 10)
    for i in range(50):
        M.record_tick("itch", symbol=f"S{i}")
    assert len(M.trading_metrics().ticks.cache) == 10


def test_instruments_follow_the_global_provider(metric_reader):
    first = M.trading_metrics()
    assert M.trading_metrics() is first
    from opentelemetry.metrics import _internal

    other = InMemoryMetricReader()
    _internal._METER_PROVIDER = MeterProvider(metric_readers=[other])
    M.record_fill("sell")
    assert M.trading_metrics() is not first
    assert "trading.fills" in exported(other) and "trading.fills" not in exported(metric_reader)


def test_odd_attribute_values_do_not_raise(metric_reader):
    from decimal import Decimal

    M.record_order("buy", "limit", Decimal("1"), status=object())
    attrs = dict(points(exported(metric_reader)["trading.orders"])[0].attributes)
    assert attrs[A.VENUE] == 1.0 and attrs[A.ORDER_STATUS] == "invalid"


def test_install_is_idempotent_and_switches_system_metrics(monkeypatch):
    calls = []

    class FakeInstrumentor:
        def __init__(self, config=None):
            self.config = config

        def instrument(self, **kwargs):
            calls.append((self.config, kwargs))

    import opentelemetry.instrumentation.system_metrics as upstream

    monkeypatch.setattr(upstream, "SystemMetricsInstrumentor", FakeInstrumentor)
    monkeypatch.setitem(M._installed, "system_metrics", False)
    provider = MeterProvider()
    off = types.SimpleNamespace(**{**vars(load()), "system_metrics": False})
    M.install(off, provider)
    assert calls == []
    on = types.SimpleNamespace(**{**vars(load()), "system_metrics": True})
    M.install(on, provider)
    M.install(on, provider)
    assert len(calls) == 1
    config, kwargs = calls[0]
    assert kwargs == {"meter_provider": provider}
    assert {"process.cpu.time", "process.memory.usage", "process.thread.count", "cpython.gc.collections"} <= set(config)


def test_system_metrics_without_the_extra_say_so_once_and_stay_off(monkeypatch, capsys):
    import otel_trading.report as report_module

    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.system_metrics", None)  # not installed
    monkeypatch.setitem(M._installed, "system_metrics", False)
    monkeypatch.setattr(report_module, "_reported", set())
    on = types.SimpleNamespace(**{**vars(load()), "system_metrics": True})
    M.install(on, MeterProvider())
    M.install(on, MeterProvider())
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["otel-trading: OTEL_TRADING_SYSTEM_METRICS=true needs the system extra: pip install 'otel-trading[system]'; system metrics are off"]
    assert M._installed["system_metrics"] is False


def test_system_metrics_really_export(metric_reader, monkeypatch):
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    monkeypatch.setitem(M._installed, "system_metrics", False)
    provider = MeterProvider(metric_readers=[reader := InMemoryMetricReader()])
    M.install(types.SimpleNamespace(**{**vars(load()), "system_metrics": True}), provider)
    try:
        names = set(exported(reader))
        assert {"process.cpu.time", "process.memory.usage", "process.thread.count"} <= names
    finally:
        SystemMetricsInstrumentor().uninstrument()


def test_prometheus_names_match_the_contract():
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.metrics import _internal
    from prometheus_client import REGISTRY, generate_latest

    old = _internal._METER_PROVIDER
    reader = PrometheusMetricReader()
    _internal._METER_PROVIDER = provider = MeterProvider(metric_readers=[reader])
    try:
        record_everything()
        text = generate_latest(REGISTRY).decode()
    finally:
        _internal._METER_PROVIDER = old
        provider.shutdown()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("trading_")}
    for expected in (
        "trading_orders_total",
        "trading_order_rejections_total",
        "trading_fills_total",
        "trading_order_ack_duration_seconds_bucket",
        "trading_order_fill_duration_seconds_sum",
        "trading_tick_to_trade_duration_seconds_count",
        "trading_order_slippage_bucket",
        "trading_order_slippage_sum",
        "trading_pnl",
        "trading_positions_open",
        "trading_market_data_ticks_total",
        "trading_pipeline_stage_processed_total",
        "trading_pipeline_stage_lag_seconds_bucket",
        "trading_pipeline_stage_staleness_seconds",
    ):
        assert expected in names, (expected, sorted(names))


def test_deferred_records_land_at_the_next_collection_with_their_trace_as_exemplar(metric_reader, spans):
    # instrumented library calls defer their records off the trading call; the reader's collection records them
    with spans.provider.get_tracer("test").start_as_current_span("order") as span:
        M.defer(M.record_order_ack, 0.004, "XNAS", "limit")
    assert M.deferred() == 1
    ack = points(exported(metric_reader)["trading.order.ack.duration"])
    assert [(p.count, p.sum, dict(p.attributes)) for p in ack] == [(1, 0.004, {A.VENUE: "XNAS", A.ORDER_TYPE: "limit"})]
    assert [e.trace_id for e in ack[0].exemplars] == [span.get_span_context().trace_id]
    assert not M.deferred()


def test_deferred_values_stay_bounded_when_nothing_collects(metric_reader, monkeypatch):
    monkeypatch.setattr(M, "DEFERRED_MAX", 3)
    for _ in range(4):
        M.defer(M.record_order_ack, 0.004, "XNAS", "limit")
    assert not M.deferred()  # the fourth value flushed the queue itself
    assert [p.count for p in points(exported(metric_reader)["trading.order.ack.duration"])] == [4]


def test_deferred_counts_take_one_entry_per_attribute_set_however_many_calls(metric_reader):
    for _ in range(100_000):
        M.defer(M.record_order, "buy", "limit", "XNAS", "new")
    assert M.deferred() == 1  # no record inside the loop, no growth
    assert [p.value for p in points(exported(metric_reader)["trading.orders"])] == [100_000]


def test_a_new_attribute_set_beyond_the_bound_is_recorded_at_once(metric_reader, monkeypatch):
    monkeypatch.setattr(M, "_MAX_KEYS", 1)
    M.defer(M.record_order, "buy", "limit", "XNAS", "new")
    M.defer(M.record_order, "sell", "limit", "XNAS", "new")
    M.defer(M.record_order_ack, 0.004, "XNAS", "limit")
    M.defer(M.record_order_ack, 0.005, "XNAS", "market")
    assert M.deferred() == 2
    data = exported(metric_reader)
    assert {p.attributes[A.SIDE]: p.value for p in points(data["trading.orders"])} == {"buy": 1, "sell": 1}
    assert {p.attributes[A.ORDER_TYPE]: p.count for p in points(data["trading.order.ack.duration"])} == {"limit": 1, "market": 1}


def test_deferred_values_all_land_with_the_largest_and_the_last_trace_as_exemplars(metric_reader, spans):
    tracer = spans.provider.get_tracer("test")
    traces = {}
    for seconds in (0.001, 0.002, 4.0, 0.003, 0.0015):
        with tracer.start_as_current_span("order") as span:
            M.defer(M.record_order_ack, seconds, "XNAS", "limit")
        traces[seconds] = span.get_span_context().trace_id
    (ack,) = points(exported(metric_reader)["trading.order.ack.duration"])
    assert (ack.count, round(ack.sum, 6), ack.min, ack.max) == (5, 4.0075, 0.001, 4.0)
    assert {(e.value, e.trace_id) for e in ack.exemplars} == {(4.0, traces[4.0]), (0.0015, traces[0.0015])}


def test_a_forked_child_does_not_record_its_parents_deferred_records(metric_reader):
    import os

    M.defer(M.record_order, "buy", "limit", "XNAS", "new")
    pid = os.fork()
    if pid == 0:
        os._exit(0 if not M.deferred() else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert [p.value for p in points(exported(metric_reader)["trading.orders"])] == [1]  # the parent's, once


def test_deferred_counts_with_the_same_attributes_add_up_exactly_with_a_trace_as_exemplar(metric_reader, spans):
    tracer = spans.provider.get_tracer("test")
    traces = []
    for side in ("buy", "sell", "buy", "buy", "sell"):
        with tracer.start_as_current_span("order") as span:
            M.defer(M.record_order, side, "limit", "XNAS", "new")
            M.defer(M.record_fill, side, "XNAS", "maker")
            traces.append(span.get_span_context().trace_id)
    M.defer(M.record_order, "buy", "limit", "XNAS", ["unhashable"])  # reported and dropped, as before: the others still land
    data = exported(metric_reader)
    orders = {(p.attributes[A.SIDE], p.attributes[A.ORDER_STATUS]): p for p in points(data["trading.orders"])}
    assert {k: p.value for k, p in orders.items()} == {("buy", "new"): 3, ("sell", "new"): 2}
    assert {p.attributes[A.SIDE]: p.value for p in points(data["trading.fills"])} == {"buy": 3, "sell": 2}
    assert all(e.trace_id in traces for p in orders.values() for e in p.exemplars)
    assert any(p.exemplars for p in orders.values())
