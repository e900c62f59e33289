"""otel-trading: OpenTelemetry for trading systems.

Launch an unchanged app with ``opentelemetry-instrument python bot.py``, or call
``otel_trading.configure()`` yourself. Everything is set by environment variables
(see ``otel-trading settings``).

Names are imported on first use: the distro must validate the environment before
any SDK module reads it, so importing this package loads nothing of the SDK.
"""

from __future__ import annotations

import importlib

from otel_trading.kinds import SPAN_KIND_ATTRIBUTE, TradingSpanKind

_EXPORTS = {
    "configure": "otel_trading.sdk",
    "current": "otel_trading.sdk",
    "Telemetry": "otel_trading.sdk",
    "traced": "otel_trading.tracing",
    "trading_span": "otel_trading.tracing",
    "market_data_span": "otel_trading.tracing",
    "signal_span": "otel_trading.tracing",
    "model_span": "otel_trading.tracing",
    "risk_span": "otel_trading.tracing",
    "order_span": "otel_trading.tracing",
    "execution_span": "otel_trading.tracing",
    "fill_span": "otel_trading.tracing",
    "portfolio_span": "otel_trading.tracing",
    "backtest_span": "otel_trading.tracing",
    "reconciliation_span": "otel_trading.tracing",
    "mark_tick": "otel_trading.tracing",
    "order_link": "otel_trading.tracing",
    "order_traceparent": "otel_trading.tracing",
    "order_acked": "otel_trading.tracing",
    "add_event": "otel_trading.tracing",
    "set_attributes": "otel_trading.tracing",
    "record_error": "otel_trading.tracing",
    "inject": "otel_trading.propagation",
    "extract": "otel_trading.propagation",
    "producer_span": "otel_trading.propagation",
    "consumer_span": "otel_trading.propagation",
    "correlation": "otel_trading.propagation",
    "correlation_id": "otel_trading.propagation",
    "current_event_id": "otel_trading.propagation",
    "trading_metrics": "otel_trading.metrics",
    "record_order": "otel_trading.metrics",
    "record_rejection": "otel_trading.metrics",
    "record_fill": "otel_trading.metrics",
    "record_order_ack": "otel_trading.metrics",
    "record_fill_latency": "otel_trading.metrics",
    "record_tick_to_trade": "otel_trading.metrics",
    "record_slippage": "otel_trading.metrics",
    "set_pnl": "otel_trading.metrics",
    "set_open_positions": "otel_trading.metrics",
    "record_tick": "otel_trading.metrics",
    "record_stage": "otel_trading.metrics",
    "record_trade": "otel_trading.kpis",
    "set_position": "otel_trading.kpis",
    "set_portfolio_value": "otel_trading.kpis",
    "record_market_data_latency": "otel_trading.kpis",
    "health": "otel_trading.health",
    "register_health_check": "otel_trading.health",
    "get_logger": "otel_trading.logs",
    "AUDIT": "otel_trading.logs",
    "BUSINESS": "otel_trading.logs",
    "configure_redaction": "otel_trading.logs",
    "start_thread": "otel_trading.logs",
    "submit": "otel_trading.logs",
    "wrap": "otel_trading.logs",
    "TradingSampler": "otel_trading.sampler",
    "trading_sampler": "otel_trading.sampler",
    "parentbased_trading_sampler": "otel_trading.sampler",
}

__all__ = ["SPAN_KIND_ATTRIBUTE", "TradingSpanKind", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_trading' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = imported if module.endswith("." + name) else getattr(imported, name)
    globals()[name] = value
    return value
