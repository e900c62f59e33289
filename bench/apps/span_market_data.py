"""A market-data span made with otel-trading's helper (the bench runs it with market_data=0 sampling)."""

import _timing

import otel_trading

opts = _timing.args()


def one() -> None:
    with otel_trading.market_data_span("tick", symbol="AAPL", feed="itch"):
        pass


_timing.write(opts.out, _timing.per_call_ns(one, opts.n, opts.reps))
