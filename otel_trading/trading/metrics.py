"""Trading metrics: OpenTelemetry instruments with fixed names, units and buckets.

Instruments come from the *global* MeterProvider and are rebuilt when it
changes, so recording works whether telemetry was configured before or after
import (until then the API's no-op provider makes recording free).

Cardinality: ``trading.symbol`` is added only with
``OTEL_TRADING_PER_SYMBOL_METRICS=true``, and the configured MeterProvider caps
every metric at ``OTEL_TRADING_CARDINALITY_LIMIT`` series (``views.py``; the rest
fold into ``otel.metric.overflow=true``).
"""

from __future__ import annotations

import enum
import logging
import os
import sys
import time
from array import array
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import INVALID_SPAN_CONTEXT

from otel_trading import config, forksafe
from otel_trading.report import report_once
from otel_trading.trading import attributes as A

_log = logging.getLogger("otel_trading")

SLIPPAGE_BUCKETS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
"""Basis points of slippage magnitude; ``trading.slippage.direction`` says adverse or favorable
(OTel histograms take no negative values, and Prometheus drops ``_sum`` of negative buckets)."""

_warned: set[str] = set()


def bad_input(message: str, error: type[Exception] = ValueError) -> None:
    """Raise in strict mode; otherwise log ``message`` once and let the caller drop the input."""
    if config.current().strict:
        raise error(message)
    if message not in _warned and len(_warned) < 1000:
        _warned.add(message)
        _log.warning("otel-trading: %s (dropped; set OTEL_TRADING_STRICT=true to raise)", message)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def attribute_value(value: Any) -> Any:
    """A value OTel can export, or None. Enums give their value, Decimals a float, ints beyond
    64 bits their text (OTLP cannot encode them, and one would fail the whole export batch)."""
    kind = type(value)
    if kind is str or kind is float or kind is bool:
        return value
    if kind is int:
        return value if INT64_MIN <= value <= INT64_MAX else str(value)
    if isinstance(value, enum.Enum):
        return attribute_value(value.value)
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return attribute_value(base(value))
    decimal = sys.modules.get("decimal")  # not imported at start-up: a Decimal exists only once its module does
    if decimal is not None and isinstance(value, decimal.Decimal):
        return float(value)
    return None


class _Series:
    """One instrument plus a cache of its attribute dicts (bounded by the cardinality limit)."""

    __slots__ = ("instrument", "keys", "cache")
    cache: dict[tuple, dict]

    def __init__(self, instrument: Any, keys: tuple[str, ...]):
        self.instrument, self.keys, self.cache = instrument, keys, {}

    def attributes(self, values: tuple) -> dict:
        attrs = self.cache.get(values)
        if attrs is None:
            attrs = {}
            for key, value in zip(self.keys, values):
                if value is not None:
                    value = attribute_value(value)
                    attrs[key] = value if value is not None else "invalid"
            if len(self.cache) < config.current().cardinality_limit:
                self.cache[values] = attrs
        return attrs


