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

CPython runs a Python signal handler in the main thread only, between bytecodes.
A SIGTERM that lands on another thread, or just before the main thread blocks
in a lock (a pool worker going back to its task queue while the pool
terminates), only marks the signal; without a handler the default action would
have ended the process, with ours it waits for the main thread to wake, and
``pool.terminate()`` can wait for that worker forever. So a thread watches the
signal wake-up fd: a SIGTERM the handler has not taken within 0.1 s is followed
by a no-op real-time signal to the main thread, which breaks its wait, and
CPython runs the pending handler.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable

from otel_trading.report import report

_registered: list[weakref.ref] = []  # telemetry already known to multiprocessing (inherited by children)
_POKE = getattr(signal, "SIGRTMAX", None)  # a real-time signal apps leave alone; its handler does nothing
_WAKE_PERIOD = 0.1
_WAKE_TRIES = 50


def install(telemetry) -> None:
    atexit.register(telemetry.shutdown)
    if hasattr(os, "register_at_fork"):
        ref = weakref.ref(telemetry)
        os.register_at_fork(after_in_child=lambda: _register_with_multiprocessing(ref()))
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm(telemetry, previous))
        _wake.watch()


def _register_with_multiprocessing(telemetry) -> None:
    """Flush in multiprocessing children, once per telemetry, when the app uses multiprocessing."""
    util = sys.modules.get("multiprocessing.util")
    if util is None or telemetry is None or any(r() is telemetry for r in _registered):
        return
    _registered.append(weakref.ref(telemetry))
    util.register_after_fork(telemetry, _flush_when_child_exits)


def _flush_when_child_exits(telemetry) -> None:
    sys.modules["multiprocessing.util"].Finalize(telemetry, telemetry.shutdown, exitpriority=100)


class _Wake:
    """Breaks the main thread's wait when a SIGTERM is pending and our handler has not run."""

    def __init__(self) -> None:
        self.handler: Callable[..., None] | None = None  # our SIGTERM handler, once installed
        self.handled = 0  # runs of it, counted by the handler itself
        self._fds: tuple[socket.socket, socket.socket] | None = None
        self._pid = 0  # the process the fds and the watching thread belong to
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._in_child)

    def watch(self) -> None:
        """Take the wake-up fd (main thread only) unless the app holds it, and start the watching thread."""
        if _POKE is None or self._pid == os.getpid():
            return
        if signal.getsignal(_POKE) not in (signal.SIG_DFL, _ignore):
            return  # the app uses that signal
        inherited = self._fds[1].fileno() if self._fds else -1
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        if previous not in (-1, inherited):  # the app's (asyncio's) wake-up fd: leave it
            signal.set_wakeup_fd(previous)
            reader.close()
            writer.close()
            return
        signal.signal(_POKE, _ignore)
        if self._fds is not None:  # the parent's, inherited: closing the child's copies leaves them to the parent
            for end in self._fds:
                end.close()
        self._fds, self._pid = (reader, writer), os.getpid()
        wake = (threading.get_ident(), _POKE)
        threading.Thread(target=self._run, args=(reader, *wake), name="otel-trading-sigterm", daemon=True).start()

    def _run(self, reader: socket.socket, main: int, poke: int) -> None:
        with contextlib.suppress(Exception):  # a daemon thread may meet torn-down modules at interpreter exit
            while True:
                handled = self.handled
                woken_by = reader.recv(64)
                if not woken_by:
                    return
                if signal.SIGTERM in woken_by:
                    self._poke_until_handled(handled, main, poke)

    def _poke_until_handled(self, handled: int, main: int, poke: int) -> None:
        for _ in range(_WAKE_TRIES):
            time.sleep(_WAKE_PERIOD)
            if self.handled != handled or signal.getsignal(signal.SIGTERM) is not self.handler:
                return
            if signal.getsignal(poke) is not _ignore:
                return
            signal.pthread_kill(main, poke)

    def _in_child(self) -> None:
        """The inherited wake-up fd is the parent's: take one of the child's, with a watching thread."""
        if self._fds is not None and signal.getsignal(signal.SIGTERM) is self.handler:
            self.watch()


def _ignore(signum, frame) -> None:
    """The poke's handler: breaking the main thread's wait is all the poke is for."""


_wake = _Wake()


def _on_sigterm(telemetry, previous):
    def handler(signum, frame):
        _wake.handled += 1
        if telemetry.shutting_down_here():
            return  # the process is already ending: the interrupted exit flush finishes, the exit goes on
        try:
            telemetry.shutdown()
        except Exception as exc:  # noqa: BLE001 - raised here, it would surface in whatever the app was doing
            with contextlib.suppress(Exception):
                report(f"the flush on SIGTERM failed ({exc!r}): what was still buffered is lost")
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    _wake.handler = handler
    return handler
