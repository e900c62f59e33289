"""A span made with otel-trading's helper (the same span as span_api.py, trading kind set)."""

import _timing

import otel_trading

opts = _timing.args()


def one() -> None:
    with otel_trading.signal_span("signal", strategy_id="mm-1", symbol="AAPL", venue="XNAS"):
        pass


_timing.write(opts.out, _timing.per_call_ns(one, opts.n, opts.reps))
