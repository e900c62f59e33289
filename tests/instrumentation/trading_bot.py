"""A trading bot that knows nothing of otel-trading: ccxt (sync and async) and alpaca-py against fake venues.

``python trading_bot.py BINANCE_URL ALPACA_URL`` prints one JSON line naming what it did.
"""

import asyncio
import json
import sys
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockLatestQuoteRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
)

BINANCE, ALPACA = sys.argv[1], sys.argv[2]
KEYS = {"apiKey": "bot-api-key-ABCDEF123456", "secret": "bot-secret-GHIJKL789012"}
OPTIONS = {"fetchMarkets": ["spot"], "fetchMargins": False, "fetchCurrencies": False}


def at_fake(exchange):
    exchange.urls["api"] = {k: BINANCE + urlsplit(v).path for k, v in exchange.urls["api"].items() if isinstance(v, str)}
    return exchange


def ccxt_sync(done):
    exchange = at_fake(ccxt.binance({**KEYS, "enableRateLimit": False, "timeout": 400, "options": OPTIONS}))
    exchange.load_markets()
    exchange.fetch_ticker("BTC/USDT")
    exchange.fetch_order_book("BTC/USDT")
    limit = exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 49_000, {"clientOrderId": "bot-limit-1"})
    market = exchange.create_market_sell_order("BTC/USDT", 0.02)
    exchange.fetch_order(limit["id"], "BTC/USDT")  # the fake fills it now
    exchange.fetch_my_trades("BTC/USDT")
    exchange.fetch_balance()
    resting = exchange.create_limit_buy_order("ETH/USDT", 1, 2_900)
    exchange.cancel_order(resting["id"], "ETH/USDT")
    done.update(limit=limit["id"], market=market["id"], resting=resting["id"])
    for quantity, price, error in ((999, 49_000, ccxt.InsufficientFunds), (1, 0.5, ccxt.InvalidOrder), (777, 49_000, ccxt.DDoSProtection), (555, 49_000, ccxt.RequestTimeout)):
        try:
            exchange.create_order("BTC/USDT", "limit", "buy", quantity, price)
        except error as exc:
            done.setdefault("errors", []).append(type(exc).__name__)


async def ccxt_async_run(done):
    exchange = at_fake(ccxt_async.binance({**KEYS, "enableRateLimit": False, "options": OPTIONS}))
    try:
        order = await exchange.create_order("ETH/USDT", "market", "buy", 0.5)
        await exchange.fetch_ohlcv("ETH/USDT", "1m")
        done["async_market"] = order["id"]
    finally:
        await exchange.close()


def alpaca(done):
    client = TradingClient("PKBOTKEY0123456789", "botalpacasecret0123456789", paper=True, url_override=ALPACA)
    market = client.submit_order(MarketOrderRequest(symbol="AAPL", qty=10, side="buy", time_in_force="day", client_order_id="bot-aapl-1"))
    limit = client.submit_order(LimitOrderRequest(symbol="MSFT", qty=5, side="sell", time_in_force="day", limit_price=400))
    client.get_order_by_id(limit.id)  # the fake fills it now
    resting = client.submit_order(LimitOrderRequest(symbol="MSFT", qty=1, side="buy", time_in_force="day", limit_price=300))
    replaced = client.replace_order_by_id(resting.id, ReplaceOrderRequest(qty=2))  # Alpaca answers with a new order id
    client.cancel_order_by_id(replaced.id)
    client.get_account()
    client.get_all_positions()
    try:
        client.submit_order(MarketOrderRequest(symbol="AAPL", qty=999, side="buy", time_in_force="day"))
    except Exception as exc:  # alpaca.common.exceptions.APIError
        done.setdefault("errors", []).append(type(exc).__name__)
    data = StockHistoricalDataClient("PKBOTKEY0123456789", "botalpacasecret0123456789", url_override=ALPACA)
    data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))
    done.update(alpaca_market=str(market.id), alpaca_limit=str(limit.id), alpaca_resting=str(resting.id), alpaca_replaced=str(replaced.id))


if __name__ == "__main__":
    done = {}
    ccxt_sync(done)
    asyncio.run(ccxt_async_run(done))
    alpaca(done)
    print(json.dumps(done))
