"""One call into a trading library, traced with the package's helpers.

The library instrumentors (``ccxt``, ``alpaca``) only say what a method is: its
trading span kind, the ``trading.*`` keywords its arguments carry, how to read
the orders and fills in its answer and how to name its errors. This module does
the rest the same way for every library: the span (one per outermost call; a
library calling its own instrumented methods inside adds none), order
registration and ack latency, fills as linked ``execution`` spans, the metrics,
and errors (ERROR status, ``error.type``, ``trading.reject.reason``, a
rejection counted; the exception is re-raised unchanged).

Nothing here may break the trading call: describing the call or reading its
answer is guarded, a failure is reported once on stderr and the call goes on.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NamedTuple

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from otel_trading.report import report_once
from otel_trading.trading import metrics, tracing
from otel_trading.trading.attributes import CLIENT_ORDER_ID, ORDER_ID, ORDER_STATUS

ERROR_TYPE = "error.type"


class LibraryInstrumentor(BaseInstrumentor):
    """A BaseInstrumentor that checks its own library even when told not to.

    opentelemetry-instrument checks the *distribution's* ``instruments`` extra, then tells each
    instrumentor to skip its own check; otel-trading ships several, so each checks its library anyway
    and hands a conflict back to the loader, which logs a missing library at debug level (a bot
    without ccxt sees nothing) and a version outside the supported range as an error.
    """

    def instrument(self, **kwargs: Any) -> Any:
        if kwargs.pop("skip_dep_check", False):
            kwargs.setdefault("raise_exception_on_conflict", True)
        return super().instrument(**kwargs)

_inside: ContextVar[bool] = ContextVar("otel_trading_library_call", default=False)
_time_ns = time.time_ns
_monotonic = time.monotonic


class Fill(NamedTuple):
    fill_id: str
    price: float | None
    quantity: float | None
    liquidity: str | None = None


class OrderState(NamedTuple):
    """What an exchange answer says about one order."""

    order_id: str | None
    client_order_id: str | None = None
    status: str | None = None
    symbol: str | None = None
    side: str | None = None
    order_type: str | None = None
    filled: float | None = None  # cumulative filled quantity
    average: float | None = None  # average fill price
    fills: Sequence[Fill] = ()


@dataclass(frozen=True)
class Method:
    """How one library method maps onto trading telemetry."""

    kind: str  # order, execution, reconciliation, market_data, portfolio
    name: str  # span name
    request: Callable[[Any, tuple, dict], dict[str, Any]]  # (instance, args, kwargs) -> trading keywords incl. venue, None left out
    answer: Callable[[Any], Sequence[OrderState]] | None = None
    reason: Callable[[Exception], str] | None = None  # error -> trading.reject.reason (order calls)
    action: str | None = None  # submit, amend, cancel (order calls)


# -- fills seen once -------------------------------------------------------------------


class _Book:
    """Per order: quantity already recorded as fills, quantity of distinct trades seen, trade ids seen.

    A fill is recorded once: venues answer the same fills again on every poll, some as
    trades with ids, some only as a growing cumulative quantity. Bounded LRU.
    """

    def __init__(self, size: int = 10_000):
        self._size = size
        self._orders: OrderedDict[tuple, list] = OrderedDict()

    def new_fills(self, venue: Any, state: OrderState) -> list[Fill]:
        key = (venue, state.order_id)
        entry = self._orders.get(key)
        if entry is None:
            if not state.fills and not state.filled:
                return []
            entry = self._orders[key] = [0.0, 0.0, set()]
            if len(self._orders) > self._size:
                self._orders.popitem(last=False)
        out = []
        for fill in state.fills:
            if fill.fill_id in entry[2]:
                continue
            entry[2].add(fill.fill_id)
            entry[1] += fill.quantity or 0.0
            if entry[1] > entry[0] + 1e-12:
                out.append(fill._replace(quantity=entry[1] - entry[0]))
                entry[0] = entry[1]
        if state.filled is not None and state.filled > entry[0] + 1e-12:
            out.append(Fill(f"{state.order_id}:{state.filled:g}", state.average, state.filled - entry[0]))
            entry[0] = state.filled
        return out

    def clear(self) -> None:
        self._orders.clear()


FILLS = _Book()


class _Requests:
    """Market-data requests per (feed, symbol), handed to ``record_tick`` at most once a second and at exit.

    An SDK counter add costs more than the dropped span it would count, so a call only
    advances an ``itertools.count`` (atomic under the GIL, no lock); the flush reads each
    count by taking one more step and subtracting its own steps. Nothing is lost.
    """

    _MAX_KEYS = 10_000  # beyond this many (feed, symbol) pairs, new symbols count under their feed only

    def __init__(self, interval: float = 1.0):
        self._interval = interval
        self._counts: dict[tuple, list] = {}  # key -> [itertools.count, flushes, reported]
        self._lock = threading.Lock()
        self._next = 0.0

    def add(self, feed: Any, symbol: Any) -> None:
        entry = self._counts.get((feed, symbol))
        if entry is None:
            key = (feed, symbol) if len(self._counts) < self._MAX_KEYS else (feed, None)
            entry = self._counts.setdefault(key, [itertools.count(), 0, 0])
        next(entry[0])
        if _monotonic() >= self._next:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._next:
                atexit.register(self.flush)  # registered after the SDK's shutdown hooks, so it runs before them
            self._next = _monotonic() + self._interval
            for (feed, symbol), entry in list(self._counts.items()):
                total = next(entry[0]) - entry[1]
                entry[1] += 1
                if total > entry[2]:
                    metrics.record_tick(feed, symbol, total - entry[2])
                    entry[2] = total


REQUESTS = _Requests()


# -- the traced call -----------------------------------------------------------------------


class Call:
    """``with Call(method, kw): result = library(); call.answered(result)``."""

    __slots__ = ("method", "kw", "_scope", "_span", "_token", "_start_ns")

    def __init__(self, method: Method, kw: dict[str, Any]):
        self.method = method
        self.kw = kw

    def __enter__(self) -> Call:
        self._token = _inside.set(True)
        method, kw = self.method, self.kw
        if method.kind == "order":
            self._scope = _ORDER_SCOPE(method.name, kw)
        else:
            order_id = kw.pop("order_id", None)  # a look-up is no fill: no fill latency for it
            link = tracing.order_link(order_id) if order_id is not None else None
            attributes = {ORDER_ID: order_id} if order_id is not None else None
            self._scope = tracing.trading_span(method.kind, method.name, attributes=attributes, links=[link] if link else None, **kw)
        self._span = self._scope.__enter__()
        self._start_ns = _time_ns()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, Exception):
            _guarded(self._failed, exc)
        self._scope.__exit__(exc_type, exc, tb)
        _inside.reset(self._token)

    def answered(self, result: Any) -> None:
        method, kw = self.method, self.kw
        if method.answer is None:
            return
        try:
            states = method.answer(result)
            venue = kw.get("venue")
            if len(states) == 1 and method.kind in _ONE_ORDER:
                span = self._span
                if span.is_recording():
                    tracing.add_attributes(span, _found(states[0], kw))
            action = method.action
            for state in states:  # one order, or each order of a batch
                if state.order_id is None:
                    continue
                if (action == "submit" or action == "amend") and state.order_id != kw.get("order_id"):
                    self._register(state, action, venue)
                for fill in FILLS.new_fills(venue, state):
                    _fill(state, fill, venue, kw)
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the trading call
            _telemetry_failed(exc)

    def _register(self, state: OrderState, action: str, venue: Any) -> None:
        """A new order, or an amend the venue answered with a new id: later calls link to this span."""
        kw = self.kw
        order_type = state.order_type or kw.get("order_type")
        tracing.register_span_order(self._span, state.order_id, venue, order_type, self._start_ns)
        if action == "submit":  # acked: its metrics are recorded at the next collection, not on this call
            span = self._span
            metrics.defer(metrics.record_order_ack, (_time_ns() - self._start_ns) / 1e9, venue, order_type, span=span)
            metrics.defer(metrics.record_order, state.side or kw.get("side"), order_type, venue, state.status or "new", None, state.symbol or kw.get("symbol"), span=span)

    def _failed(self, exc: Exception) -> None:
        span = self._span
        error_type = f"{type(exc).__module__}.{type(exc).__qualname__}"
        if self.method.kind == "order" and self.method.reason is not None:
            kw = self.kw
            reason = self.method.reason(exc)
            if span.is_recording():
                span.set_attributes({ERROR_TYPE: error_type, "trading.reject.reason": reason})
            if self.method.action in ("submit", "amend"):  # a refused cancel is no order rejection
                metrics.record_rejection(reason, kw.get("venue"), symbol=kw.get("symbol"))
            if self.method.action == "submit":
                metrics.record_order(kw.get("side"), kw.get("order_type"), kw.get("venue"), "rejected", symbol=kw.get("symbol"))
        elif span.is_recording():
            span.set_attribute(ERROR_TYPE, error_type)


_ORDER_SCOPE = tracing.scope_factory("order")
_ONE_ORDER = ("order", "execution")  # kinds whose one-order answer describes the span's own order


def _found(state: OrderState, kw: dict[str, Any]) -> dict[str, Any]:
    """The span attributes an answer adds: the venue's order id, its client order id (when new), the status."""
    found = {}
    if state.order_id is not None:
        found[ORDER_ID] = state.order_id
    if state.client_order_id is not None and state.client_order_id != kw.get("client_order_id"):
        found[CLIENT_ORDER_ID] = state.client_order_id
    status = state.status if type(state.status) is str else metrics.attribute_value(state.status)
    if status is not None:
        found[ORDER_STATUS] = status
    return found


