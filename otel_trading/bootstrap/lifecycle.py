"""Nothing buffered is lost when the process ends.

At interpreter exit and on SIGTERM the providers are flushed and shut down,
bounded by OTEL_TRADING_SHUTDOWN_TIMEOUT so a hung collector cannot hold the
exit. After SIGTERM the process still ends the way it would have without us:
an app's own handler runs, otherwise the default action (exit by signal).
Forked children restart their export threads (the SDK does that itself) and,
since multiprocessing children leave through ``os._exit`` without atexit,
flush through multiprocessing's own finalizers (registered once the app imports
multiprocessing: only then can it start such children).
"""

from __future__ import annotations

import atexit
import os
import signal
import threading

from otel_trading.onimport import on_import


def install(telemetry) -> None:
    atexit.register(telemetry.shutdown)
    on_import("multiprocessing.util", lambda util: util.register_after_fork(telemetry, _flush_when_child_exits))
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm(telemetry, previous))


def _flush_when_child_exits(telemetry) -> None:
    import multiprocessing.util

    multiprocessing.util.Finalize(telemetry, telemetry.shutdown, exitpriority=100)


def _on_sigterm(telemetry, previous):
    def handler(signum, frame):
        telemetry.shutdown()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    return handler
