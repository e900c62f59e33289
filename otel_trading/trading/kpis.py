"""Trading KPIs: closed trades and their P&L, exposure, portfolio value, drawdown,
market-data latency and error counts.

Choices a reader of the dashboards needs to know:

- Realised P&L per closed trade is a histogram of the *magnitude* with
  ``trading.trade.outcome`` = win / loss / flat (OTel histograms take no
  negative values). Its ``_count`` by outcome gives the win rate (recording rule
  ``job_strategy:trading_trades_win:ratio_rate1h``), ``_sum{outcome="win"} -
  _sum{outcome="loss"}`` the net realised P&L.
- Exposure and notional are kept per (strategy, symbol) in the process and
  observed at export: with ``OTEL_TRADING_PER_SYMBOL_METRICS=false`` the symbols
  are summed per strategy (never last-write-wins), and at most
  ``OTEL_TRADING_CARDINALITY_LIMIT`` positions are kept.
- Drawdown is ``(peak - value) / peak`` of the portfolio value since the process
  started, a fraction; ``OTEL_TRADING_DRAWDOWN_LIMIT`` (percent) is exported as
  the fraction ``trading.drawdown.limit.ratio`` so the alert compares the two.
- ``trading.errors`` counts spans that end with status ERROR, by ``error.type``,
  in the process (no collector needed); a span that ends OK costs one comparison.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode

from otel_trading import config
from otel_trading.trading import attributes as A
from otel_trading.trading import metrics as M

PNL_BUCKETS = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 50000.0)
"""Magnitude of realised P&L per trade, in the account currency."""

_lock = threading.Lock()
_positions: dict[tuple, tuple[float, float]] = {}  # (strategy, symbol, currency) -> (exposure, notional)
_portfolios: dict[tuple, list[float]] = {}  # (strategy, currency) -> [value, peak]


class _Instruments:
    def __init__(self, provider: metrics_api.MeterProvider):
        meter = provider.get_meter("otel_trading.kpis")
        self.trade_pnl = M._Series(meter.create_histogram(
            "trading.trade.pnl", "{currency}", "Realised P&L magnitude per closed trade; trading.trade.outcome says win, loss or flat",
            explicit_bucket_boundaries_advisory=PNL_BUCKETS), (A.TRADE_OUTCOME, A.STRATEGY_ID, A.CURRENCY, A.SYMBOL))
        self.md_latency = M._Series(meter.create_histogram(
            "trading.market_data.latency", "s", "Exchange timestamp of a market data event to its receipt",
            explicit_bucket_boundaries_advisory=tuple(config.current().latency_buckets)), (A.FEED,))
        self.errors = M._Series(meter.create_counter(
            "trading.errors", "{error}", "Spans that ended with status ERROR, by error.type"), (A.ERROR_TYPE,))
        meter.create_observable_gauge("trading.exposure", [_observe_exposure], "{currency}", "Signed net exposure (quantity x price) per strategy and symbol")
        meter.create_observable_gauge("trading.notional", [_observe_notional], "{currency}", "Gross notional |quantity x price| per strategy and symbol")
        meter.create_observable_gauge("trading.portfolio.value", [_observe_value], "{currency}", "Portfolio value (equity)")
        meter.create_observable_gauge("trading.drawdown.ratio", [_observe_drawdown], "{ratio}", "Drop of the portfolio value below its running peak, as a fraction of the peak")
        meter.create_observable_gauge("trading.drawdown.limit.ratio", [_observe_limit], "{ratio}", "OTEL_TRADING_DRAWDOWN_LIMIT as a fraction (the drawdown alert's threshold)")


_instruments = M.PerProvider(_Instruments).get


def _finite(value: Any, what: str) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        M.bad_input(f"{what} must be a finite number, got {type(value).__name__}")
        return None
    return number


# ----------------------------------------------------------------------------- recording
def record_trade(pnl: float, strategy_id: Any = None, currency: Any = "USD", symbol: Any = None) -> None:
    """A closed trade and its realised P&L (signed, account currency)."""
    value = _finite(pnl, "record_trade(pnl)")
    if value is None:
        return
    outcome = "win" if value > 0 else "loss" if value < 0 else "flat"
    s = _instruments().trade_pnl
    s.instrument.record(abs(value), s.attributes((outcome, strategy_id, currency, M._symbol(symbol))))


def set_position(symbol: Any, quantity: float, price: float, strategy_id: Any = None, currency: Any = "USD") -> None:
    """The current position in ``symbol``: exposure = quantity x price (signed), notional = its magnitude."""
    q, p = _finite(quantity, "set_position(quantity)"), _finite(price, "set_position(price)")
    if q is None or p is None:
        return
    _instruments()
    key = (strategy_id, symbol, currency)
    limit = config.current().cardinality_limit
    with _lock:
        tracked = key in _positions or len(_positions) < limit
        if tracked:
            _positions[key] = (q * p, abs(q * p))
    if not tracked:
        M.bad_input(f"more than {limit} positions (OTEL_TRADING_CARDINALITY_LIMIT); further symbols are not tracked")


def set_portfolio_value(value: float, strategy_id: Any = None, currency: Any = "USD") -> None:
    """Portfolio value (equity); updates the running peak and so the drawdown."""
    v = _finite(value, "set_portfolio_value(value)")
    if v is None:
        return
    _instruments()
    key = (strategy_id, currency)
    with _lock:
        entry = _portfolios.get(key)
        if entry is None:
            if len(_portfolios) >= config.current().cardinality_limit:
                return
            _portfolios[key] = [v, v]
        else:
            entry[0], entry[1] = v, max(entry[1], v)


def record_market_data_latency(exchange_time: float, received: float | None = None, feed: Any = None) -> None:
    """Exchange timestamp (unix seconds) to receipt (default now). A negative gap (clocks apart) is recorded as 0."""
    sent = _finite(exchange_time, "record_market_data_latency(exchange_time)")
    if sent is None:
        return
    got = time.time() if received is None else _finite(received, "record_market_data_latency(received)")
    if got is None:
        return
    s = _instruments().md_latency
    s.instrument.record(max(0.0, got - sent), s.attributes((feed,)))


# ----------------------------------------------------------------------------- observation
def _positions_by_key() -> dict[tuple, tuple[float, float]]:
    with _lock:
        items = list(_positions.items())
    if config.current().per_symbol_metrics:
        return dict(items)
    summed: dict[tuple, tuple[float, float]] = {}
    for (strategy, _symbol, currency), (exposure, notional) in items:
        e, n = summed.get((strategy, None, currency), (0.0, 0.0))
        summed[(strategy, None, currency)] = (e + exposure, n + notional)
    return summed


def _position_attributes(strategy: Any, symbol: Any, currency: Any) -> dict:
    attrs = {}
    for key, value in ((A.STRATEGY_ID, strategy), (A.SYMBOL, symbol), (A.CURRENCY, currency)):
        if value is not None:
            v = M.attribute_value(value)
            attrs[key] = v if v is not None else "invalid"
    return attrs


def _observe_exposure(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(e, _position_attributes(*k)) for k, (e, _) in _positions_by_key().items()]


def _observe_notional(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(n, _position_attributes(*k)) for k, (_, n) in _positions_by_key().items()]


def _portfolio_items() -> list[tuple[dict, float, float]]:
    with _lock:
        items = [(k, v[0], v[1]) for k, v in _portfolios.items()]
    return [(_position_attributes(strategy, None, currency), value, peak) for (strategy, currency), value, peak in items]


def _observe_value(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(value, attrs) for attrs, value, _ in _portfolio_items()]


def _observe_drawdown(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation((peak - value) / peak if peak > 0 else 0.0, attrs) for attrs, value, peak in _portfolio_items()]


def _observe_limit(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(config.current().drawdown_limit / 100)] if _portfolios else []


# ----------------------------------------------------------------------------- errors
class ErrorCountingSpanProcessor(SpanProcessor):
    """Counts spans that end with status ERROR into ``trading.errors`` by ``error.type``.

    ``error.type`` is the span's attribute if set, else the type of its last
    recorded exception, else ``_OTHER`` (the semantic conventions' fallback).
    """

    def on_end(self, span: ReadableSpan) -> None:
        if span.status.status_code is not StatusCode.ERROR:
            return
        try:
            error_type = (span.attributes or {}).get(A.ERROR_TYPE) or _exception_type(span) or "_OTHER"
            s = _instruments().errors
            s.instrument.add(1, s.attributes((str(error_type),)))
        except Exception:  # counting must never break span export
            pass


def _exception_type(span: ReadableSpan) -> Any:
    for event in reversed(span.events or ()):
        if event.name == "exception" and event.attributes:
            return event.attributes.get("exception.type")
    return None


def install(tracer_provider: Any) -> None:
    """Count error spans on ``tracer_provider``; the KPI instruments exist from the start."""
    _instruments()
    tracer_provider.add_span_processor(ErrorCountingSpanProcessor())