def _fill(state: OrderState, fill: Fill, venue: Any, kw: dict) -> None:
    side = state.side or kw.get("side")
    symbol = state.symbol or kw.get("symbol")
    with tracing.execution_span("fill", order_id=state.order_id, fill_id=fill.fill_id, fill_price=fill.price, fill_quantity=fill.quantity, liquidity=fill.liquidity, side=side, symbol=symbol, venue=venue):
        pass
    metrics.defer(metrics.record_fill, side, venue, fill.liquidity, symbol)


# -- wrappers ----------------------------------------------------------------------------------


def wrap(owner: type, name: str, method: Method) -> None:
    """Make ``owner.<name>`` (a function in its ``__dict__``) a traced call of ``method``; ``unwrap`` undoes it.

    A plain function, not a wrapt proxy: binding and calling a proxy costs about 0.4 us a call,
    as much again as the whole dropped market-data path.
    """
    original = owner.__dict__[name]
    if inspect.iscoroutinefunction(original):
        wrapper = _async_market_data(original, method) if method.kind == "market_data" else _async_call(original, method)
    else:
        wrapper = _sync_market_data(original, method) if method.kind == "market_data" else _sync_call(original, method)
    functools.update_wrapper(wrapper, original)  # name, docstring, __wrapped__
    wrapper._otel_trading = True  # type: ignore[attr-defined]  # marks our wrappers for unwrap
    setattr(owner, name, wrapper)


