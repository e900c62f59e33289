"""Nothing buffered is lost when the process ends.

At interpreter exit and on SIGTERM the providers are flushed and shut down,
bounded by OTEL_TRADING_SHUTDOWN_TIMEOUT so a hung collector cannot hold the
exit. After SIGTERM the process still ends the way it would have without us:
an app's own handler runs, otherwise the default action (exit by signal). A
SIGTERM that interrupts the exit flush itself (a multiprocessing pool terminating
workers that are already exiting) lets the flush finish and the exit go on.
Forked children restart their export threads (the SDK does that itself) and,
since multiprocessing children leave through ``os._exit`` without atexit,
flush through multiprocessing's own finalizers.

``multiprocessing`` is not imported for this: once it is, every stdlib
``LogRecord`` asks it for the process name (~2% of a log line). An app that
forks multiprocessing children has imported it before the fork; the fork hook
then registers with it in the child, before the child runs its after-fork
callbacks.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref

_registered: list[weakref.ref] = []  # telemetry already known to multiprocessing (inherited by children)


def install(telemetry) -> None:
    atexit.register(telemetry.shutdown)
    if hasattr(os, "register_at_fork"):
        ref = weakref.ref(telemetry)
        os.register_at_fork(after_in_child=lambda: _register_with_multiprocessing(ref()))
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm(telemetry, previous))


def _register_with_multiprocessing(telemetry) -> None:
    """Flush in multiprocessing children, once per telemetry, when the app uses multiprocessing."""
    util = sys.modules.get("multiprocessing.util")
    if util is None or telemetry is None or any(r() is telemetry for r in _registered):
        return
    _registered.append(weakref.ref(telemetry))
    util.register_after_fork(telemetry, _flush_when_child_exits)


def _flush_when_child_exits(telemetry) -> None:
    sys.modules["multiprocessing.util"].Finalize(telemetry, telemetry.shutdown, exitpriority=100)


def _on_sigterm(telemetry, previous):
    def handler(signum, frame):
        if telemetry.shutting_down_here():
            return  # the process is already ending: the interrupted exit flush finishes, the exit goes on
        telemetry.shutdown()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    return handler
