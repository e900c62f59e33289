"""Tracing helpers for trading code: thin, fast wrappers over the OpenTelemetry API.

``with order_span(order_id="o-1", side="buy"):`` starts a span on the global
TracerProvider with SpanKind, ``trading.span.kind`` and the ``trading.*``
attributes set at start (so samplers see them), makes it current, records an
exception with its stack trace and ERROR status, and ends it. ``@traced`` does
the same for sync and async functions. Everything stays plain OpenTelemetry:
a span started with the raw API and ``trading.span.kind`` in its attributes is
a trading span too.

Cheap when dropped: the helpers ask the trading sampler (``drops_root``) or
look at an unsampled parent *before* building attributes, and then only hand
back a non-recording span. Bad input (unknown keyword, None id, odd type) is
dropped with one warning; ``OTEL_TRADING_STRICT=true`` raises instead.

Orders live longer than spans: an order span registers its context in a
bounded LRU by order id, so a later fill or cancel (other thread or task)
links to it; ``order_traceparent(order_id)`` gives a string another process
passes back as ``order_traceparent=`` to link the same way.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextvars import Token
from typing import Any, Literal, NamedTuple

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import (
    DEFAULT_TRACE_STATE,
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation import (
    _SPAN_KEY,  # the current span's context key, read directly on the hot path
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otel_trading import config
from otel_trading.trading import metrics as _metrics
from otel_trading.trading.attributes import KEYWORDS, ORDER_ID, SPAN_KIND, TICK_TO_TRADE
from otel_trading.trading.kinds import TradingSpanKind
from otel_trading.trading.metrics import (
    INT64_MAX,
    INT64_MIN,
    attribute_value,
    bad_input,
)

_time_ns = time.time_ns
_getrandbits = random.getrandbits
_get_current_span = trace_api.get_current_span
_Context = context_api.Context
_context_var = getattr(context_api._RUNTIME_CONTEXT, "_current_context", None)  # the default (contextvars) runtime's variable
_get_current: Callable[[], context_api.Context]
_attach: Callable[[context_api.Context], Token[context_api.Context]]
_reset: Callable[[Token[context_api.Context]], Any]
if isinstance(_context_var, contextvars.ContextVar):  # read and set directly on the hot path: C calls, no Python frames
    _get_current, _attach, _reset = _context_var.get, _context_var.set, _context_var.reset
else:  # another runtime context (OTEL_PYTHON_CONTEXT): through the API
    _get_current, _attach, _reset = context_api.get_current, context_api.attach, context_api._RUNTIME_CONTEXT.detach

_context_logger = logging.getLogger("opentelemetry.context")  # where the API reports a failed detach
_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)
_PLAIN = (str, int, float, bool)  # exact types; bool is not int here
_NO_OPTIONS = (None, None, None)
_EMPTY: dict = {}


class _Kind:
    """Per-kind constants, computed once."""

    __slots__ = ("kind", "value", "span_kind", "must_keep", "attrs")

    def __init__(self, kind: TradingSpanKind | None):
        self.kind = kind
        self.value = kind.value if kind is not None else None
        self.span_kind = kind.span_kind if kind is not None else SpanKind.INTERNAL
        self.must_keep = kind is not None and kind.must_keep
        self.attrs = {SPAN_KIND: self.value} if kind is not None else None  # the SDK copies it


_KINDS: dict[Any, _Kind] = {k: _Kind(k) for k in TradingSpanKind}  # str enum: also found by "order"
_NO_KIND = _Kind(None)
_MARKET_DATA = _KINDS[TradingSpanKind.MARKET_DATA]
_LIBRARY_MARKET_DATA = _Kind(TradingSpanKind.MARKET_DATA)  # a library's market-data call: nothing trades inside it, no tick mark
_ORDER = _KINDS[TradingSpanKind.ORDER]
_EXECUTION = _KINDS[TradingSpanKind.EXECUTION]


def _kind_info(kind: Any) -> _Kind:
    if kind is None:
        return _NO_KIND
    info = _KINDS.get(kind) if isinstance(kind, str) else None
    if info is None:
        try:
            info = _KINDS[TradingSpanKind.parse(kind)]
        except ValueError as exc:
            bad_input(str(exc))
            return _NO_KIND
    return info


# -- tracer and sampler of the current global provider ------------------------

_state: list = [None, None, None]  # provider, tracer, TradingSampler or None


def _refresh(provider: Any) -> None:
    tracer = provider.get_tracer("otel_trading")
    sampler = None
    try:
        from otel_trading.sampling import current  # SAMPLER's fast-drop hook; optional

        sampler = current()
        if not hasattr(sampler, "drops_root"):
            sampler = None
    except Exception:  # noqa: BLE001 - no sampler module or no trading sampler: the tracer decides
        sampler = None
    _state[1], _state[2], _state[0] = tracer, sampler, provider


# -- attributes ----------------------------------------------------------------


def _attributes(info: _Kind, kw: dict, extra: dict | None) -> dict:
    attrs = {SPAN_KIND: info.value} if info.value is not None else {}
    for key, value in kw.items():
        name = KEYWORDS.get(key)
        if name is None:
            bad_input(f"unknown trading attribute keyword {key!r}; use attributes={{...}} for other attributes", TypeError)
            continue
        kind = type(value)
        if kind not in _PLAIN or (kind is int and not INT64_MIN <= value <= INT64_MAX):
            if value is None:
                if key.endswith("_id"):
                    bad_input(f"{key}=None")
                continue
            value = attribute_value(value)
            if value is None:
                bad_input(f"{key}: unsupported type {type(kw[key]).__name__}", TypeError)
                continue
        attrs[name] = value
    if extra:
        attrs.update(extra)
    return attrs


def _order_id(kw: dict) -> Any:
    """The order id usable as a registry key (the bad-input warning comes from the attributes)."""
    order_id = kw.get("order_id")
    return order_id if type(order_id) in _PLAIN else None


def _link(span_context: SpanContext, order_id: Any) -> Link:
    return Link(span_context, {ORDER_ID: order_id})


# -- order registry --------------------------------------------------------------


class _Order(NamedTuple):
    context: SpanContext
    start_ns: int
    venue: Any
    order_type: Any


_new_order = _new_context = tuple.__new__  # skip Python-level __new__ (NamedTuple, SpanContext checks) on hot paths


class OrderRegistry:
    """Order id -> order span context; the least recently used go beyond ``size``.

    No lock: single OrderedDict operations are atomic under the GIL, and a race
    costs at most an extra eviction.
    """

    def __init__(self, size: int | None = None):
        self._size = size
        self._orders: OrderedDict[Any, _Order] = OrderedDict()

    def put(self, order_id: Any, order: _Order) -> None:
        orders = self._orders
        orders[order_id] = order
        if len(orders) > (self._size or config.current().order_registry_size):
            try:
                orders.popitem(last=False)
            except KeyError:
                pass

    def get(self, order_id: Any) -> _Order | None:
        order = self._orders.get(order_id)
        if order is not None:
            try:
                self._orders.move_to_end(order_id)
            except KeyError:
                pass
        return order

    def __len__(self) -> int:
        return len(self._orders)

    def clear(self) -> None:
        self._orders.clear()


ORDERS = OrderRegistry()
_propagator = TraceContextTextMapPropagator()


def order_traceparent(order_id: Any) -> str | None:
    """W3C ``traceparent`` of the order's span: store it or send it along so another process can link."""
    order = ORDERS.get(order_id)
    if order is None:
        return None
    ctx = order.context
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def span_context_from_traceparent(traceparent: Any) -> SpanContext | None:
    """The span context in a ``traceparent`` string, or None (with a warning) when it is not one."""
    if isinstance(traceparent, str):
        ctx = _get_current_span(_propagator.extract({"traceparent": traceparent})).get_span_context()
        if ctx.is_valid:
            return ctx
    bad_input(f"not a W3C traceparent: {str(traceparent)[:64]!r}")
    return None