def wrapped(function: Any) -> bool:
    """True for a function ``wrap`` installed."""
    return getattr(function, "_otel_trading", False) is True


def unwrap(owner: type, name: str) -> None:
    function = owner.__dict__.get(name)
    if function is not None and wrapped(function):
        setattr(owner, name, function.__wrapped__)


def _sync_call(original: Callable[..., Any], method: Method) -> Callable[..., Any]:
    def wrapper(instance: Any, *args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return original(instance, *args, **kwargs)
        call = _start(method, instance, args, kwargs)
        if call is None:
            return original(instance, *args, **kwargs)
        with call:
            result = original(instance, *args, **kwargs)
            call.answered(result)
            return result

    return wrapper


def _async_call(original: Callable[..., Any], method: Method) -> Callable[..., Any]:
    async def wrapper(instance: Any, *args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return await original(instance, *args, **kwargs)
        call = _start(method, instance, args, kwargs)
        if call is None:
            return await original(instance, *args, **kwargs)
        with call:
            result = await original(instance, *args, **kwargs)
            call.answered(result)
            return result

    return wrapper


def _sync_market_data(original: Callable[..., Any], method: Method) -> Callable[..., Any]:
    """The hot path, in one frame: a market-data call the sampler drops costs a count and a non-recording span."""
    name, request, scope, count = method.name, method.request, _MARKET_DATA_SCOPE, REQUESTS.add

    def wrapper(instance: Any, *args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return original(instance, *args, **kwargs)
        token = _inside.set(True)  # fetch_ticker built on fetch_tickers: one span, one request counted
        try:
            try:
                kw = request(instance, args, kwargs)
                count(kw["feed"], kw["symbol"])
                span: Any = scope(name, kw)
            except Exception as exc:  # noqa: BLE001 - an odd call is traced less, never broken
                span = _untraced(name, exc)
            with span:
                return original(instance, *args, **kwargs)
        finally:
            _inside.reset(token)

    return wrapper


def _async_market_data(original: Callable[..., Any], method: Method) -> Callable[..., Any]:
    name, request, scope, count = method.name, method.request, _MARKET_DATA_SCOPE, REQUESTS.add

    async def wrapper(instance: Any, *args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return await original(instance, *args, **kwargs)
        token = _inside.set(True)  # watch_ticker built on watch_tickers: one span, one request counted
        try:
            try:
                kw = request(instance, args, kwargs)
                count(kw["feed"], kw["symbol"])
                span: Any = scope(name, kw)
            except Exception as exc:  # noqa: BLE001 - an odd call is traced less, never broken
                span = _untraced(name, exc)
            with span:
                return await original(instance, *args, **kwargs)
        finally:
            _inside.reset(token)

    return wrapper


def _untraced(name: str, exc: Exception) -> contextlib.nullcontext:
    report_once(f"could not read the arguments of {name} ({exc!r}); the call is not traced")
    return contextlib.nullcontext()


_MARKET_DATA_SCOPE = tracing.scope_factory("market_data")


def _start(method: Method, instance: Any, args: tuple, kwargs: dict) -> Call | None:
    try:
        kw = method.request(instance, args, kwargs)
        if method.action is not None:
            kw["action"] = method.action
        return Call(method, kw)
    except Exception as exc:  # noqa: BLE001 - an odd call is traced less, never broken
        report_once(f"could not read the arguments of {method.name} ({exc!r}); the call is not traced")
        return None


def _guarded(step: Callable[[Any], None], value: Any) -> None:
    try:
        step(value)
    except Exception as exc:  # noqa: BLE001 - telemetry never breaks the trading call
        _telemetry_failed(exc)


def _telemetry_failed(exc: Exception) -> None:
    report_once(f"could not record telemetry for a library call ({exc!r}); the call itself is unaffected")


def number(value: Any) -> float | None:
    """A quantity or price as a float (venues answer strings, Decimals, None)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
