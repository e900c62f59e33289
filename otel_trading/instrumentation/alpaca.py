"""``alpaca`` instrumentor: trading spans and metrics for alpaca-py's TradingClient and market data clients.

| Methods | Span kind |
|---|---|
| ``TradingClient.submit_order``, ``close_position``, ``close_all_positions`` (the closing orders), ``replace_order_by_id``, ``cancel_order_by_id``, ``cancel_orders`` | ``order`` |
| ``TradingClient.get_order_by_id``, ``get_order_by_client_id`` | ``execution`` |
| ``TradingClient.get_orders`` | ``reconciliation`` |
| ``TradingClient.get_all_positions``, ``get_open_position``, ``get_account`` | ``portfolio`` |
| every ``get_*`` of ``StockHistoricalDataClient``, ``CryptoHistoricalDataClient``, ``OptionHistoricalDataClient`` | ``market_data`` |

Modules are wrapped when the application imports them, not before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from typing import Any

from otel_trading.instrumentation import DEPENDENCIES, calls
from otel_trading.instrumentation.calls import LibraryInstrumentor, Method, OrderState, number
from otel_trading.onimport import on_import

VENUE = "alpaca"
_TRADING = {
    "submit_order": ("order", "submit"),
    "close_position": ("order", "submit"),  # answers the market order that closes it
    "close_all_positions": ("order", "submit"),  # answers one closing order per position
    "replace_order_by_id": ("order", "amend"),
    "cancel_order_by_id": ("order", "cancel"),
    "cancel_orders": ("order", "cancel"),
    "get_order_by_id": ("execution", None),
    "get_order_by_client_id": ("execution", None),
    "get_orders": ("reconciliation", None),
    "get_all_positions": ("portfolio", None),
    "get_open_position": ("portfolio", None),
    "get_account": ("portfolio", None),
}
_DATA = {
    "alpaca.data.historical.stock": "StockHistoricalDataClient",
    "alpaca.data.historical.crypto": "CryptoHistoricalDataClient",
    "alpaca.data.historical.option": "OptionHistoricalDataClient",
}
_REASONS_BY_STATUS = {401: "authentication", 403: "forbidden", 404: "order_not_found", 422: "invalid_order", 429: "rate_limit"}
_REASONS_BY_CLASS = {"Timeout": "timeout", "ConnectionError": "network"}  # requests' exceptions


class AlpacaInstrumentor(LibraryInstrumentor):
    """``opentelemetry-instrument`` turns it on (entry point ``alpaca``) when alpaca-py is installed."""

    _wrapped: list[tuple[Any, str]] = []
    _active = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return DEPENDENCIES["alpaca"]

    def _instrument(self, **kwargs: Any) -> None:
        AlpacaInstrumentor._active = True
        on_import("alpaca.trading.client", _hook_trading)
        for module in _DATA:
            on_import(module, _hook_data)

    def _uninstrument(self, **kwargs: Any) -> None:
        AlpacaInstrumentor._active = False
        for owner, name in self._wrapped:
            calls.unwrap(owner, name)
        self._wrapped.clear()


def _hook_trading(module: Any) -> None:
    for name, (kind, action) in _TRADING.items():
        _wrap(module.TradingClient, name, kind, action)


def _hook_data(module: Any) -> None:
    cls = getattr(module, _DATA[module.__name__])
    for name, function in vars(cls).items():
        if name.startswith("get_") and inspect.isfunction(function):
            _wrap(cls, name, "market_data", None)


def _wrap(cls: type, name: str, kind: str, action: str | None) -> None:
    function = cls.__dict__.get(name)
    if not AlpacaInstrumentor._active or not inspect.isfunction(function) or calls.wrapped(function) or (cls, name) in AlpacaInstrumentor._wrapped:
        return
    method = Method(kind, f"alpaca {name}", _request_reader(function, kind), _states if kind != "market_data" else None, reject_reason, action)
    calls.wrap(cls, name, method)
    AlpacaInstrumentor._wrapped.append((cls, name))


def _request_reader(function: Callable[..., Any], kind: str) -> Callable[[Any, tuple, dict], dict[str, Any]]:
    positions = {p: i - 1 for i, p in enumerate(inspect.signature(function).parameters) if i > 0}

    def arg(args: tuple, kwargs: dict, key: str) -> Any:
        i = positions.get(key)
        return args[i] if i is not None and i < len(args) else kwargs.get(key)

    def read(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
        if kind == "market_data":
            request = arg(args, kwargs, "request_params")
            symbols = getattr(request, "symbol_or_symbols", None)
            feed = _value(getattr(request, "feed", None))
            return {"symbol": ",".join(symbols) if isinstance(symbols, list) else symbols, "venue": VENUE, "feed": f"{VENUE}.{feed}" if feed else VENUE}  # symbol may be None
        order = arg(args, kwargs, "order_data")
        kw = {
            "venue": VENUE,
            "order_id": _text(arg(args, kwargs, "order_id")),
            "client_order_id": _text(arg(args, kwargs, "client_id") or getattr(order, "client_order_id", None)),
            "symbol": getattr(order, "symbol", None) or _text(arg(args, kwargs, "symbol_or_asset_id")),
        }
        if kind == "order" and order is not None:
            kw.update(
                side=_value(getattr(order, "side", None)),
                order_type=_value(getattr(order, "type", None)),
                quantity=number(getattr(order, "qty", None)),
                limit_price=number(getattr(order, "limit_price", None)),
                time_in_force=_value(getattr(order, "time_in_force", None)),
            )
        return {k: v for k, v in kw.items() if v is not None}

    return read


def _states(result: Any) -> list[OrderState]:
    """Orders in an answer: an ``Order`` (model or raw dict), a list of them, or of ``ClosePositionResponse``."""
    out = []
    for item in result if isinstance(result, list) else (result,):
        body = item.get("body") if isinstance(item, dict) else getattr(item, "body", None)
        order = item if body is None else body  # close_all_positions: the closing order is the body of each answer
        get = order.get if isinstance(order, dict) else lambda key, o=order: getattr(o, key, None)
        if get("id") is None or get("filled_qty") is None and get("status") is None:
            continue  # not an order (e.g. a cancel confirmation)
        out.append(
            OrderState(
                _text(get("id")),
                _text(get("client_order_id")),
                _value(get("status")),
                get("symbol"),
                _value(get("side")),
                _value(get("type") or get("order_type")),
                number(get("filled_qty")),
                number(get("filled_avg_price")),
            )
        )
    return out


def _value(value: Any) -> Any:
    """An alpaca enum's value (``OrderSide.BUY`` -> ``buy``)."""
    return getattr(value, "value", value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def reject_reason(exc: Exception) -> str:
    if "insufficient" in str(exc).lower():
        return "insufficient_funds"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return _REASONS_BY_STATUS.get(status, "exchange_unavailable" if status >= 500 else "exchange_error")
    for cls in type(exc).__mro__:
        reason = _REASONS_BY_CLASS.get(cls.__name__)
        if reason is not None:
            return reason
    return "error"