class TradingMetrics:
    """Every trading instrument, created on one MeterProvider."""

    def __init__(self, meter_provider: metrics_api.MeterProvider | None = None):
        provider = meter_provider or metrics_api.get_meter_provider()
        meter = provider.get_meter("otel_trading")
        durations = tuple(config.current().latency_buckets)

        def counter(name, unit, doc, *keys):
            return _Series(meter.create_counter(name, unit, doc), keys)

        def histogram(name, unit, doc, buckets, *keys):
            return _Series(meter.create_histogram(name, unit, doc, explicit_bucket_boundaries_advisory=buckets), keys)

        def gauge(name, unit, doc, *keys):
            return _Series(meter.create_gauge(name, unit, doc), keys)

        self.orders = counter("trading.orders", "{order}", "Orders sent, by side, type, venue and status", A.SIDE, A.ORDER_TYPE, A.VENUE, A.ORDER_STATUS, A.STRATEGY_ID, A.SYMBOL)
        self.rejections = counter("trading.order.rejections", "{order}", "Orders rejected, by reason", A.VENUE, A.REJECT_REASON, A.STRATEGY_ID, A.SYMBOL)
        self.fills = counter("trading.fills", "{fill}", "Fills received", A.SIDE, A.VENUE, A.LIQUIDITY, A.SYMBOL)
        self.ack_duration = histogram("trading.order.ack.duration", "s", "Order sent to venue acknowledgement", durations, A.VENUE, A.ORDER_TYPE)
        self.fill_duration = histogram("trading.order.fill.duration", "s", "Order sent to (first) fill", durations, A.VENUE, A.ORDER_TYPE)
        self.tick_to_trade = histogram("trading.tick_to_trade.duration", "s", "Market data received to order sent", durations, A.STRATEGY_ID)
        self.slippage = histogram("trading.order.slippage", "{bp}", "Fill price against decision price, basis points, by direction (adverse, favorable)", SLIPPAGE_BUCKETS, A.VENUE, A.SIDE, A.SLIPPAGE_DIRECTION, A.SYMBOL)
        self.pnl = gauge("trading.pnl", "{currency}", "P&L in the account currency (trading.currency)", A.PNL_TYPE, A.STRATEGY_ID, A.CURRENCY, A.SYMBOL)
        self.positions = gauge("trading.positions.open", "{position}", "Open positions", A.STRATEGY_ID)
        self.ticks = counter("trading.market_data.ticks", "{tick}", "Market data ticks received, by feed", A.FEED, A.SYMBOL)
        self.stage_processed = counter("trading.pipeline.stage.processed", "{event}", "Events a pipeline stage processed", A.STAGE)
        self.stage_lag = histogram("trading.pipeline.stage.lag", "s", "Event created to processed by a stage", durations, A.STAGE)
        # every collection calls this gauge's callbacks before it reads the instruments: the deferred records land first
        meter.create_observable_gauge("trading.pipeline.stage.staleness", [flush_deferred, _staleness], "s", "Seconds since each pipeline stage last did work")


_last_work: dict[str, float] = {}  # stage -> time.monotonic() of its last record_stage()
_last_tick: dict[Any, float] = {}  # feed -> time.monotonic() of its last record_tick()
_T = TypeVar("_T")


class PerProvider(Generic[_T]):
    """Instruments built once per global MeterProvider, and again when it changes: recording works
    whether telemetry was configured before or after import (the API's no-op provider until then)."""

    def __init__(self, build: Callable[[metrics_api.MeterProvider], _T]):
        self._build = build
        self._provider: metrics_api.MeterProvider | None = None
        self._value: _T | None = None
        self._lock = forksafe.lock()

    def get(self) -> _T:
        provider = metrics_api.get_meter_provider()
        if self._provider is not provider:
            with self._lock:
                if self._provider is not provider:
                    self._value = self._build(provider)
                    self._provider = provider
        return self._value  # type: ignore[return-value]  # set above for this provider


_instruments = PerProvider(TradingMetrics)


def _staleness(options: CallbackOptions) -> Iterable[Observation]:
    now = time.monotonic()
    return [Observation(now - last, {A.STAGE: stage}) for stage, last in list(_last_work.items())]


def trading_metrics() -> TradingMetrics:
    """The instruments on the current global MeterProvider (rebuilt when it changes)."""
    return _instruments.get()


def _symbol(symbol: Any) -> Any:
    return symbol if symbol is not None and config.current().per_symbol_metrics else None


def record_order(side: Any, order_type: Any, venue: Any, status: Any = "new", strategy_id: Any = None, symbol: Any = None, context: Context | None = None, count: int = 1) -> None:
    s = trading_metrics().orders
    s.instrument.add(count, s.attributes((side, order_type, venue, status, strategy_id, _symbol(symbol))), context)


def record_rejection(reason: Any, venue: Any = None, strategy_id: Any = None, symbol: Any = None) -> None:
    s = trading_metrics().rejections
    s.instrument.add(1, s.attributes((venue, reason, strategy_id, _symbol(symbol))))


def record_fill(side: Any, venue: Any = None, liquidity: Any = None, symbol: Any = None, context: Context | None = None, count: int = 1) -> None:
    s = trading_metrics().fills
    s.instrument.add(count, s.attributes((side, venue, liquidity, _symbol(symbol))), context)


def record_order_ack(seconds: float, venue: Any = None, order_type: Any = None, context: Context | None = None) -> None:
    s = trading_metrics().ack_duration
    s.instrument.record(seconds, s.attributes((venue, order_type)), context)


def record_fill_latency(seconds: float, venue: Any = None, order_type: Any = None) -> None:
    s = trading_metrics().fill_duration
    s.instrument.record(seconds, s.attributes((venue, order_type)))


def record_tick_to_trade(seconds: float, strategy_id: Any = None) -> None:
    s = trading_metrics().tick_to_trade
    s.instrument.record(seconds, s.attributes((strategy_id,)))


