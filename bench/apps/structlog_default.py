"""An app that uses structlog without configuring it."""

import _timing
import structlog

opts = _timing.args()
log = structlog.get_logger("app")


def one() -> None:
    log.info("order placed", symbol="AAPL", side="buy", qty=100, price=187.25, order_id="ord-000123", venue="XNAS")


_timing.write(opts.out, _timing.per_call_ns(one, opts.n, opts.reps))