def order_link(order_id: Any, traceparent: str | None = None) -> Link | None:
    """A span link to the order's span: from this process's registry, else from ``traceparent``.

    None when the order is unknown or its span was not sampled (a link to it would lead nowhere).
    """
    order = ORDERS.get(order_id)
    ctx = order.context if order is not None else None
    if ctx is None and traceparent is not None:
        ctx = span_context_from_traceparent(traceparent)
    return _link(ctx, order_id) if ctx is not None and ctx.trace_flags.sampled else None


# -- tick to trade ----------------------------------------------------------------

_tick_ns: contextvars.ContextVar[int | None] = contextvars.ContextVar("otel_trading_tick_ns", default=None)


def mark_tick(received_ns: int | None = None) -> None:
    """Remember when market data arrived (epoch ns, default now); the next order span in this context measures tick-to-trade."""
    _tick_ns.set(_time_ns() if received_ns is None else received_ns)


# -- the span scope ----------------------------------------------------------------


class _Scope:
    """Context manager for one helper span. Not reusable."""

    __slots__ = ("_info", "_name", "_kw", "_options", "_span", "_token", "_tick_token", "_order")
    _span: trace_api.Span
    _token: Token[context_api.Context] | None
    _tick_token: Token[int | None] | None
    _order: _Order | None

    def __init__(self, info: _Kind, name: str | None, kw: dict, options: tuple | None = None):
        self._info = info
        self._name = name
        self._kw = kw
        self._options = options  # (attributes, links, order_traceparent) when any is given
        self._token = self._tick_token = self._order = None

    def __enter__(self) -> trace_api.Span:
        if self._info is _MARKET_DATA:
            self._tick_token = _tick_ns.set(_time_ns())
        try:
            info = self._info
            provider = trace_api._TRACER_PROVIDER or trace_api.get_tracer_provider()  # global read skips an env lookup
            if _state[0] is not provider:
                _refresh(provider)
                if self._tick_token is not None:  # the one-off set-up is not market data latency
                    _tick_ns.set(_time_ns())
            current = _get_current()
            parent: trace_api.Span = current.get(_SPAN_KEY) or INVALID_SPAN  # type: ignore[assignment]  # the context holds spans under this key
            parent_ctx = parent.get_span_context()
            if parent_ctx.is_valid:
                if not parent_ctx.trace_flags.sampled and not info.must_keep:
                    # an unsampled trace stays unsampled; its context is current already
                    span = self._span = parent if not parent.is_recording() else NonRecordingSpan(parent_ctx)
                    return span
            elif _state[2] is not None and not info.must_keep:
                trace_id = _getrandbits(128) or 1
                if _state[2].drops_root(info.kind, trace_id):
                    ctx = _new_context(SpanContext, (trace_id, _getrandbits(64) or 1, False, _UNSAMPLED, DEFAULT_TRACE_STATE, True))
                    span = self._span = NonRecordingSpan(ctx)
                    self._token = _attach(_Context({**current, _SPAN_KEY: span}))  # context.set_value without its frame
                    return span
            span = self._span = self._start_span(info, current)
            return span
        except Exception:
            if config.current().strict:
                if self._tick_token is not None:
                    _tick_ns.reset(self._tick_token)
                raise
            bad_input("could not start span (bug in otel-trading?)", RuntimeError)
            span = self._span = INVALID_SPAN
            return span

    def _start_span(self, info: _Kind, current: context_api.Context) -> trace_api.Span:
        kw = self._kw
        extra, links, _ = self._options or _NO_OPTIONS
        if info is _ORDER or info is _EXECUTION:
            extra, links = self._order_start(kw, extra, links)
        span = _state[1].start_span(
            self._name or info.value or "span",
            current,
            kind=info.span_kind,
            attributes=_attributes(info, kw, extra) if kw or extra else info.attrs,
            links=links,
        )
        self._token = _attach(_Context({**current, _SPAN_KEY: span}))  # context.set_value without its frame
        if info is _ORDER and self._order is None:
            order_id = _order_id(kw)
            if order_id is not None:  # unsampled orders too: ack and fill latency are measured for every order
                ORDERS.put(order_id, _new_order(_Order, (span.get_span_context(), _time_ns(), kw.get("venue"), kw.get("order_type"))))
        return span

    def _order_start(self, kw: dict, extra: dict | None, links: Sequence[Link] | None) -> tuple:
        """Links to an earlier span of the same order; tick-to-trade for a new order."""
        order_id = _order_id(kw)
        found = []
        if order_id is not None:
            order = self._order = ORDERS.get(order_id)
            if order is not None:
                if order.context.trace_flags.sampled:
                    found.append(_link(order.context, order_id))
            elif self._options is not None and self._options[2] is not None:
                ctx = span_context_from_traceparent(self._options[2])
                if ctx is not None and ctx.trace_flags.sampled:
                    found.append(_link(ctx, order_id))
        if found:
            links = [*found, *(links or ())]
        if self._info is _ORDER and self._order is None:
            tick = _tick_ns.get()
            if tick is not None:
                seconds = (_time_ns() - tick) / 1e9
                _metrics.record_tick_to_trade(seconds, kw.get("strategy_id"))
                extra = {**(extra or {}), TICK_TO_TRADE: seconds * 1e6}
        return extra, links

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if self._tick_token is not None:
            _tick_ns.reset(self._tick_token)
        if self._token is not None:
            try:
                _reset(self._token)
            except Exception:  # as the API's detach: a token from another context is logged, never raised into the app
                _context_logger.exception("Failed to detach context")
        span = self._span
        if type(span) is not NonRecordingSpan and span.is_recording():  # a dropped span: no call needed to know
            if exc is not None and isinstance(exc, Exception):
                _record_error(span, exc)
            span.end()
        if self._info is _EXECUTION and self._order is not None:
            self._fill_latency()
        return False

    def _fill_latency(self) -> None:
        order = self._order
        if order is None:
            return
        try:
            _metrics.record_fill_latency((_time_ns() - order.start_ns) / 1e9, order.venue, order.order_type)
        except Exception:
            if config.current().strict:
                raise
            bad_input("could not record fill latency (bug in otel-trading?)", RuntimeError)


