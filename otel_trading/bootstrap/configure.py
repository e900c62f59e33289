"""``configure()`` and the handle it returns.

Both entry points end here: ``opentelemetry-instrument`` (through the
configurator) and ``otel_trading.configure()`` for apps that do not use the
wrapper. The environment is validated before any SDK module is imported (some
read variables at import and would raise on a bad value); ``providers`` then
builds the tracer, meter and logger providers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from otel_trading import config as settings_module
from otel_trading.config import Settings
from otel_trading.report import report

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from otel_trading.config.typed import Keywords


@dataclass
class Telemetry:
    """What ``configure()`` returns: the providers, the effective settings, flush and shutdown."""

    settings: Settings
    tracer_provider: Any = None  # opentelemetry.sdk.trace.TracerProvider
    meter_provider: Any = None  # opentelemetry.sdk.metrics.MeterProvider
    logger_provider: Any = None  # opentelemetry.sdk._logs.LoggerProvider

    @property
    def providers(self) -> list:
        return [p for p in (self.tracer_provider, self.logger_provider, self.meter_provider) if p is not None]

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export everything buffered; give up after ``timeout`` seconds (default OTEL_TRADING_SHUTDOWN_TIMEOUT)."""
        return _bounded([p.force_flush for p in self.providers], timeout or self.settings.shutdown_timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and stop exporting; bounded like ``force_flush``. Safe to call twice."""
        return _bounded([p.shutdown for p in self.providers], timeout or self.settings.shutdown_timeout)


def _bounded(calls: list, timeout: float) -> bool:
    """Run ``calls`` in order on a daemon thread; a hung collector cannot hold the caller past ``timeout``."""

    def run() -> None:
        for call in calls:
            try:
                call()
            except Exception as exc:  # telemetry trouble must not break the app
                report(f"flush failed: {exc!r}")

    worker = threading.Thread(target=run, name="otel-trading-flush", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        report(f"flush did not finish within {timeout:g}s (OTEL_TRADING_SHUTDOWN_TIMEOUT); unsent telemetry is dropped")
        return False
    return True


_current: Telemetry | None = None
_lock = threading.Lock()


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
        settings_module.apply_defaults()
        settings = settings_module.load(**(overrides or {}))
        settings_module.use(settings)
        if settings.sdk_disabled:
            _current = Telemetry(settings)
        else:
            from otel_trading.bootstrap import providers

            _current = providers.build(settings, auto_instrumentation_version)
        return _current

