"""An app that configures structlog itself (JSON lines on stdout) and logs an order line."""

import logging

import _timing
import structlog

opts = _timing.args()
structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.JSONRenderer(),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    logger_factory=structlog.PrintLoggerFactory(),
    cache_logger_on_first_use=True,
)
log = structlog.get_logger("app")


def one() -> None:
    log.info("order placed", symbol="AAPL", side="buy", qty=100, price=187.25, order_id="ord-000123", venue="XNAS")


_timing.write(opts.out, _timing.per_call_ns(one, opts.n, opts.reps))