def _record_error(span: trace_api.Span, exc: BaseException) -> None:
    span.record_exception(exc, escaped=True)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


# -- public helpers ---------------------------------------------------------------


def trading_span(kind: TradingSpanKind | str, name: str | None = None, *, attributes: dict | None = None, links: Sequence[Link] | None = None, order_traceparent: str | None = None, **kw: Any) -> _Scope:
    """A span of any trading kind: ``with trading_span("risk", strategy_id="s1") as span: ...``.

    Keywords are ``trading.*`` attributes by their short names (see
    ``otel_trading.trading.attributes.KEYWORDS``); ``attributes`` passes others as is.
    """
    options = (attributes, links, order_traceparent) if attributes or links or order_traceparent else None
    return _Scope(_kind_info(kind), name, kw, options)


def scope_factory(kind: TradingSpanKind | str) -> Callable[[str | None, dict[str, Any]], _Scope]:
    """``factory(name, kw)``: the span ``trading_span(kind, name, **kw)`` starts, for instrumentations
    that hold the keywords in a dict already (their hot paths skip the ``**kw`` repacking). A market-data
    span from it marks no tick for tick-to-trade: a library's market-data call places no order inside."""
    info = _KINDS[TradingSpanKind.parse(kind)]
    return functools.partial(_Scope, _LIBRARY_MARKET_DATA if info is _MARKET_DATA else info)


