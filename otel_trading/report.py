"""The one way otel-trading tells the user something went wrong: a single line on stderr.

Never stdout (that is the app's), never an exception (telemetry must not break the app).
"""

from __future__ import annotations

import logging
import sys
import time


def report(message: str) -> None:
    """Print ``otel-trading: <message>`` on stderr; silently gives up if stderr is gone."""
    try:
        print(f"otel-trading: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # closed or broken stderr
        pass


_reported: set[object] = set()


def report_once(message: str, key: object = None) -> None:
    """``report`` the first time for ``key`` (default: the message itself); at most 1,000 keys are kept."""
    key = message if key is None else key
    if key in _reported:
        return
    if len(_reported) < 1000:
        _reported.add(key)
    report(message)


class SdkWarnings(logging.Handler):
    """The SDK's own warnings (``opentelemetry.*`` loggers: failed exports, retries, bad detectors) as
    report lines: one line each on stderr, never the app's stdout, never a traceback; secrets masked.
    The same message template is repeated at most once a minute (a down collector retries forever)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._last: dict[tuple[str, str], float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from otel_trading.redaction import (
                get_redactor,  # late: SDK modules read the environment at import
            )

            key = (record.name, str(record.msg)[:200])
            now = time.monotonic()
            if now - self._last.get(key, -60.0) < 60.0:
                return
            if len(self._last) < 1000:
                self._last[key] = now
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            text = get_redactor().redact_text(" ".join(text.split()))
            report(f"{record.name}: {text[:500]}")
        except Exception:  # a message that cannot be rendered is not worth breaking the app for
            report(f"{record.name}: (a warning that could not be rendered)")


_sdk_warnings = SdkWarnings()


def route_sdk_warnings() -> None:
    """Send the ``opentelemetry`` loggers' warnings to ``SdkWarnings`` only (idempotent)."""
    sdk_logger = logging.getLogger("opentelemetry")
    if _sdk_warnings not in sdk_logger.handlers:
        sdk_logger.addHandler(_sdk_warnings)
    sdk_logger.propagate = False
