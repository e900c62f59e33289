"""The one way otel-trading tells the user something went wrong: a single line on stderr.

Never stdout (that is the app's), never an exception (telemetry must not break the app).
"""

from __future__ import annotations

import sys


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
