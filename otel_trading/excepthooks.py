"""Python's own error output, redacted: the traceback of an uncaught exception.

An exception that ends the program (``sys.excepthook``), a thread (``threading.excepthook``)
or is raised where Python can only report it (``sys.unraisablehook``: ``__del__``, callbacks)
is printed by Python itself, message included: ``ValueError("bad key sk_live_...")`` or a
URL with a password would reach the terminal and any log file collecting stderr. With
redaction on, ``install()`` replaces the three hooks, **only where they are still Python's
defaults**, by hooks that print the same text through the redactor. A hook the app (or a
tool such as an error tracker) installed before us is left alone: it decides what it prints.
One installed after us replaces ours the same way; most call the previous hook (ours) to
print. The exit code is Python's (1 for an uncaught exception), and a hook that fails prints
the exception type rather than the unmasked text.

Nothing is exported from here: an uncaught exception becomes an OTel log record with the
``exceptions`` instrumentation, whose records the redacting log processor masks.
(asyncio's "Task exception was never retrieved" is a stdlib logging call, redacted there.)
"""

from __future__ import annotations

import sys
import threading
import traceback
from types import TracebackType
from typing import Any

from otel_trading.redaction import Redactor


def install(redactor: Redactor) -> None:
    """Redacting hooks in place of Python's default ones (a no-op when redaction is off)."""
    if not redactor.enabled:
        return
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _Uncaught(redactor)
    if threading.excepthook is threading.__excepthook__:
        threading.excepthook = _UncaughtInThread(redactor)
    if sys.unraisablehook is sys.__unraisablehook__:
        sys.unraisablehook = _Unraisable(redactor)


def _write(redactor: Redactor, header: str, exc_type: Any, exc: BaseException | None, tb: TracebackType | None) -> None:
    stderr = sys.stderr
    if stderr is None:  # pythonw, a closed stderr: Python's hooks print nothing either
        return
    try:
        text = header + "".join(traceback.format_exception(exc_type, exc, tb))
        text = redactor.redact_text(text)
    except Exception:  # noqa: BLE001 - fail closed: the type is said, nothing of a message that could not be checked
        text = header + f"{getattr(exc_type, '__name__', 'exception')}: <traceback could not be redacted>\n"
    try:
        stderr.write(text)
        stderr.flush()
    except Exception:  # noqa: BLE001 - nowhere left to say it; Python's own hook would fail the same way
        pass


class _Uncaught:
    """``sys.excepthook``: the traceback Python prints when an exception ends the program, redacted."""

    def __init__(self, redactor: Redactor):
        self._redactor = redactor

    def __call__(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        _write(self._redactor, "", exc_type, exc, tb)


class _UncaughtInThread:
    """``threading.excepthook``: ``Exception in thread NAME:`` and the traceback, redacted (SystemExit is silent, as in Python)."""

    def __init__(self, redactor: Redactor):
        self._redactor = redactor

    def __call__(self, args: Any) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else threading.get_ident()
        _write(self._redactor, f"Exception in thread {name}:\n", args.exc_type, args.exc_value, args.exc_traceback)


class _Unraisable:
    """``sys.unraisablehook``: ``Exception ignored in: OBJECT`` and the traceback, redacted."""

    def __init__(self, redactor: Redactor):
        self._redactor = redactor

    def __call__(self, unraisable: Any) -> None:
        try:
            where = f"{unraisable.err_msg or 'Exception ignored in'}: {unraisable.object!r}\n" if unraisable.object is not None else f"{unraisable.err_msg or 'Exception ignored'}\n"
        except Exception:  # noqa: BLE001 - a repr that raises
            where = "Exception ignored in: <object repr() failed>\n"
        _write(self._redactor, where, unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
