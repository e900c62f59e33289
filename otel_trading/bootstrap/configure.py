"""``configure()`` and the handle it returns.

Both entry points end here: ``opentelemetry-instrument`` (through the
configurator) and ``otel_trading.configure()`` for apps that do not use the
wrapper. The environment is validated before any SDK module is imported (some
read variables at import and would raise on a bad value); ``providers`` then
builds the tracer, meter and logger providers.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otel_trading import config as settings_module
from otel_trading import forksafe
from otel_trading.config import Settings
from otel_trading.report import report, route_sdk_warnings

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from otel_trading.config.typed import Keywords


class Telemetry:
    """What ``configure()`` returns: the providers, the effective settings, flush and shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tracer_provider: Any = None  # opentelemetry.sdk.trace.TracerProvider
        self.meter_provider: Any = None  # opentelemetry.sdk.metrics.MeterProvider
        self.logger_provider: Any = None  # opentelemetry.sdk._logs.LoggerProvider
        self.local_dir: Path | None = None  # where the embedded default writes, when no collector was found at start
        self.processors: dict[str, list] = {}  # the export processors by signal, for the exit summary
        self._shutdown_thread: int | None = None  # the thread that started shutdown(), once one has
        self._shutdown_done = threading.Event()

    @property
    def providers(self) -> list:
        return [p for p in (self.tracer_provider, self.logger_provider, self.meter_provider) if p is not None]

    def _by_signal(self, method: str) -> dict[str, Any]:
        named = {"traces": self.tracer_provider, "logs": self.logger_provider, "metrics": self.meter_provider}
        return {signal: getattr(p, method) for signal, p in named.items() if p is not None}

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export everything buffered; give up after ``timeout`` seconds (default OTEL_TRADING_SHUTDOWN_TIMEOUT)."""
        return _bounded(self._by_signal("force_flush"), timeout or self.settings.shutdown_timeout, "flush")

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and stop exporting; bounded like ``force_flush``. Safe to call twice: a second call
        from another thread waits for the first instead of cutting it short; one from the thread
        running it (a signal handler that interrupted it) returns at once, as it cannot wait for itself."""
        timeout = timeout or self.settings.shutdown_timeout
        if self._shutdown_thread is not None:
            return False if self.shutting_down_here() else self._shutdown_done.wait(timeout)
        self._shutdown_thread = threading.get_ident()
        done = _bounded(self._by_signal("shutdown"), timeout, "shutdown")
        from otel_trading.export.processors import exit_summary

        for signal, processors in self.processors.items():
            for processor in processors:
                line = exit_summary(signal, processor)
                if line:
                    report(line)
        self._shutdown_done.set()
        return done

    def shutting_down_here(self) -> bool:
        """Whether this thread is inside ``shutdown()`` (a signal handler interrupted the exit flush):
        waiting for it there would wait for itself."""
        return self._shutdown_thread == threading.get_ident() and not self._shutdown_done.is_set()


def _bounded(calls: dict[str, Any], timeout: float, what: str) -> bool:
    """Run each signal's call on its own daemon thread, all within ``timeout``: a hung collector
    for one signal holds neither the caller past the bound nor the other signals' final reports."""

    def run(signal: str, call) -> None:
        try:
            call()
        except Exception as exc:  # telemetry trouble must not break the app
            report(f"{signal} {what} failed: {exc!r}")

    workers = {
        signal: threading.Thread(target=run, args=(signal, call), name=f"otel-trading-{what}-{signal}", daemon=True)
        for signal, call in calls.items()
    }
    deadline = time.monotonic() + timeout
    for worker in workers.values():
        worker.start()
    for worker in workers.values():
        worker.join(max(deadline - time.monotonic(), 0.0))
    late = [signal for signal, worker in workers.items() if worker.is_alive()]
    if late:
        report(f"{', '.join(late)}: flush did not finish within {timeout:g}s (OTEL_TRADING_SHUTDOWN_TIMEOUT); what was not sent is dropped")
        return False
    return True


_current: Telemetry | None = None
_lock = forksafe.lock()


def configure(**settings: Unpack[Keywords]) -> Telemetry:
    """Set up tracing, metrics and logs for an app not launched by ``opentelemetry-instrument``.

    Keywords are the settings of the settings reference (each also an env var);
    keywords win over env vars. Idempotent: a second call returns the first
    handle unchanged. Under ``opentelemetry-instrument`` it returns the
    handle the wrapper already built.
    """
    return start(dict(settings))


def current() -> Telemetry | None:
    """The active handle, if otel-trading has configured this process."""
    return _current


def start(overrides: dict[str, Any] | None = None, auto_instrumentation_version: str | None = None) -> Telemetry:
    global _current
    with _lock:
        if _current is not None:
            if overrides:
                report(f"already configured; ignoring configure({', '.join(sorted(overrides))}=...)")
            return _current
        route_sdk_warnings()
        settings_module.apply_defaults()
        settings = settings_module.load(**(overrides or {}))
        settings_module.use(settings)
        if settings.sdk_disabled:
            _current = Telemetry(settings)
        elif settings.config_file:
            from otel_trading.bootstrap import declarative

            _current = declarative.build(settings)
        else:
            from otel_trading.bootstrap import providers

            _current = providers.build(settings, auto_instrumentation_version)
        return _current

