"""Bootstraps the tracer, meter and logger providers from the settings.

Both entry points end here: ``opentelemetry-instrument`` (through the
configurator) and ``otel_trading.configure()`` for apps that do not use the
wrapper. The SDK's own pieces do the work (exporter and sampler lookup by entry
point, env-var handling inside exporters and processors); this module adds what
the stock path lacks: metric views, a bounded flush at exit and on SIGTERM,
OTLP timeouts read as milliseconds (as the spec says), exporters that fail to
start reported instead of crashing the app, and log-trace correlation.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Any

from opentelemetry._logs import set_logger_provider
from opentelemetry.metrics import set_meter_provider
from opentelemetry.sdk._configuration import (
    _get_exporter_names,
    _get_id_generator,
    _get_sampler,
    _import_config_components,
    _import_id_generator,
    _import_sampler,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import set_tracer_provider

from otel_trading import export, lifecycle, logs, metrics, resource, settings as settings_module, views
from otel_trading.settings import Settings

_EXPORTER_GROUPS = {
    "traces": "opentelemetry_traces_exporter",
    "metrics": "opentelemetry_metrics_exporter",
    "logs": "opentelemetry_logs_exporter",
}


@dataclass
class Telemetry:
    """What ``configure()`` returns: the providers, the effective settings, flush and shutdown."""

    settings: Settings
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    logger_provider: LoggerProvider | None = None

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
                _report(f"flush failed: {exc!r}")

    worker = threading.Thread(target=run, name="otel-trading-flush", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        _report(f"flush did not finish within {timeout:g}s (OTEL_TRADING_SHUTDOWN_TIMEOUT); unsent telemetry is dropped")
        return False
    return True


_current: Telemetry | None = None
_lock = threading.Lock()


def configure(**settings: Any) -> Telemetry:
    """Set up tracing, metrics and logs for an app not launched by ``opentelemetry-instrument``.

    Keywords are the settings of the README table (each also an env var);
    keywords win over env vars. Idempotent: a second call returns the first
    handle unchanged. Under ``opentelemetry-instrument`` it returns the
    handle the wrapper already built.
    """
    return start(settings)


def current() -> Telemetry | None:
    """The active handle, if otel-trading has configured this process."""
    return _current


def start(overrides: dict[str, Any] | None = None, auto_instrumentation_version: str | None = None) -> Telemetry:
    global _current
    with _lock:
        if _current is not None:
            if overrides:
                _report(f"already configured; ignoring configure({', '.join(sorted(overrides))}=...)")
            return _current
        settings_module.apply_defaults()
        settings = settings_module.load(**(overrides or {}))
        _current = Telemetry(settings) if settings.sdk_disabled else _build(settings, auto_instrumentation_version)
        return _current


def _build(settings: Settings, auto_instrumentation_version: str | None) -> Telemetry:
    res = resource.build(settings, auto_instrumentation_version)
    telemetry = Telemetry(settings)

    # Metrics first: the batch processors' self-metrics (queue capacity, drops) bind to this provider.
    views.set_cardinality_limit(settings.cardinality_limit)
    readers = [e if isinstance(e, MetricReader) else PeriodicExportingMetricReader(e) for e in _exporters("metrics", settings)]
    telemetry.meter_provider = MeterProvider(
        resource=res,
        metric_readers=readers,
        views=views.latency_views(settings.latency_buckets),
        shutdown_on_exit=False,
    )
    set_meter_provider(telemetry.meter_provider)

    telemetry.tracer_provider = TracerProvider(
        sampler=_import_sampler(_get_sampler()),
        resource=res,
        id_generator=_import_id_generator(_get_id_generator()),
        shutdown_on_exit=False,
    )
    for processor in logs.span_processors(settings):
        telemetry.tracer_provider.add_span_processor(processor)
    reporting = {"report_interval": settings.drop_report_interval, "shutdown_timeout_millis": settings.shutdown_timeout * 1000}
    for exporter in _exporters("traces", settings):
        telemetry.tracer_provider.add_span_processor(
            export.ReportingBatchSpanProcessor(exporter, **_queue(settings.bsp_max_queue_size, settings.bsp_max_export_batch_size), **reporting)
        )
    set_tracer_provider(telemetry.tracer_provider)

    telemetry.logger_provider = LoggerProvider(resource=res, shutdown_on_exit=False)
    for exporter in _exporters("logs", settings):
        telemetry.logger_provider.add_log_record_processor(
            export.ReportingBatchLogRecordProcessor(exporter, **_queue(settings.blrp_max_queue_size, settings.blrp_max_export_batch_size), **reporting)
        )
    set_logger_provider(telemetry.logger_provider)

    logs.install(settings, telemetry.logger_provider)
    metrics.install(settings, telemetry.meter_provider)
    lifecycle.install(telemetry)
    return telemetry


def _exporters(signal: str, settings: Settings) -> list:
    """Instantiate the exporters OTEL_<SIGNAL>_EXPORTER names; one that fails is reported and left out."""
    exporters = []
    for name in _get_exporter_names(signal):
        try:
            _, cls = _import_config_components([name], _EXPORTER_GROUPS[signal])[0]
            exporters.append(export.faster(cls, settings.fast_export)(**_exporter_args(cls, signal, settings)))
        except Exception as exc:  # e.g. Prometheus port in use: the app must keep running
            _report(f"{signal} exporter {name!r} could not start ({exc}); {signal} are not exported there")
    return exporters


def _queue(size: int, batch: int) -> dict[str, int]:
    """Queue and batch sizes; a batch larger than the queue (which the SDK refuses) is cut to the queue."""
    return {"max_queue_size": size, "max_export_batch_size": min(batch, size)}


def _exporter_args(cls: type, signal: str, settings: Settings) -> dict[str, Any]:
    """OTLP timeout per the spec (milliseconds); the Python exporters would read the variable as seconds."""
    if not cls.__module__.startswith("opentelemetry.exporter.otlp"):
        return {}
    timeout_ms = getattr(settings, f"otlp_{signal}_timeout") or settings.otlp_timeout
    return {} if timeout_ms is None else {"timeout": timeout_ms / 1000}


def _report(message: str) -> None:
    print(f"otel-trading: {message}", file=sys.stderr, flush=True)
