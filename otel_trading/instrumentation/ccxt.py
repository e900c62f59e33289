"""``ccxt`` instrumentor: trading spans and metrics for the unified API of every exchange class.

Each exchange class implements the unified methods itself, so they are wrapped
where the class resolves them, the first time an instance of that class is
created (``BaseExchange.__init__`` is the one hook every exchange shares, sync,
``ccxt.async_support`` and ``ccxt.pro``). Nothing is imported or wrapped until
the application imports ccxt.

| Methods | Span kind |
|---|---|
| ``create_order``, ``create_*_order``, ``create_orders`` (batch), ``edit_order``, ``edit_orders``, ``cancel_order``, ``cancel_orders``, ``cancel_all_orders`` | ``order`` |
| ``fetch_order``, ``watch_orders``, ``watch_my_trades`` | ``execution`` |
| ``fetch_orders``, ``fetch_open_orders``, ``fetch_closed_orders``, ``fetch_canceled_orders``, ``fetch_my_trades``, ``fetch_order_trades`` | ``reconciliation`` |
| ``fetch_ticker(s)``, ``fetch_order_book``, ``fetch_trades``, ``fetch_ohlcv``, other ``watch_*`` | ``market_data`` |
| ``fetch_balance``, ``fetch_positions``, ``watch_balance``, ``watch_positions`` | ``portfolio`` |

The ``*_ws`` variants (``create_order_ws``, ``cancel_order_ws``, ``fetch_order_ws``, ``fetch_balance_ws``,
... of ``ccxt.pro``: the same request over the venue's WebSocket API) map as the method they vary.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Collection
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import unwrap

from otel_trading.instrumentation import DEPENDENCIES, calls
from otel_trading.instrumentation.calls import Fill, LibraryInstrumentor, Method, OrderState, number
from otel_trading.onimport import on_import
from otel_trading.report import report_once

_ORDER_ACTIONS = {
    "create_order": "submit",
    "create_orders": "submit",
    "edit_order": "amend",
    "edit_orders": "amend",
    "cancel_order": "cancel",
    "cancel_orders": "cancel",
    "cancel_all_orders": "cancel",
}
_VARIANT = re.compile(r"^create_\w+_order$")
_WS = "_ws"  # ccxt.pro's WebSocket-API variant of a REST method: create_order_ws, fetch_balance_ws, ...
_KINDS = {
    "fetch_order": "execution",
    "watch_orders": "execution",
    "watch_my_trades": "execution",
    **dict.fromkeys(("fetch_orders", "fetch_open_orders", "fetch_closed_orders", "fetch_canceled_orders", "fetch_my_trades", "fetch_order_trades"), "reconciliation"),
    **dict.fromkeys(("fetch_ticker", "fetch_tickers", "fetch_order_book", "fetch_trades", "fetch_ohlcv"), "market_data"),
    **dict.fromkeys(("watch_orders_for_symbols", "watch_my_trades_for_symbols"), "execution"),
    **dict.fromkeys(("fetch_balance", "fetch_positions", "watch_balance", "watch_position", "watch_positions", "watch_position_for_symbols"), "portfolio"),
}
_HELPERS = {"watch_multiple"}  # internal building blocks of the watch_* methods
_WITH_ORDERS = {"order", "execution", "reconciliation"}  # kinds whose answers carry orders or fills
_CLIENT_ORDER_ID_PARAMS = ("clientOrderId", "newClientOrderId", "clientOid", "client_order_id")
# ccxt error class -> trading.reject.reason; the first class in the error's MRO found here wins
_REASONS = {
    "InsufficientFunds": "insufficient_funds",
    "OrderNotFound": "order_not_found",
    "InvalidOrder": "invalid_order",
    "BadSymbol": "bad_symbol",
    "RateLimitExceeded": "rate_limit",
    "DDoSProtection": "rate_limit",
    "RequestTimeout": "timeout",
    "NetworkError": "network",
    "AuthenticationError": "authentication",
    "PermissionDenied": "permission_denied",
    "AccountSuspended": "account_suspended",
    "NotSupported": "not_supported",
    "BadRequest": "bad_request",
    "ExchangeError": "exchange_error",
}


class CcxtInstrumentor(LibraryInstrumentor):
    """``opentelemetry-instrument`` turns it on (entry point ``ccxt``) when ccxt is installed."""

    _wrapped: list[tuple[type, str]] = []
    _classes: set[type] = set()
    _active = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return DEPENDENCIES["ccxt"]

    def _instrument(self, **kwargs: Any) -> None:
        CcxtInstrumentor._active = True
        on_import("ccxt.base.exchange", _hook_exchanges)

    def _uninstrument(self, **kwargs: Any) -> None:
        CcxtInstrumentor._active = False
        module = sys.modules.get("ccxt.base.exchange")
        if module is not None:
            unwrap(module.BaseExchange, "__init__")
        for cls, name in self._wrapped:
            calls.unwrap(cls, name)
        self._wrapped.clear()
        self._classes.clear()


def _hook_exchanges(module: Any) -> None:
    if CcxtInstrumentor._active and not isinstance(module.BaseExchange.__init__, wrapt.FunctionWrapper):
        wrapt.wrap_function_wrapper(module.BaseExchange, "__init__", _on_init)


def _on_init(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> None:
    wrapped(*args, **kwargs)
    cls = type(instance)
    if cls not in CcxtInstrumentor._classes:
        try:
            _instrument_class(cls)
        except Exception as exc:  # noqa: BLE001 - an exchange we cannot instrument still trades
            report_once(f"ccxt: could not instrument {cls.__name__} ({exc!r}); its calls are not traced")
        CcxtInstrumentor._classes.add(cls)


def _instrument_class(cls: type) -> None:
    for name in dir(cls):
        kind = _kind(name)
        if kind is None:
            continue
        owner = next((klass for klass in cls.__mro__ if name in klass.__dict__), None)
        if owner is None or (owner, name) in CcxtInstrumentor._wrapped:
            continue
        function = owner.__dict__[name]
        if not inspect.isfunction(function) or calls.wrapped(function):
            continue
        method = Method(
            kind,
            f"ccxt {name}",
            _request_reader(function, name, kind),
            _states if kind in _WITH_ORDERS else None,
            reject_reason,
            _ORDER_ACTIONS.get(name.removesuffix(_WS), "submit") if kind == "order" else None,
        )
        calls.wrap(owner, name, method)
        CcxtInstrumentor._wrapped.append((owner, name))


def _kind(name: str) -> str | None:
    if name.endswith(_WS):
        base = name.removesuffix(_WS)
        return _kind(base) if not base.startswith("watch_") else None
    if name in _ORDER_ACTIONS or _VARIANT.match(name):
        return "order"
    kind = _KINDS.get(name)
    if kind is None and name.startswith("watch_") and name not in _HELPERS and not name.endswith("_helper"):
        return "market_data"
    return kind


_NOWHERE = 1 << 30  # the position of a parameter a method does not take: never within args
# trading keyword -> (unified parameter, conversion) read from an order call
_ORDER_FIELDS = {"symbol": ("symbol", None), "order_id": ("id", str), "side": ("side", None), "order_type": ("type", None), "quantity": ("amount", number), "limit_price": ("price", number)}


def _request_reader(function: Callable[..., Any], name: str, kind: str) -> Callable[[Any, tuple, dict], dict[str, Any]]:
    """(instance, args, kwargs) -> trading keywords (None left out), by the unified parameter names, resolved once per method."""
    positions = {p: i - 1 for i, p in enumerate(inspect.signature(function).parameters) if i > 0}  # without self
    defaults = {"side": "buy" if "_buy_" in name else "sell" if "_sell_" in name else None, "order_type": "limit" if "_limit_" in name else "market" if "_market_" in name else None}
    defaults = {k: v for k, v in defaults.items() if v is not None}

    def arg(args: tuple, kwargs: dict, key: str) -> Any:
        i = positions.get(key, _NOWHERE)
        return args[i] if i < len(args) else kwargs.get(key)

    symbol_at = positions.get("symbol")
    if kind == "market_data" and symbol_at is not None:

        def read_market_data(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:  # the hot path
            venue = instance.id
            return {"symbol": args[symbol_at] if symbol_at < len(args) else kwargs.get("symbol"), "venue": venue, "feed": venue}

        return read_market_data

    if kind == "order" and "orders" in positions:  # a batch: create_orders, edit_orders

        def read_batch(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            orders = arg(args, kwargs, "orders")
            kw = {"venue": getattr(instance, "id", None)}
            symbols = sorted({o["symbol"] for o in orders if isinstance(o, dict) and isinstance(o.get("symbol"), str)}) if isinstance(orders, list) else ()
            if symbols:
                kw["symbol"] = ",".join(symbols)
            return kw

        return read_batch

    if kind == "order":
        fields = [(key, positions.get(param, _NOWHERE), param, convert) for key, (param, convert) in _ORDER_FIELDS.items() if param in positions]
        params_at = positions.get("params", _NOWHERE)

        def read_order(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:  # the order hot path: direct reads
            n = len(args)
            kw = {"venue": getattr(instance, "id", None), **defaults}
            for key, i, param, convert in fields:
                value = args[i] if i < n else kwargs.get(param)
                if value is not None:
                    kw[key] = value if convert is None else convert(value)
            params = args[params_at] if params_at < n else kwargs.get("params")
            if params and isinstance(params, dict):
                client_order_id = next((params[k] for k in _CLIENT_ORDER_ID_PARAMS if k in params), None)
                if client_order_id is not None:
                    kw["client_order_id"] = str(client_order_id)
            return kw

        return read_order

    def read(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
        venue = getattr(instance, "id", None)
        symbol = arg(args, kwargs, "symbol")
        if symbol is None and (symbols := arg(args, kwargs, "symbols")):
            symbol = ",".join(symbols) if isinstance(symbols, list | tuple) else symbols
        if kind == "market_data":
            return {"symbol": symbol, "venue": venue, "feed": venue}
        kw: dict[str, Any] = {"symbol": symbol, "venue": venue}
        if kind == "execution":
            kw["order_id"] = _text(arg(args, kwargs, "id"))
        return {k: v for k, v in kw.items() if v is not None}

    return read


def _states(result: Any) -> list[OrderState]:
    """Orders in a unified answer: one order, a list of orders, or a list of trades (grouped by order)."""
    if isinstance(result, dict):  # one order: the answer of create_order and most order calls
        return [_order(result)] if "filled" in result or "remaining" in result else []
    out: list[OrderState] = []
    trades: dict[str, list[Fill]] = {}
    first: dict[str, dict] = {}
    for item in result if isinstance(result, list) else ():
        if not isinstance(item, dict):
            continue
        if "filled" in item or "remaining" in item:
            out.append(_order(item))
        elif item.get("order") is not None:
            order_id = str(item["order"])
            trades.setdefault(order_id, []).append(_fill(item))
            first.setdefault(order_id, item)
    for order_id, fills in trades.items():
        trade = first[order_id]
        out.append(OrderState(order_id, symbol=trade.get("symbol"), side=trade.get("side"), order_type=trade.get("type"), fills=fills))
    return out


def _order(item: dict) -> OrderState:
    """One unified order; ccxt's usual types (str ids, float or None amounts) are taken as they are."""
    get = item.get
    order_id, client_order_id, filled, average, trades = get("id"), get("clientOrderId"), get("filled"), get("average"), get("trades")
    return _new_state(OrderState, (
        order_id if type(order_id) is str else _text(order_id),
        client_order_id if type(client_order_id) is str else _text(client_order_id),
        get("status"),
        get("symbol"),
        get("side"),
        get("type"),
        filled if type(filled) is float else number(filled),
        average if type(average) is float or average is None else number(average),
        [_fill(t) for t in trades if isinstance(t, dict)] if trades else (),
    ))


_new_state = tuple.__new__  # a NamedTuple without its Python-level __new__ frame


def _fill(trade: dict) -> Fill:
    return Fill(_text(trade.get("id")) or "", number(trade.get("price")), number(trade.get("amount")), trade.get("takerOrMaker"))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def reject_reason(exc: Exception) -> str:
    for cls in type(exc).__mro__:
        reason = _REASONS.get(cls.__name__)
        if reason is not None:
            return reason
    return "error"
