"""The same ``create_order`` inside one helper order span, the ccxt instrumentation off
(``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=ccxt``): the yardstick of the instrumentation's budget."""

import time

import _exchange
import _timing

import otel_trading

opts = _timing.args()
exchange = _exchange.Answered()
args = _exchange.ARGS


def one() -> None:
    with otel_trading.order_span("order", action="submit", symbol="BTC/USDT", venue="binance", side="buy", order_type="limit", quantity=0.01, limit_price=49_000.0):
        exchange.create_order(*args)


_timing.write(opts.out, _timing.per_call_ns(one, opts.n, opts.reps, clock=time.process_time_ns))
