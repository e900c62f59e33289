"""A busy producer: spans flat out (``--rate 0``) or paced at ``--rate`` spans/s for ``--seconds``.

It flushes through the API's provider (whatever configured it) and reports how
many spans it made and how long producing and flushing took.
"""

import time

import _timing
from opentelemetry import trace

opts = _timing.args(rate=0.0, seconds=1.0)
tracer = trace.get_tracer("bench.app")
attrs = {"trading.span.kind": "order", "trading.order.id": "o-1", "trading.order.quantity": 100, "trading.price": 101.25,
         "trading.strategy.id": "mm-1", "trading.symbol": "AAPL", "trading.venue": "XNAS"}


def span() -> None:
    with tracer.start_as_current_span("order.submit", attributes=attrs):
        pass


start = time.perf_counter()
made = 0
if opts.rate <= 0:
    for _ in range(opts.n):
        span()
    made = opts.n
else:
    chunk = max(1, int(opts.rate / 200))  # ~200 bursts per second
    while (now := time.perf_counter() - start) < opts.seconds:
        due = int(now * opts.rate)
        if made >= due:
            time.sleep(chunk / opts.rate / 2)
            continue
        for _ in range(chunk):
            span()
        made += chunk
produced = time.perf_counter()
flush = getattr(trace.get_tracer_provider(), "force_flush", None)
if flush is not None:
    flush()
flushed = time.perf_counter()
_timing.write(opts.out, {"made": made, "produce_s": produced - start, "flush_s": flushed - start})
