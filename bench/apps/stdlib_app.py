"""An app that logs with the standard library (basicConfig on stderr)."""

import logging

import _timing

opts = _timing.args()
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
log = logging.getLogger("app")


def one() -> None:
    log.info("order accepted %s", "ord-000123", extra={"qty": 100})


_timing.write(opts.out, _timing.per_call_ns(one, opts.n, opts.reps))
