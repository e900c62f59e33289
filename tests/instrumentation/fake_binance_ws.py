"""A fake Binance WebSocket endpoint on 127.0.0.1 for ``ccxt.pro``: market streams and the WebSocket API.

``ccxt.pro`` speaks WebSocket through aiohttp, so this is a small ``aiohttp.web`` server in the
test's event loop. It answers what ccxt.pro's binance client sends (messages as in the pinned
ccxt's ``ccxt/pro/binance.py``):

* ``{"method": "SUBSCRIBE", "params": ["btcusdt@miniTicker"], "id": 1}`` on the stream URL: the
  subscription's result, then one ``24hrMiniTicker`` (or ``24hrTicker``) event per stream;
* ``{"id": "1", "method": "order.place", "params": {...}}`` on the WebSocket-API URL: the new
  order, ``NEW``, as Binance's FULL response.

``messages`` keeps everything the client sent (API key and signature included) so tests can
check that none of it reaches telemetry. REST calls (markets) go to ``FakeExchange``.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from aiohttp import WSMsgType, web

PRICES = {"BTCUSDT": 50_000.0, "ETHUSDT": 3_000.0}
_EVENTS = {"miniTicker": "24hrMiniTicker", "ticker": "24hrTicker"}


class FakeBinanceWs:
    """``async with FakeBinanceWs() as streams: streams.route(ccxt.pro.binance(...))``."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._ids = itertools.count(7_000_001)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeBinanceWs:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def route(self, exchange: Any) -> Any:
        """Point a ``ccxt.pro.binance`` spot stream and WebSocket-API URLs at this fake; returns the exchange."""
        exchange.urls["api"]["ws"]["spot"] = f"{self.url}/ws"
        exchange.urls["api"]["ws"]["ws-api"]["spot"] = f"{self.url}/ws-api/v3"
        return exchange

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            message = json.loads(msg.data)
            self.messages.append(message)
            for answer in self.answer(message):
                await ws.send_json(answer)
        return ws

    def answer(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        if message.get("method") == "SUBSCRIBE":
            answers: list[dict[str, Any]] = [{"result": None, "id": message["id"]}]
            for stream in message.get("params", []):
                market, channel = stream.split("@")[:2]
                if channel in _EVENTS:
                    answers.append(_ticker(_EVENTS[channel], market.upper()))
            return answers
        if message.get("method") == "order.place":
            return [{"id": message["id"], "status": 200, "result": self._order(message["params"])}]
        return [{"id": message.get("id"), "status": 400, "error": {"code": -1100, "msg": f"unknown method {message.get('method')}"}}]

    def _order(self, params: dict[str, Any]) -> dict[str, Any]:
        now = _now_ms()
        return {
            "symbol": params["symbol"], "orderId": next(self._ids), "orderListId": -1, "clientOrderId": params.get("newClientOrderId", "ws-1"),
            "transactTime": now, "price": params.get("price", "0"), "origQty": params["quantity"], "executedQty": "0",
            "cummulativeQuoteQty": "0", "status": "NEW", "timeInForce": params.get("timeInForce", "GTC"), "type": params["type"],
            "side": params["side"], "workingTime": now, "fills": [],
        }


def _ticker(event: str, symbol: str) -> dict[str, Any]:
    now, price = _now_ms(), PRICES.get(symbol, 100.0)
    text = f"{price:.2f}"
    return {
        "e": event, "E": now, "s": symbol, "p": "0", "P": "0", "w": text, "x": text, "c": text, "Q": "0.1",
        "b": f"{price - 1:.2f}", "B": "1", "a": f"{price + 1:.2f}", "A": "2", "o": text, "h": text, "l": text,
        "v": "10", "q": f"{price * 10:.2f}", "O": now - 86_400_000, "C": now, "F": 1, "L": 2, "n": 2,
    }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
