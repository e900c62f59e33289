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
}

__all__ = ["SPAN_KIND_ATTRIBUTE", "TradingSpanKind", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_trading' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
