"""A fake exchange on 127.0.0.1 answering the Binance spot REST calls ccxt makes.

The demo's ``--exchange ccxt`` mode, the instrumentation tests and the bench
trade against it: no network, no account. Markets come from
``fixtures/binance_exchange_info.json``. MARKET orders fill at once; LIMIT
orders are NEW and fill the first time they are looked up. Order quantities
choose the answers real venues give when things go wrong:

* ``999``: 400 ``{"code": -2010, ...}`` insufficient balance (``ccxt.InsufficientFunds``)
* ``777``: 429 too many requests (``ccxt.RateLimitExceeded``)
* ``555``: the answer comes after ``slow_seconds`` (``ccxt.RequestTimeout`` with a shorter timeout)
* a price below 1: 400 ``{"code": -1013, ...}`` filter failure (``ccxt.InvalidOrder``)

``requests`` keeps every request (method, path, query, headers) so tests can
check what the client sent, e.g. the signatures that must stay out of traces.

``python -m otel_trading.demo.fake_exchange`` serves one in its own process: it prints
its URL and stops when its standard input closes.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from otel_trading.demo.venue import LocalVenue

MARKETS = Path(__file__).with_name("fixtures") / "binance_exchange_info.json"
PRICES = {"BTCUSDT": 50_000.0, "ETHUSDT": 3_000.0}
INSUFFICIENT, RATE_LIMITED, SLOW = 999.0, 777.0, 555.0


class FakeExchange(LocalVenue):
    """``with FakeExchange() as venue: exchange = ccxt.binance(venue.ccxt_config())``."""

    thread_name = "fake-exchange"

    def __init__(self, slow_seconds: float = 1.0):
        self.slow_seconds = slow_seconds
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []
        self._orders: dict[int, dict[str, Any]] = {}
        self._trades: list[dict[str, Any]] = []
        self._ids = itertools.count(random.randrange(10**6, 10**9))  # distinct ids across fakes, like distinct venues
        self._lock = threading.Lock()
        super().__init__()

    def respond(self, method: str, url: SplitResult, headers: dict[str, str], body: str) -> tuple[int, Any]:
        query = dict(parse_qsl(url.query)) | dict(parse_qsl(body))
        self.requests.append((method, url.path, query, headers))
        return self.answer(method, url.path, query)

    @staticmethod
    def ccxt_config(**extra: Any) -> dict[str, Any]:
        """Constructor config for ``ccxt.binance`` (sync or async) trading against a fake exchange."""
        config = {
            "apiKey": "fake-api-key-0123456789",
            "secret": "fake-secret-9876543210",
            "enableRateLimit": False,
            "options": {"fetchMarkets": ["spot"], "fetchMargins": False, "fetchCurrencies": False, "adjustForTimeDifference": False},
        }
        return {**config, **extra}

    def route(self, exchange: Any) -> Any:
        """Point every REST URL of a ccxt exchange at this fake (keeping the paths); returns the exchange."""
        return route(exchange, self.url)

    # -- answers -------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        route = (method, path.removeprefix("/api/v3"))
        if route == ("GET", "/exchangeInfo"):
            return 200, json.loads(MARKETS.read_text())
        if route in (("GET", "/ping"), ("GET", "/time")):
            return 200, {"serverTime": _now_ms()}
        if route == ("GET", "/ticker/24hr"):
            return 200, _ticker(query.get("symbol", "BTCUSDT"))
        if route == ("GET", "/depth"):
            price = PRICES.get(query.get("symbol", ""), 100.0)
            return 200, {"lastUpdateId": 1, "bids": [[f"{price - 1:.2f}", "1.5"]], "asks": [[f"{price + 1:.2f}", "2.0"]]}
        if route in (("GET", "/aggTrades"), ("GET", "/trades")):
            price = PRICES.get(query.get("symbol", ""), 100.0)
            return 200, [{"a": 1, "p": f"{price:.2f}", "q": "0.1", "f": 1, "l": 1, "T": _now_ms(), "m": True, "M": True}]
        if route == ("GET", "/klines"):
            close = f"{PRICES.get(query.get('symbol', ''), 100.0):.2f}"
            return 200, [[_now_ms() - 60_000, close, close, close, close, "10", _now_ms(), "1", 1, "5", "1", "0"]]
        if route == ("GET", "/account"):
            return 200, {"balances": [{"asset": "BTC", "free": "1.0", "locked": "0.0"}, {"asset": "USDT", "free": "100000.0", "locked": "0.0"}], "updateTime": _now_ms(), "accountType": "SPOT"}
        if route == ("POST", "/order"):
            return self._new_order(query)
        if route == ("GET", "/order"):
            return self._look_up(query)
        if route == ("DELETE", "/order"):
            return self._cancel(query)
        if route == ("DELETE", "/openOrders"):
            with self._lock:
                open_orders = [o for o in self._orders.values() if o["status"] == "NEW"]
                for order in open_orders:
                    order["status"] = "CANCELED"
            return 200, [dict(o) for o in open_orders]
        if route in (("GET", "/openOrders"), ("GET", "/allOrders")):
            with self._lock:
                orders = [dict(o) for o in self._orders.values() if route[1] == "/allOrders" or o["status"] == "NEW"]
            return 200, orders
        if route == ("GET", "/myTrades"):
            with self._lock:
                return 200, [t for t in self._trades if t["symbol"] == query.get("symbol", t["symbol"])]
        return 404, {"code": -1000, "msg": f"unknown endpoint {method} {path}"}

    def _new_order(self, query: dict[str, str]) -> tuple[int, Any]:
        quantity = float(query.get("quantity", "0"))
        price = float(query.get("price", "0") or 0)
        if quantity == INSUFFICIENT:
            return 400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}
        if quantity == RATE_LIMITED:
            return 429, {"code": -1003, "msg": "Too many requests; current limit is 1200 request weight per 1 MINUTE."}
        if quantity == SLOW:
            time.sleep(self.slow_seconds)
        if query.get("type") == "LIMIT" and price < 1:
            return 400, {"code": -1013, "msg": "Filter failure: PRICE_FILTER"}
        symbol = query.get("symbol", "BTCUSDT")
        with self._lock:
            order_id = next(self._ids)
            order = {
                "symbol": symbol,
                "orderId": order_id,
                "clientOrderId": query.get("newClientOrderId", f"fake-{order_id}"),
                "transactTime": _now_ms(),
                "time": _now_ms(),
                "updateTime": _now_ms(),
                "price": f"{price:.2f}",
                "origQty": f"{quantity:.5f}",
                "executedQty": "0.00000",
                "cummulativeQuoteQty": "0.00",
                "status": "NEW",
                "timeInForce": query.get("timeInForce", "GTC"),
                "type": query.get("type", "LIMIT"),
                "side": query.get("side", "BUY"),
            }
            self._orders[order_id] = order
            answer = dict(order)
            if order["type"] == "MARKET":
                answer = self._fill(order, PRICES.get(symbol, 100.0))
        return 200, answer

    def _fill(self, order: dict[str, Any], price: float) -> dict[str, Any]:
        """Fill the whole order at ``price`` (lock held); the answer carries the fill like Binance's FULL response."""
        trade_id = next(self._ids)
        quantity = order["origQty"]
        order.update(status="FILLED", executedQty=quantity, cummulativeQuoteQty=f"{price * float(quantity):.2f}", updateTime=_now_ms())
        self._trades.append(
            {
                "symbol": order["symbol"], "id": trade_id, "orderId": order["orderId"], "orderListId": -1,
                "price": f"{price:.2f}", "qty": quantity, "quoteQty": order["cummulativeQuoteQty"],
                "commission": "0", "commissionAsset": "USDT", "time": _now_ms(),
                "isBuyer": order["side"] == "BUY", "isMaker": order["type"] == "LIMIT", "isBestMatch": True,
            }
        )
        fill = {"price": f"{price:.2f}", "qty": quantity, "commission": "0", "commissionAsset": "USDT", "tradeId": trade_id}
        return {**order, "fills": [fill]}

    def _look_up(self, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            order = self._orders.get(int(query.get("orderId", "0") or 0))
            if order is None:
                return 400, {"code": -2013, "msg": "Order does not exist."}
            if order["status"] == "NEW":
                self._fill(order, float(order["price"]))
            return 200, dict(order)

    def _cancel(self, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            order = self._orders.get(int(query.get("orderId", "0") or 0))
            if order is None or order["status"] != "NEW":
                return 400, {"code": -2011, "msg": "Unknown order sent."}
            order["status"] = "CANCELED"
            return 200, dict(order)


def route(exchange: Any, url: str) -> Any:
    """Point every REST URL of a ccxt exchange at the fake exchange serving ``url``; returns the exchange."""
    exchange.urls["api"] = _rebased(exchange.urls["api"], url)
    return exchange


def _rebased(urls: Any, base: str) -> Any:
    if isinstance(urls, dict):
        return {key: _rebased(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith(("http://", "https://")):
        return base + urlsplit(urls).path
    return urls


def _ticker(symbol: str) -> dict[str, Any]:
    price = PRICES.get(symbol, 100.0)
    return {
        "symbol": symbol, "priceChange": "0", "priceChangePercent": "0", "weightedAvgPrice": f"{price:.2f}",
        "prevClosePrice": f"{price:.2f}", "lastPrice": f"{price:.2f}", "lastQty": "0.1", "bidPrice": f"{price - 1:.2f}",
        "bidQty": "1.5", "askPrice": f"{price + 1:.2f}", "askQty": "2.0", "openPrice": f"{price:.2f}",
        "highPrice": f"{price:.2f}", "lowPrice": f"{price:.2f}", "volume": "10", "quoteVolume": f"{price * 10:.2f}",
        "openTime": _now_ms() - 86_400_000, "closeTime": _now_ms(), "firstId": 1, "lastId": 2, "count": 2,
    }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


if __name__ == "__main__":
    with FakeExchange() as venue:
        print(venue.url, flush=True)
        sys.stdin.read()