def record_slippage(bps: float, venue: Any = None, side: Any = None, symbol: Any = None) -> None:
    """Signed slippage in basis points: positive is adverse (paid more / received less), negative favorable."""
    s = trading_metrics().slippage
    direction = "adverse" if bps >= 0 else "favorable"
    s.instrument.record(abs(bps), s.attributes((venue, side, direction, _symbol(symbol))))


def set_pnl(value: float, pnl_type: str = "unrealized", strategy_id: Any = None, currency: Any = "USD", symbol: Any = None) -> None:
    """Current P&L; ``pnl_type`` is ``realized`` or ``unrealized``."""
    s = trading_metrics().pnl
    s.instrument.set(value, s.attributes((pnl_type, strategy_id, currency, _symbol(symbol))))


def set_open_positions(count: int, strategy_id: Any = None) -> None:
    s = trading_metrics().positions
    s.instrument.set(count, s.attributes((strategy_id,)))


def record_tick(feed: Any, symbol: Any = None, count: int = 1) -> None:
    if len(_last_tick) < 1000 or feed in _last_tick:
        _last_tick[feed] = time.monotonic()
    s = trading_metrics().ticks
    s.instrument.add(count, s.attributes((feed, _symbol(symbol))))


def record_stage(stage: str, count: int = 1, lag_seconds: float | None = None) -> None:
    """A pipeline stage did work: counts events, records their lag, resets its staleness."""
    _last_work[stage] = time.monotonic()
    m = trading_metrics()
    s = m.stage_processed
    attrs = s.attributes((stage,))
    s.instrument.add(count, attrs)
    if lag_seconds is not None:
        m.stage_lag.instrument.record(lag_seconds, m.stage_lag.attributes((stage,)))


# -- deferred records ---------------------------------------------------------------------

DEFERRED_MAX = 1 << 19  # values queued (8 bytes each: 4 MB at most): a minute of 8,700 orders a second between two collections
_MAX_KEYS = 4096  # attribute sets queued per kind (counts, values); a new one beyond is recorded at once
_get_current_span = trace_api.get_current_span
_lock = forksafe.lock()
_acquire, _release = _lock.acquire, _lock.release
_counts: dict[tuple, list] = {}  # (record, args) -> [calls, last span context]
_values: dict[tuple, list] = {}  # (record, args after the value) -> [values, index of the largest, its span context, last span context]
_queued = 0  # values in _values


def defer(record: Callable[..., None], *args: Any, span: trace_api.Span | None = None) -> None:
    """``record(*args, context=...)`` at the next metric collection, not now.

    An SDK add or record costs about as much as a span (attribute hashing, locks, the exemplar
    offer), so instrumented library calls queue theirs, pre-aggregated by arguments: a count
    (``record_order``, ``record_fill``) is one integer per attribute set, recorded as one
    ``add(n)``; any other record takes its value first, kept in an array of doubles per attribute
    set. Every collection records them before it reads the instruments. Exemplars still point at
    the calls' traces: the last call's for a count; for values, the largest's and the last's (the
    span context is kept, not the span: it would hold its attributes and events). Memory stays
    bounded: past ``DEFERRED_MAX`` values the caller records the queue itself, past ``_MAX_KEYS``
    attribute sets a new one is recorded at once. Nothing is lost.
    """
    global _queued
    span_context = (span or _get_current_span()).get_span_context()
    _acquire()  # one frame, one lock (acquire/release: cheaper than a with block), a few dict operations
    try:
        if record in _COUNTS:
            key = (record, args)
            entry = _counts.get(key)
            if entry is not None:
                entry[0] += 1
                entry[1] = span_context
                return
            queued = len(_counts) < _MAX_KEYS
            if queued:
                _first(_counts)[key] = [1, span_context]
        else:
            value, key = args[0], (record, args[1:])
            entry = _values.get(key)
            queued = entry is not None or len(_values) < _MAX_KEYS
            if entry is not None:
                values = entry[0]
                values.append(value)
                if value > values[entry[1]]:
                    entry[1] = len(values) - 1
                    entry[2] = span_context
                entry[3] = span_context
                _queued += 1
            elif queued:
                _first(_values)[key] = [array("d", (value,)), 0, span_context, span_context]  # a value that is no number raises here
                _queued += 1
    except TypeError:  # an unhashable argument or a value that is no number: recorded (or reported) now
        queued = False
    finally:
        _release()
    if not queued:
        _record_deferred(record, args, span_context, 1)
    elif _queued > DEFERRED_MAX:
        flush_deferred()


