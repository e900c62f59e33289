"""A bot's ccxt binance ``create_order``, the venue answering at once: plain ccxt, no telemetry code
(``opentelemetry-instrument`` adds the order span and metrics). Timed in CPU time (this process)."""

import time

import _exchange
import _timing

opts = _timing.args()
exchange = _exchange.Answered()
args = _exchange.ARGS


def one() -> None:
    exchange.create_order(*args)


_timing.write(opts.out, _timing.per_call_ns(one, opts.n, opts.reps, clock=time.process_time_ns))
