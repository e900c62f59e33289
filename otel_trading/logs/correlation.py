"""Trace correlation fields for log lines: ids, trading context, correlation id, service.

Everything is read from the current OpenTelemetry context with plain dict
lookups, and the per-span work (hex formatting of the ids, reading the trading
attributes) is cached per span: a log line inside an already seen span costs a
few dict lookups.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as _otel_context
from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.trace.propagation import _SPAN_KEY

# baggage key that carries the business correlation id (set by otel_trading.trading.propagation)
CORRELATION_BAGGAGE_KEY = "trading.correlation_id"

# span attribute -> log field, read from the active span
TRADING_FIELDS: tuple[tuple[str, str], ...] = (
    ("trading.symbol", "symbol"),
    ("trading.order.id", "order_id"),
    ("trading.strategy.id", "strategy"),
    ("trading.venue", "venue"),
    ("trading.side", "side"),
)

try:  # the contextvars runtime context: read the ContextVar directly
    _current_context = _otel_context._RUNTIME_CONTEXT._current_context.get  # type: ignore[attr-defined]
    _current_context()
except Exception:  # another runtime context implementation
    _current_context = _otel_context.get_current

_EMPTY: tuple = ()
_cache: dict[int, tuple] = {}
_CACHE_MAX = 4096


def _span_entry(span: Any) -> tuple | None:
    """(trace_hex, span_hex, trading_items, n_attributes, attribute_dict, span) for ``span``; None when invalid.

    Cached per span object; refreshed when the span gains attributes.
    """
    entry = _cache.get(id(span))
    if entry is not None and entry[5] is span:
        store = entry[4]
        if store is None or len(store) == entry[3]:
            return entry
    ctx = span.get_span_context()
    if not ctx.span_id:
        return None
    attrs = getattr(span, "_attributes", None)
    store = getattr(attrs, "_dict", attrs) if attrs is not None else None
    if store is not None and not isinstance(store, dict):
        store = None
    items = _EMPTY
    if store:
        found = [(field, store[key]) for key, field in TRADING_FIELDS if key in store]
        items = tuple(found) if found else _EMPTY
    entry = (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"), items, len(store) if store is not None else 0, store, span)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[id(span)] = entry
    return entry


def current_fields(context: Any = None) -> dict[str, Any]:
    """The correlation fields of the current (or given) context, as a new dict.

    Keys present only when known: ``trace_id``, ``span_id``, ``correlation_id``
    and the trading fields (``symbol``, ``order_id``, ``strategy``, ``venue``, ``side``).
    """
    out: dict[str, Any] = {}
    add_correlation(out, _current_context() if context is None else context)
    return out


def add_correlation(event_dict: dict, ctx: Any) -> None:
    """Set ``trace_id``/``span_id`` and, unless already bound, the trading fields and ``correlation_id``."""
    span = ctx.get(_SPAN_KEY)
    if span is not None:
        entry = _cache.get(id(span))  # the cache hit of _span_entry() inlined: this runs for every log line
        if entry is None or entry[5] is not span or (entry[4] is not None and len(entry[4]) != entry[3]):
            entry = _span_entry(span)
        if entry is not None:
            event_dict["trace_id"] = entry[0]
            event_dict["span_id"] = entry[1]
            for field, value in entry[2]:
                if field not in event_dict:
                    event_dict[field] = value
    bag = ctx.get(_BAGGAGE_KEY)
    if bag:
        cid = bag.get(CORRELATION_BAGGAGE_KEY)
        if cid is not None and "correlation_id" not in event_dict:
            event_dict["correlation_id"] = cid