def _kind_helper(kind: TradingSpanKind, what: str) -> Callable[..., _Scope]:
    info = _KINDS[kind]

    def helper(name: str | None = None, *, attributes: dict | None = None, links: Sequence[Link] | None = None, order_traceparent: str | None = None, **kw: Any) -> _Scope:
        if attributes or links or order_traceparent:
            return _Scope(info, name, kw, (attributes, links, order_traceparent))
        return _Scope(info, name, kw)

    helper.__name__ = helper.__qualname__ = f"{kind.value}_span"
    helper.__doc__ = f"A ``{kind.value}`` span ({kind.span_kind.name}): {what}."
    return helper


market_data_span = _kind_helper(TradingSpanKind.MARKET_DATA, "a tick or book update received; marks the tick for tick-to-trade")
signal_span = _kind_helper(TradingSpanKind.SIGNAL, "strategy logic turning data into intent")
model_span = _kind_helper(TradingSpanKind.MODEL, "ML predict or train")
risk_span = _kind_helper(TradingSpanKind.RISK, "a pre-trade risk check")
order_span = _kind_helper(
    TradingSpanKind.ORDER,
    "an order submitted, canceled or amended; registers the order so later spans link to it, records tick-to-trade",
)
execution_span = _kind_helper(
    TradingSpanKind.EXECUTION,
    "a fill or execution report; links to its order's span, records fill latency",
)
fill_span = execution_span
portfolio_span = _kind_helper(TradingSpanKind.PORTFOLIO, "a position or P&L update")
backtest_span = _kind_helper(TradingSpanKind.BACKTEST, "an offline simulation run")
reconciliation_span = _kind_helper(TradingSpanKind.RECONCILIATION, "books compared with the broker's")


