"""otel-trading: OpenTelemetry for trading systems.

Launch an unchanged app with ``opentelemetry-instrument python bot.py``, or call
``otel_trading.configure()`` yourself. Everything is set by environment variables
(see ``otel-trading settings``).

Names are imported on first use: the distro must validate the environment before
any SDK module reads it, so importing this package loads nothing of the SDK.
Type checkers see the same names through the ``TYPE_CHECKING`` imports below
(a test keeps them and ``_EXPORTS`` equal).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from otel_trading.trading.kinds import SPAN_KIND_ATTRIBUTE, TradingSpanKind

__version__ = "0.1.0"  # the one place it is written: pyproject.toml reads it; the resource carries it without a metadata lookup

if TYPE_CHECKING:  # explicit re-exports (``name as name``) for type checkers
    from otel_trading.bootstrap.configure import (
        Telemetry as Telemetry,
    )
    from otel_trading.bootstrap.configure import (
        configure as configure,
    )
    from otel_trading.bootstrap.configure import (
        current as current,
    )
    from otel_trading.health import (
        register_health_check as register_health_check,
    )
    from otel_trading.logs import (
        AUDIT as AUDIT,
    )
    from otel_trading.logs import (
        BUSINESS as BUSINESS,
    )
    from otel_trading.logs import (
        ConsoleFormatter as ConsoleFormatter,
    )
    from otel_trading.logs import (
        ContextThread as ContextThread,
    )
    from otel_trading.logs import (
        JsonFormatter as JsonFormatter,
    )
    from otel_trading.logs import (
        TraceContextFilter as TraceContextFilter,
    )
    from otel_trading.logs import (
        configure_redaction as configure_redaction,
    )
    from otel_trading.logs import (
        get_logger as get_logger,
    )
    from otel_trading.logs import (
        start_thread as start_thread,
    )
    from otel_trading.logs import (
        submit as submit,
    )
    from otel_trading.logs import (
        wrap as wrap,
    )
    from otel_trading.redaction import (
        Redactor as Redactor,
    )
    from otel_trading.sampling import (
        TradingSampler as TradingSampler,
    )
    from otel_trading.sampling import (
        parentbased_trading_sampler as parentbased_trading_sampler,
    )
    from otel_trading.sampling import (
        trading_sampler as trading_sampler,
    )
    from otel_trading.trading.kpis import (
        record_market_data_latency as record_market_data_latency,
    )
    from otel_trading.trading.kpis import (
        record_trade as record_trade,
    )
    from otel_trading.trading.kpis import (
        set_portfolio_value as set_portfolio_value,
    )
    from otel_trading.trading.kpis import (
        set_position as set_position,
    )
    from otel_trading.trading.metrics import (
        record_fill as record_fill,
    )
    from otel_trading.trading.metrics import (
        record_fill_latency as record_fill_latency,
    )
    from otel_trading.trading.metrics import (
        record_order as record_order,
    )
    from otel_trading.trading.metrics import (
        record_order_ack as record_order_ack,
    )
    from otel_trading.trading.metrics import (
        record_rejection as record_rejection,
    )
    from otel_trading.trading.metrics import (
        record_slippage as record_slippage,
    )
    from otel_trading.trading.metrics import (
        record_stage as record_stage,
    )
    from otel_trading.trading.metrics import (
        record_tick as record_tick,
    )
    from otel_trading.trading.metrics import (
        record_tick_to_trade as record_tick_to_trade,
    )
    from otel_trading.trading.metrics import (
        set_open_positions as set_open_positions,
    )
    from otel_trading.trading.metrics import (
        set_pnl as set_pnl,
    )
    from otel_trading.trading.metrics import (
        trading_metrics as trading_metrics,
    )
    from otel_trading.trading.propagation import (
        consumer_span as consumer_span,
    )
    from otel_trading.trading.propagation import (
        correlation as correlation,
    )
    from otel_trading.trading.propagation import (
        correlation_id as correlation_id,
    )
    from otel_trading.trading.propagation import (
        current_event_id as current_event_id,
    )
    from otel_trading.trading.propagation import (
        extract as extract,
    )
    from otel_trading.trading.propagation import (
        inject as inject,
    )
    from otel_trading.trading.propagation import (
        producer_span as producer_span,
    )
    from otel_trading.trading.tracing import (
        add_event as add_event,
    )
    from otel_trading.trading.tracing import (
        backtest_span as backtest_span,
    )
    from otel_trading.trading.tracing import (
        execution_span as execution_span,
    )
    from otel_trading.trading.tracing import (
        fill_span as fill_span,
    )
    from otel_trading.trading.tracing import (
        mark_tick as mark_tick,
    )
    from otel_trading.trading.tracing import (
        market_data_span as market_data_span,
    )
    from otel_trading.trading.tracing import (
        model_span as model_span,
    )
    from otel_trading.trading.tracing import (
        order_acked as order_acked,
    )
    from otel_trading.trading.tracing import (
        register_order as register_order,
    )
    from otel_trading.trading.tracing import (
        order_link as order_link,
    )
    from otel_trading.trading.tracing import (
        order_span as order_span,
    )
    from otel_trading.trading.tracing import (
        order_traceparent as order_traceparent,
    )
    from otel_trading.trading.tracing import (
        portfolio_span as portfolio_span,
    )
    from otel_trading.trading.tracing import (
        reconciliation_span as reconciliation_span,
    )
    from otel_trading.trading.tracing import (
        record_error as record_error,
    )
    from otel_trading.trading.tracing import (
        risk_span as risk_span,
    )
    from otel_trading.trading.tracing import (
        set_attributes as set_attributes,
    )
    from otel_trading.trading.tracing import (
        signal_span as signal_span,
    )
    from otel_trading.trading.tracing import (
        traced as traced,
    )
    from otel_trading.trading.tracing import (
        trading_span as trading_span,
    )

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
    "register_order": "otel_trading.trading.tracing",
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
    "record_trade": "otel_trading.trading.kpis",
    "set_position": "otel_trading.trading.kpis",
    "set_portfolio_value": "otel_trading.trading.kpis",
    "record_market_data_latency": "otel_trading.trading.kpis",
    "register_health_check": "otel_trading.health",
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
    "Redactor": "otel_trading.redaction",
    "JsonFormatter": "otel_trading.logs",
    "ConsoleFormatter": "otel_trading.logs",
    "ContextThread": "otel_trading.logs",
    "TraceContextFilter": "otel_trading.logs",
}

__all__ = ["SPAN_KIND_ATTRIBUTE", "TradingSpanKind", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_trading' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