def _first(queue: dict) -> dict:
    """``queue``, its first entry about to be added: the current provider's instruments must exist, they carry the collection hook."""
    if not _counts and not _values:
        _instruments.get()
    return queue


def flush_deferred(options: CallbackOptions | None = None) -> Iterable[Observation]:
    """Record what ``defer`` queued (a collection callback: observes nothing itself)."""
    global _counts, _values, _queued
    with _lock:
        counts, values = _counts, _values
        _counts, _values, _queued = {}, {}, 0
    for (record, args), (n, span_context) in counts.items():
        _record_deferred(record, args, span_context, n)
    for (record, args), (queued, largest, largest_context, last_context) in values.items():
        last = len(queued) - 1
        for i, value in enumerate(queued):  # without a trace: the two exemplars come last, the reservoir keeps them
            if i != largest and i != last:
                _record_deferred(record, (value, *args), INVALID_SPAN_CONTEXT, 1)
        if largest != last:
            _record_deferred(record, (queued[largest], *args), largest_context, 1)
        _record_deferred(record, (queued[last], *args), last_context, 1)
    return ()


def deferred() -> int:
    """Records queued: attribute sets counted plus values (tests, health checks)."""
    return len(_counts) + _queued


def _record_deferred(record: Callable[..., None], args: tuple, span_context: trace_api.SpanContext, count: int) -> None:
    try:
        context = trace_api.set_span_in_context(trace_api.NonRecordingSpan(span_context), _EMPTY_CONTEXT) if span_context.is_valid else _EMPTY_CONTEXT
        if count == 1:
            record(*args, context=context)
        else:
            record(*args, context=context, count=count)
    except Exception as exc:  # noqa: BLE001 - one bad record must not stop the others
        report_once(f"could not record a deferred trading metric ({exc!r})", key=("deferred", type(exc)))


def forget_deferred() -> None:
    """Drop the queue: a forked child's copy is its parent's to record (tests: another provider's)."""
    global _queued
    _counts.clear()
    _values.clear()
    _queued = 0


_COUNTS = frozenset((record_order, record_fill))  # counters: the same arguments queued n times are one add(n)


_EMPTY_CONTEXT = Context()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=forget_deferred)  # the parent records its own queue


def last_tick(feed: Any) -> float | None:
    """``time.monotonic()`` of the feed's last ``record_tick`` (health checks), None if never."""
    return _last_tick.get(feed)


def last_stage_work(stage: str) -> float | None:
    """``time.monotonic()`` of the stage's last ``record_stage`` (health checks), None if never."""
    return _last_work.get(stage)


_installed = {"system_metrics": False}


def install(settings: Any, meter_provider: metrics_api.MeterProvider | None = None) -> None:
    """Start system metrics when OTEL_TRADING_SYSTEM_METRICS=true. Idempotent."""
    if getattr(settings, "system_metrics", False) and not _installed["system_metrics"]:
        try:
            from opentelemetry.instrumentation.system_metrics import (
                SystemMetricsInstrumentor,
            )
        except ImportError:  # the optional extra (with psutil) is not installed
            report_once("OTEL_TRADING_SYSTEM_METRICS=true needs the system extra: pip install 'otel-trading[system]'; system metrics are off")
            return
        # CPU, memory, GC and threads; the upstream exclusion variable still wins when set.
        selected = None if settings.system_metrics_excluded_metrics is not None else SYSTEM_METRICS
        SystemMetricsInstrumentor(config=selected).instrument(meter_provider=meter_provider)
        _installed["system_metrics"] = True


SYSTEM_METRICS: dict[str, list[str] | None] = {
    "process.cpu.time": ["user", "system"],
    "process.cpu.utilization": ["user", "system"],
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.thread.count": None,
    "process.open_file_descriptor.count": None,
    "process.context_switches": ["involuntary", "voluntary"],
    "cpython.gc.collections": None,
    "cpython.gc.collected_objects": None,
    "cpython.gc.uncollectable_objects": None,
    "system.cpu.utilization": ["idle", "user", "system", "irq"],
    "system.memory.usage": ["used", "free", "cached"],
    "system.disk.io": ["read", "write"],
}
"""Process CPU, memory, threads and GC plus host CPU, memory and disk I/O: what a trading box needs, not all of psutil."""
