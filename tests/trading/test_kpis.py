"""Trading KPIs as the SDK exports them: trade P&L by outcome, exposure per strategy
(and per symbol when opted in), drawdown against its limit, market-data latency,
error spans counted by error.type."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode
from support import exported

from otel_trading import config
from otel_trading.trading import attributes as A
from otel_trading.trading import kpis


@pytest.fixture(autouse=True)
def fresh_state():
    kpis._positions.clear()
    kpis._portfolios.clear()
    yield
    kpis._positions.clear()
    kpis._portfolios.clear()


def points(metrics, name):
    return list(metrics[name].data.data_points)


def test_closed_trades_record_magnitude_by_outcome(metric_reader):
    for pnl in (120.0, -40.0, 30.5, 0.0):
        kpis.record_trade(pnl, "mm-1")
    kpis.record_trade(float("nan"), "mm-1")  # dropped (reported once), not recorded as a trade
    by_outcome = {p.attributes[A.TRADE_OUTCOME]: (p.count, p.sum) for p in points(exported(metric_reader), "trading.trade.pnl")}
    assert by_outcome == {"win": (2, 150.5), "loss": (1, 40.0), "flat": (1, 0.0)}


def test_exposure_is_summed_per_strategy_unless_per_symbol(metric_reader, monkeypatch):
    kpis.set_position("AAPL", 100, 190.0, "mm-1")
    kpis.set_position("MSFT", -10, 400.0, "mm-1")
    kpis.set_position("AAPL", 50, 190.0, "mm-1")  # replaces the AAPL position
    metrics = exported(metric_reader)
    assert [(p.value, dict(p.attributes)) for p in points(metrics, "trading.exposure")] == [
        (50 * 190.0 - 4000.0, {A.STRATEGY_ID: "mm-1", A.CURRENCY: "USD"})]
    assert [p.value for p in points(metrics, "trading.notional")] == [50 * 190.0 + 4000.0]
    monkeypatch.setattr(config.current(), "per_symbol_metrics", True)
    metrics = exported(metric_reader)
    assert {p.attributes[A.SYMBOL]: p.value for p in points(metrics, "trading.exposure")} == {"AAPL": 9500.0, "MSFT": -4000.0}


def test_positions_are_capped_by_the_cardinality_limit(metric_reader, monkeypatch):
    monkeypatch.setattr(config.current(), "cardinality_limit", 3)
    for i in range(10):
        kpis.set_position(f"S{i}", 1, 1.0, "mm-1")
    assert len(kpis._positions) == 3


def test_drawdown_is_a_fraction_of_the_running_peak_with_the_limit_beside_it(metric_reader, monkeypatch):
    monkeypatch.setattr(config.current(), "drawdown_limit", 5.0)
    for value in (100_000.0, 120_000.0, 108_000.0):
        kpis.set_portfolio_value(value, "mm-1")
    metrics = exported(metric_reader)
    assert points(metrics, "trading.portfolio.value")[0].value == 108_000.0
    assert points(metrics, "trading.drawdown.ratio")[0].value == pytest.approx(0.1)
    assert points(metrics, "trading.drawdown.limit.ratio")[0].value == pytest.approx(0.05)
    kpis.set_portfolio_value(130_000.0, "mm-1")  # a new peak: no drawdown
    assert points(exported(metric_reader), "trading.drawdown.ratio")[0].value == 0.0


def test_market_data_latency_from_exchange_timestamp(metric_reader):
    kpis.record_market_data_latency(1000.0, 1000.004, "itch")
    kpis.record_market_data_latency(1000.010, 1000.0, "itch")  # clocks apart: recorded as 0, not negative
    (point,) = points(exported(metric_reader), "trading.market_data.latency")
    assert point.count == 2 and point.sum == pytest.approx(0.004) and point.min == 0.0
    assert dict(point.attributes) == {A.FEED: "itch"}


def test_error_spans_counted_by_error_type(metric_reader):
    provider = TracerProvider()
    kpis.install(provider)
    tracer = provider.get_tracer("t")
    for _ in range(50):
        with tracer.start_as_current_span("ok"):
            pass
    with pytest.raises(TimeoutError):
        with tracer.start_as_current_span("send"):
            raise TimeoutError("venue slow")
    with tracer.start_as_current_span("typed") as span:
        span.set_attribute("error.type", "rejected")
        span.set_status(Status(StatusCode.ERROR))
    with tracer.start_as_current_span("bare") as span:
        span.set_status(Status(StatusCode.ERROR))
    counted = {p.attributes[A.ERROR_TYPE]: p.value for p in points(exported(metric_reader), "trading.errors")}
    assert counted == {"TimeoutError": 1, "rejected": 1, "_OTHER": 1}
    provider.shutdown()