def traced(fn: Callable | None = None, *, kind: TradingSpanKind | str | None = None, name: str | None = None, capture_args: bool | Sequence[str] = False, **attrs: Any) -> Any:
    """Trace every call of a sync or async function: ``@traced`` or ``@traced(kind="signal", capture_args=True)``.

    ``capture_args=True`` records arguments named like trading keywords
    (``order_id``, ``symbol``, ...); a list of names records those, unknown
    ones as ``trading.arg.<name>``. Other arguments are never recorded, so
    secrets in them stay out of traces.
    """
    if fn is None:
        return functools.partial(traced, kind=kind, name=name, capture_args=capture_args, **attrs)
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        bad_input(f"@traced on generator {fn.__qualname__}: the span covers creating the generator, not iterating it", TypeError)
    info = _kind_info(kind)
    span_name = name or fn.__qualname__
    constant = {"code.function.name": f"{fn.__module__}.{fn.__qualname__}"}
    if attrs:
        constant.update(_attributes(_NO_KIND, attrs, None))
    captured = _captured(fn, capture_args)
    constant_options = (constant, None, None)

    def scope(args: tuple, kwargs: dict) -> _Scope:
        if not captured:
            return _Scope(info, span_name, _EMPTY, constant_options)
        extra = dict(constant)
        for position, arg, attribute, default in captured:
            raw = args[position] if position is not None and position < len(args) else kwargs.get(arg, default)
            if raw is None:
                continue
            value = attribute_value(raw)
            if value is None:
                bad_input(f"capture_args: {fn.__qualname__} argument {arg!r}: unsupported type {type(raw).__name__}", TypeError)
                continue
            extra[attribute] = value
        return _Scope(info, span_name, _EMPTY, (extra, None, None))

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with scope(args, kwargs):
                return await fn(*args, **kwargs)

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with scope(args, kwargs):
            return fn(*args, **kwargs)

    return wrapper


def _captured(fn: Callable, capture_args: bool | Sequence[str]) -> list[tuple]:
    """(position or None, name, attribute, default) for each argument to record, resolved once."""
    if not capture_args:
        return []
    params = inspect.signature(fn).parameters
    wanted = [p for p in params if p in KEYWORDS] if capture_args is True else list(capture_args)
    result = []
    for arg in wanted:
        param = params.get(arg)
        if param is None:
            bad_input(f"capture_args: {fn.__qualname__} has no argument {arg!r}", TypeError)
            continue
        positional = param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)
        position = list(params).index(arg) if positional else None
        default = None if param.default is param.empty else param.default
        result.append((position, arg, KEYWORDS.get(arg, f"trading.arg.{arg}"), default))
    return result


