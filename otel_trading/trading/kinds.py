"""Trading span kinds: what a span does in a trading system.

Each kind maps onto one of OpenTelemetry's five SpanKinds (so Jaeger and span
metrics treat it correctly) and says whether the trading sampler must keep it.
The kind travels as the span attribute ``trading.span.kind``, set when the span
starts so that samplers can see it.
"""

from __future__ import annotations

import enum

from opentelemetry.trace import SpanKind

SPAN_KIND_ATTRIBUTE = "trading.span.kind"


class TradingSpanKind(str, enum.Enum):
    MARKET_DATA = "market_data"  # a tick or book update received from a feed
    SIGNAL = "signal"  # strategy logic turning data into intent
    MODEL = "model"  # ML predict / train
    RISK = "risk"  # pre-trade risk check
    ORDER = "order"  # submit / cancel / amend sent to a broker or venue
    EXECUTION = "execution"  # a fill or execution report received
    PORTFOLIO = "portfolio"  # position / P&L update
    BACKTEST = "backtest"  # offline simulation run
    RECONCILIATION = "reconciliation"  # books vs broker comparison

    @property
    def span_kind(self) -> SpanKind:
        return _SPAN_KINDS[self]

    @property
    def must_keep(self) -> bool:
        """True for kinds whose traces the trading sampler never drops by default."""
        return self in MUST_KEEP

    @classmethod
    def parse(cls, value: str | TradingSpanKind) -> TradingSpanKind:
        """Accept a member or its lowercase name; raise ValueError naming the accepted names."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            accepted = ", ".join(k.value for k in cls)
            raise ValueError(f"unknown trading span kind {value!r}; accepted: {accepted}") from None


_SPAN_KINDS = {
    TradingSpanKind.MARKET_DATA: SpanKind.CONSUMER,
    TradingSpanKind.SIGNAL: SpanKind.INTERNAL,
    TradingSpanKind.MODEL: SpanKind.INTERNAL,
    TradingSpanKind.RISK: SpanKind.INTERNAL,
    TradingSpanKind.ORDER: SpanKind.CLIENT,
    TradingSpanKind.EXECUTION: SpanKind.CONSUMER,
    TradingSpanKind.PORTFOLIO: SpanKind.INTERNAL,
    TradingSpanKind.BACKTEST: SpanKind.INTERNAL,
    TradingSpanKind.RECONCILIATION: SpanKind.INTERNAL,
}

MUST_KEEP = frozenset(
    {
        TradingSpanKind.ORDER,
        TradingSpanKind.EXECUTION,
        TradingSpanKind.RISK,
        TradingSpanKind.RECONCILIATION,
    }
)
