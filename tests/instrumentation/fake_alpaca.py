"""A fake Alpaca on 127.0.0.1 answering the REST calls alpaca-py's TradingClient and data clients make.

Point a client at it with ``url_override=venue.url``. MARKET orders fill at once,
LIMIT orders are ``new`` and fill when looked up. Closing a position (one, or all of
``POSITIONS``) submits the market order that flattens it. Quantity ``999`` gets 403
"insufficient buying power", a limit price below 1 gets 422, quantity ``555``
answers after ``slow_seconds``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import SplitResult, parse_qsl

from otel_trading.demo.venue import LocalVenue

PRICES = {"AAPL": 190.0, "MSFT": 420.0, "BTC/USD": 50_000.0}
ASSET_ID = "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415"
POSITIONS = {"AAPL": 10, "MSFT": -5}  # symbol -> quantity held (negative: short)


class FakeAlpaca(LocalVenue):
    thread_name = "fake-alpaca"

    def __init__(self, slow_seconds: float = 1.0):
        self.slow_seconds = slow_seconds
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []
        self._orders: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        super().__init__()

    def respond(self, method: str, url: SplitResult, headers: dict[str, str], body: str) -> tuple[int, Any]:
        query = dict(parse_qsl(url.query))
        self.requests.append((method, url.path, query, headers))
        return self.answer(method, url.path, query, json.loads(body) if body.startswith("{") else {})

    def answer(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v2/orders":
            return self._submit(body)
        if method == "GET" and path == "/v2/orders":
            with self._lock:
                return 200, [dict(o) for o in self._orders.values()]
        if method == "DELETE" and path == "/v2/orders":
            with self._lock:
                canceled = [o for o in self._orders.values() if o["status"] == "new"]
                for order in canceled:
                    order["status"] = "canceled"
            return 207, [{"id": o["id"], "status": 200} for o in canceled]
        if len(parts) == 3 and parts[:2] == ["v2", "orders"]:
            return self._one(method, parts[2], body)
        if method == "GET" and path == "/v2/orders:by_client_order_id":
            with self._lock:
                found = [o for o in self._orders.values() if o["client_order_id"] == query.get("client_order_id")]
            return (200, dict(found[0])) if found else (404, {"code": 40410000, "message": "order not found"})
        if method == "GET" and path == "/v2/account":
            return 200, {"id": str(uuid.uuid4()), "account_number": "PA3SECRETACCT", "status": "ACTIVE", "currency": "USD", "cash": "100000", "buying_power": "200000", "equity": "100000"}
        if method == "GET" and path == "/v2/positions":
            return 200, [
                {"asset_id": ASSET_ID, "symbol": "AAPL", "exchange": "NASDAQ", "asset_class": "us_equity", "avg_entry_price": "190", "qty": "10", "side": "long", "cost_basis": "1900", "market_value": "1900", "unrealized_pl": "0"}
            ]
        if method == "DELETE" and path == "/v2/positions":  # close all: one market order per position
            return 207, [{"symbol": symbol, "status": 200, "body": self._close(symbol)} for symbol in POSITIONS]
        if method == "DELETE" and len(parts) == 3 and parts[:2] == ["v2", "positions"]:
            if parts[2] not in POSITIONS:
                return 404, {"code": 40410000, "message": "position does not exist"}
            return 200, self._close(parts[2])
        if method == "GET" and path.startswith("/v2/stocks/") and path.endswith("/latest"):
            symbols = query.get("symbols", "AAPL").split(",")
            return 200, {"quotes": {s: {"t": _now(), "ax": "V", "ap": PRICES.get(s, 100.0) + 0.01, "as": 1, "bx": "V", "bp": PRICES.get(s, 100.0), "bs": 2, "c": ["R"], "z": "C"} for s in symbols}}
        if method == "GET" and path == "/v2/stocks/bars":
            symbols = query.get("symbols", "AAPL").split(",")
            price = lambda s: PRICES.get(s, 100.0)  # noqa: E731
            return 200, {"bars": {s: [{"t": _now(), "o": price(s), "h": price(s), "l": price(s), "c": price(s), "v": 100, "n": 3, "vw": price(s)}] for s in symbols}, "next_page_token": None}
        return 404, {"code": 40410000, "message": f"unknown endpoint {method} {path}"}

    def _submit(self, body: dict[str, Any]) -> tuple[int, Any]:
        quantity = float(body.get("qty") or 0)
        limit = body.get("limit_price")
        if quantity == 999:
            return 403, {"code": 40310000, "message": "insufficient buying power"}
        if quantity == 555:
            time.sleep(self.slow_seconds)
        if limit is not None and float(limit) < 1:
            return 422, {"code": 42210000, "message": "invalid limit_price"}
        now = _now()
        order = {
            "id": str(uuid.uuid4()), "client_order_id": body.get("client_order_id") or str(uuid.uuid4()),
            "created_at": now, "updated_at": now, "submitted_at": now, "filled_at": None,
            "asset_id": ASSET_ID, "symbol": body.get("symbol"), "asset_class": "us_equity",
            "qty": body.get("qty"), "filled_qty": "0", "filled_avg_price": None,
            "order_class": "simple", "order_type": body.get("type"), "type": body.get("type"), "side": body.get("side"),
            "time_in_force": body.get("time_in_force", "day"), "limit_price": limit, "stop_price": None,
            "status": "new", "extended_hours": False, "legs": None,
        }
        if body.get("type") == "market":
            _fill(order, PRICES.get(order["symbol"], 100.0))
        with self._lock:
            self._orders[order["id"]] = order
        return 200, dict(order)

    def _close(self, symbol: str) -> dict[str, Any]:
        """The market order that closes a position (filled at once, as market orders are here)."""
        side = "sell" if POSITIONS[symbol] > 0 else "buy"
        return self._submit({"symbol": symbol, "qty": str(abs(POSITIONS[symbol])), "side": side, "type": "market", "time_in_force": "day"})[1]

    def _one(self, method: str, order_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                return 404, {"code": 40410000, "message": "order not found"}
            if method == "DELETE":
                if order["status"] != "new":
                    return 422, {"code": 42210000, "message": f"order is already in {order['status']} state"}
                order["status"] = "canceled"
                return 204, None
            if method == "PATCH":
                order.update(status="replaced")
                new = {**order, "id": str(uuid.uuid4()), "status": "new", "replaces": order_id}
                new.update({k: str(v) for k, v in body.items() if k in ("qty", "limit_price") and v is not None})
                self._orders[new["id"]] = new
                return 200, dict(new)
            if order["status"] == "new":
                _fill(order, float(order["limit_price"] or PRICES.get(order["symbol"], 100.0)))
            return 200, dict(order)


def _fill(order: dict[str, Any], price: float) -> None:
    order.update(status="filled", filled_qty=order["qty"], filled_avg_price=f"{price:.2f}", filled_at=_now(), updated_at=_now())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
