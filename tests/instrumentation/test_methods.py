"""Methods beyond one REST order: ccxt batches, ccxt.pro WebSocket streams and WebSocket-API orders
(against a local WebSocket server), alpaca-py position closes."""

from __future__ import annotations

import asyncio

import ccxt
import ccxt.pro as ccxt_pro
import pytest
from alpaca.trading.client import TradingClient
from fake_alpaca import POSITIONS, FakeAlpaca
from fake_binance_ws import FakeBinanceWs
from support import exported

from otel_trading.demo.fake_exchange import FakeExchange
from otel_trading.instrumentation import calls
from otel_trading.instrumentation.alpaca import AlpacaInstrumentor
from otel_trading.instrumentation.ccxt import CcxtInstrumentor


@pytest.fixture(scope="module")
def instrumented():
    CcxtInstrumentor().instrument()
    AlpacaInstrumentor().instrument()
    yield
    AlpacaInstrumentor().uninstrument()
    CcxtInstrumentor().uninstrument()


@pytest.fixture(scope="module")
def venue():
    with FakeExchange() as fake:
        yield fake


def _attribute_text(spans) -> str:
    return " ".join(f"{k}={v}" for s in spans for k, v in [*s.attributes.items(), *((k2, v2) for e in s.events for k2, v2 in e.attributes.items())])


class BatchBinance(ccxt.binance):
    """A venue whose batch endpoint places each order in turn (Binance spot has none; the fake is spot)."""

    def create_orders(self, orders, params={}):  # noqa: B006 - ccxt's signature
        return [self.create_order(o["symbol"], o["type"], o["side"], o["amount"], o.get("price"), o.get("params", {})) for o in orders]


def test_a_batch_is_one_order_span_and_registers_every_order(spans, metric_reader, instrumented, venue):
    calls.FILLS.clear()
    exchange = venue.route(BatchBinance(venue.ccxt_config()))
    exchange.load_markets()
    orders = exchange.create_orders([
        {"symbol": "BTC/USDT", "type": "limit", "side": "buy", "amount": 0.01, "price": 49_000},
        {"symbol": "ETH/USDT", "type": "limit", "side": "sell", "amount": 1, "price": 3_100},
    ])
    batch = spans.named("ccxt create_orders")
    assert [s.name for s in spans.finished()] == ["ccxt create_orders"]  # the calls it makes inside add no span
    assert batch.attributes["trading.span.kind"] == "order"
    assert batch.attributes["trading.symbol"] == "BTC/USDT,ETH/USDT"
    assert batch.attributes["trading.order.action"] == "submit"
    for order in orders:  # the venue fills each when looked up: the fill links to the batch's span
        exchange.fetch_order(order["id"], order["symbol"])
    fills = [s for s in spans.finished() if s.name == "fill"]
    assert sorted(f.attributes["trading.order.id"] for f in fills) == sorted(o["id"] for o in orders)
    assert all(f.links[0].context.span_id == batch.context.span_id for f in fills)
    metrics = exported(metric_reader)
    assert sum(p.count for p in metrics["trading.order.ack.duration"].data.data_points) == 2
    assert sorted((p.attributes["trading.side"], p.value) for p in metrics["trading.orders"].data.data_points) == [("buy", 1), ("sell", 1)]


def test_ccxt_pro_streams_and_websocket_orders(spans, metric_reader, instrumented, venue):
    async def trade():
        async with FakeBinanceWs() as streams:
            exchange = streams.route(venue.route(ccxt_pro.binance(venue.ccxt_config())))
            try:
                ticker = await asyncio.wait_for(exchange.watch_ticker("BTC/USDT"), 10)
                order = await asyncio.wait_for(exchange.create_order_ws("BTC/USDT", "limit", "buy", 0.01, 49_000), 10)
            finally:
                await exchange.close()
            return ticker, order, streams.messages

    before = _ticks(metric_reader)
    ticker, order, sent = asyncio.run(trade())
    assert ticker["last"] == 50_000.0 and order["status"] == "open"
    # watch_ticker is built on watch_tickers: one market-data span, one request counted
    watched = [s for s in spans.finished() if s.name.startswith("ccxt watch_")]
    assert [(s.name, s.attributes["trading.span.kind"], s.attributes["trading.symbol"], s.attributes["trading.venue"]) for s in watched] == [
        ("ccxt watch_ticker", "market_data", "BTC/USDT", "binance")
    ]
    assert _ticks(metric_reader) - before == 1
    placed = spans.named("ccxt create_order_ws")
    assert placed.attributes["trading.span.kind"] == "order"
    assert placed.attributes["trading.order.id"] == order["id"]
    assert placed.attributes["trading.order.status"] == "open"
    assert (placed.attributes["trading.side"], placed.attributes["trading.order.quantity"], placed.attributes["trading.order.limit_price"]) == ("buy", 0.01, 49_000.0)
    # the WebSocket-API request carried the key and its signature; no attribute does
    request = next(m for m in sent if m.get("method") == "order.place")["params"]
    text = _attribute_text(spans.finished())
    for secret in (request["apiKey"], request["signature"], venue.ccxt_config()["secret"]):
        assert secret not in text


def _ticks(metric_reader) -> int:
    calls.REQUESTS.flush()
    ticks = exported(metric_reader).get("trading.market_data.ticks")
    return sum(p.value for p in ticks.data.data_points if p.attributes == {"trading.feed": "binance"}) if ticks else 0


def test_alpaca_position_closes_are_order_spans_of_their_closing_orders(spans, metric_reader, instrumented):
    calls.FILLS.clear()
    with FakeAlpaca() as fake:
        client = TradingClient("PKTESTKEY0123456789", "testalpacasecret0123456789", paper=True, url_override=fake.url)
        closed = client.close_position("AAPL")
        one = spans.named("alpaca close_position")
        assert one.attributes["trading.span.kind"] == "order"
        assert (one.attributes["trading.symbol"], one.attributes["trading.order.action"]) == ("AAPL", "submit")
        assert (one.attributes["trading.order.id"], one.attributes["trading.order.status"]) == (str(closed.id), "filled")
        everything = client.close_all_positions()
    assert len(everything) == len(POSITIONS)
    every = spans.named("alpaca close_all_positions")
    assert "trading.order.id" not in every.attributes  # several orders: each is registered, none is the span's own
    fills = {f.attributes["trading.order.id"]: f for f in spans.finished() if f.name == "fill"}
    assert set(fills) == {str(closed.id), *(str(r.body.id) for r in everything)}
    assert all(fills[str(r.body.id)].links[0].context.span_id == every.context.span_id for r in everything)
    orders = exported(metric_reader)["trading.orders"].data.data_points
    assert sorted((p.attributes["trading.side"], p.value) for p in orders) == [("buy", 1), ("sell", 2)]  # AAPL twice, MSFT short once