def set_attributes(**kw: Any) -> None:
    """Add ``trading.*`` attributes (by keyword) to the current span."""
    span = _get_current_span()
    if span.is_recording():
        attrs = _attributes(_NO_KIND, kw, None)
        if attrs:
            span.set_attributes(attrs)


def add_event(name: str, *, attributes: dict | None = None, **kw: Any) -> None:
    """Add an event with ``trading.*`` attributes to the current span: ``add_event("order.acked", status="acked")``."""
    span = _get_current_span()
    if span.is_recording():
        span.add_event(name, _attributes(_NO_KIND, kw, attributes))


def record_error(exc: BaseException, **kw: Any) -> None:
    """Record a handled exception (stack trace, ERROR status) on the current span."""
    span = _get_current_span()
    if span.is_recording():
        if kw:
            span.set_attributes(_attributes(_NO_KIND, kw, None))
        _record_error(span, exc)


def register_order(order_id: Any, venue: Any = None, order_type: Any = None, start_ns: int | None = None) -> None:
    """Register the current span as the span of ``order_id``: for ids the venue assigns in its answer,
    after the order span started (``start_ns``: when the order was sent, default now). Later fills,
    cancels and ``order_acked`` then find it, as for an id given to ``order_span``."""
    register_span_order(_get_current_span(), order_id, venue, order_type, start_ns)


def register_span_order(span: trace_api.Span, order_id: Any, venue: Any = None, order_type: Any = None, start_ns: int | None = None) -> None:
    """``register_order`` for a span the caller holds (the library instrumentations): no current-span look-up."""
    if type(order_id) not in _PLAIN:
        bad_input(f"register_order: order id of type {type(order_id).__name__}", TypeError)
        return
    ctx = span.get_span_context()
    if ctx.is_valid:
        ORDERS.put(order_id, _new_order(_Order, (ctx, start_ns or _time_ns(), venue, order_type)))


def add_attributes(span: trace_api.Span, attributes: dict[str, Any]) -> None:
    """``span.set_attributes`` for plain values (str, bool, int, float) under ``trading.*`` keys, known clean.

    A recording SDK span takes them in one dict update under its locks: the SDK's call cleans
    each value and stores each key in a call of its own, about 10k instructions an attribute.
    Anything the SDK would act on (an ended span, the attribute count or length limit, another
    value type, another span class) goes through ``set_attributes`` itself.
    """
    bounded = getattr(span, "_attributes", None)
    if type(bounded) is BoundedAttributes and _takes_as_is(bounded, attributes):
        with span._lock:  # type: ignore[attr-defined]  # an SDK span: BoundedAttributes is its attribute store
            if span._end_time is None:  # type: ignore[attr-defined]
                with bounded._lock:
                    bounded._dict.update(attributes)
                return
    span.set_attributes(attributes)


def _takes_as_is(bounded: BoundedAttributes, attributes: dict[str, Any]) -> bool:
    if bounded._immutable or (bounded.maxlen is not None and len(bounded) + len(attributes) > bounded.maxlen):
        return False
    limit = bounded.max_value_len
    for value in attributes.values():
        kind = type(value)
        if kind not in _PLAIN or (kind is str and limit is not None and len(value) > limit):
            return False
    return True


def order_acked(order_id: Any) -> float | None:
    """Record ``trading.order.ack.duration`` for a registered order; returns the seconds, or None if unknown."""
    order = ORDERS.get(order_id)
    if order is None:
        return None
    seconds = (_time_ns() - order.start_ns) / 1e9
    _metrics.record_order_ack(seconds, order.venue, order.order_type)
    return seconds
