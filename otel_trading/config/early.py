"""The check ``otel_trading_early.pth`` runs at interpreter start, when OTEL_PROPAGATORS is set.

``opentelemetry.propagate`` resolves OTEL_PROPAGATORS when it is imported and raises on a name
that is not installed; ``opentelemetry-instrument`` imports it before any distro code runs, so
a typo would stop the app. Validated here first: a bad value is reported and removed.
"""

from __future__ import annotations

import os

_BUILT_IN = frozenset({"tracecontext", "baggage", "none"})


def check_propagators() -> None:
    try:
        raw = os.environ.get("OTEL_PROPAGATORS")
        if raw is None or {n.strip() for n in raw.split(",")} <= _BUILT_IN:
            return  # the usual case costs no import
        from otel_trading.config.loader import load

        load(dict(os.environ))  # every bad value is reported and removed from os.environ, once
    except Exception:  # noqa: BLE001 - interpreter start-up must never fail because of us
        pass
