"""A span made with the plain OpenTelemetry API, as instrumentation libraries make them."""

import _timing
from opentelemetry import trace

opts = _timing.args()
tracer = trace.get_tracer("bench.app")
attrs = {"trading.strategy.id": "mm-1", "trading.symbol": "AAPL", "trading.venue": "XNAS"}


def one() -> None:
    with tracer.start_as_current_span("signal", attributes=attrs):
        pass


_timing.write(opts.out, _timing.per_call_ns(one, opts.n, opts.reps))
