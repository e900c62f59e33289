"""A ccxt binance whose ``create_order`` answers at once: what a bench app times is the call's
telemetry alone, not a venue. The answer is the unified order dict ccxt returns for a new limit order."""

import ccxt

ORDER = {"id": "1", "clientOrderId": "c-1", "status": "open", "symbol": "BTC/USDT", "side": "buy", "type": "limit", "filled": 0.0, "average": None, "trades": []}
ARGS = ("BTC/USDT", "limit", "buy", 0.01, 49_000)


class Answered(ccxt.binance):
    def create_order(self, symbol, type, side, amount, price=None, params={}):  # noqa: A002 - ccxt's names
        return ORDER
