"""otel-trading: OpenTelemetry for trading systems.

Launch an unchanged app with ``opentelemetry-instrument python bot.py``, or call
``otel_trading.configure()`` yourself. Everything is set by environment variables
(see ``otel-trading settings``).

Names are imported on first use: the distro must validate the environment before
any SDK module reads it, so importing this package loads nothing of the SDK.
"""

from __future__ import annotations

import importlib

from otel_trading.trading.kinds import SPAN_KIND_ATTRIBUTE, TradingSpanKind

_EXPORTS = {
    "configure": "otel_trading.bootstrap.configure",
    "current": "otel_trading.bootstrap.configure",
    "Telemetry": "otel_trading.bootstrap.configure",
    "traced": "otel_trading.trading.tracing",
    "trading_span": "otel_trading.trading.tracing",
    "market_data_span": "otel_trading.trading.tracing",
    "signal_span": "otel_trading.trading.tracing",
    "model_span": "otel_trading.trading.tracing",
    "risk_span": "otel_trading.trading.tracing",
    "order_span": "otel_trading.trading.tracing",
    "execution_span": "otel_trading.trading.tracing",
    "fill_span": "otel_trading.trading.tracing",
    "portfolio_span": "otel_trading.trading.tracing",
    "backtest_span": "otel_trading.trading.tracing",
    "reconciliation_span": "otel_trading.trading.tracing",
    "mark_tick": "otel_trading.trading.tracing",
    "order_link": "otel_trading.trading.tracing",
    "order_traceparent": "otel_trading.trading.tracing",
    "order_acked": "otel_trading.trading.tracing",
    "add_event": "otel_trading.trading.tracing",
    "set_attributes": "otel_trading.trading.tracing",
    "record_error": "otel_trading.trading.tracing",
    "inject": "otel_trading.trading.propagation",
    "extract": "otel_trading.trading.propagation",
    "producer_span": "otel_trading.trading.propagation",
    "consumer_span": "otel_trading.trading.propagation",
    "correlation": "otel_trading.trading.propagation",
    "correlation_id": "otel_trading.trading.propagation",
    "current_event_id": "otel_trading.trading.propagation",
    "trading_metrics": "otel_trading.trading.metrics",
    "record_order": "otel_trading.trading.metrics",
    "record_rejection": "otel_trading.trading.metrics",
    "record_fill": "otel_trading.trading.metrics",
    "record_order_ack": "otel_trading.trading.metrics",
    "record_fill_latency": "otel_trading.trading.metrics",
    "record_tick_to_trade": "otel_trading.trading.metrics",
    "record_slippage": "otel_trading.trading.metrics",
    "set_pnl": "otel_trading.trading.metrics",
    "set_open_positions": "otel_trading.trading.metrics",
    "record_tick": "otel_trading.trading.metrics",
    "record_stage": "otel_trading.trading.metrics",
    "get_logger": "otel_trading.logs",
    "AUDIT": "otel_trading.logs",
    "BUSINESS": "otel_trading.logs",
    "configure_redaction": "otel_trading.logs",
    "start_thread": "otel_trading.logs",
    "submit": "otel_trading.logs",
    "wrap": "otel_trading.logs",
    "TradingSampler": "otel_trading.sampling",
    "trading_sampler": "otel_trading.sampling",
    "parentbased_trading_sampler": "otel_trading.sampling",
}

__all__ = ["SPAN_KIND_ATTRIBUTE", "TradingSpanKind", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_trading' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
