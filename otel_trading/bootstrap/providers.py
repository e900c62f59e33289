"""Builds the tracer, meter and logger providers from validated settings.

The SDK's own pieces do the work (exporter and sampler lookup by entry point,
env-var handling inside exporters and processors); this adds what the stock
path lacks: metric views, reporting batch processors with a bounded shutdown,
OTLP timeouts read as milliseconds (as the spec says), exporters that fail to
start reported instead of aborting, log-trace correlation. Imported only after
the environment is validated: SDK modules read some variables at import.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry._logs import set_logger_provider
from opentelemetry.metrics import set_meter_provider
from opentelemetry.sdk._configuration import (
    _get_id_generator,
    _import_config_components,
    _import_id_generator,
    _import_sampler_factory,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import set_tracer_provider

from otel_trading import excepthooks, export, health, logs, redaction
from otel_trading.bootstrap import embedded, lifecycle, resource, views
from otel_trading.bootstrap.configure import Telemetry
from otel_trading.config import Settings
from otel_trading.export import losses
from otel_trading.report import report
from otel_trading.trading import kpis, metrics

if TYPE_CHECKING:
    from otel_trading.export.sidecar import Sidecar

_EXPORTER_GROUPS = {
    "traces": "opentelemetry_traces_exporter",
    "metrics": "opentelemetry_metrics_exporter",
    "logs": "opentelemetry_logs_exporter",
}


def build(settings: Settings, auto_instrumentation_version: str | None) -> Telemetry:
    redactor = redaction.configure_redaction_from(settings)  # first: the resource is redacted with the settings' rules
    res = resource.build(settings, auto_instrumentation_version)
    telemetry = Telemetry(settings)
    if embedded.use_local(settings):
        telemetry.local_dir = Path(settings.local_dir)

    # Metrics first: the export-loss counters and (opt-in) the SDK's self-metrics bind to this provider.
    views.set_cardinality_limit(settings.cardinality_limit)
    readers = [e if isinstance(e, MetricReader) else PeriodicExportingMetricReader(e) for e in _exporters("metrics", settings)]
    for reader in readers:  # data-point attributes masked once per collection (export interval, Prometheus scrape)
        redaction.RedactingMetricReader.wrap(reader, redactor)
    telemetry.meter_provider = MeterProvider(
        resource=res,
        metric_readers=readers,
        views=views.latency_views(settings.latency_buckets),
        shutdown_on_exit=False,
    )
    set_meter_provider(telemetry.meter_provider)
    losses.observe(telemetry.meter_provider)

    telemetry.tracer_provider = TracerProvider(
        sampler=sampler(settings),
        resource=res,
        id_generator=_import_id_generator(_get_id_generator()),
        shutdown_on_exit=False,
    )
    if redactor.enabled:  # before the exporting processors: they only ever see redacted copies
        telemetry.tracer_provider.add_span_processor(redaction.RedactingSpanProcessor(redactor))
    sidecar = _sidecar(settings)
    for span_processor in _export_processors("traces", settings, sidecar):
        telemetry.tracer_provider.add_span_processor(span_processor)
        telemetry.processors.setdefault("traces", []).append(span_processor)
    set_tracer_provider(telemetry.tracer_provider)

    telemetry.logger_provider = LoggerProvider(resource=res, shutdown_on_exit=False)
    if redactor.enabled:  # records made through the OTel Logs API by others (e.g. the exceptions instrumentation)
        telemetry.logger_provider.add_log_record_processor(redaction.RedactingLogRecordProcessor(redactor))
    for log_processor in _export_processors("logs", settings, sidecar):
        telemetry.logger_provider.add_log_record_processor(log_processor)
        telemetry.processors.setdefault("logs", []).append(log_processor)
    set_logger_provider(telemetry.logger_provider)

    if redactor.enabled:
        for provider in telemetry.providers:
            resource.keep_redacted(provider)
    logs.install(settings, telemetry.logger_provider)
    excepthooks.install(redactor)
    metrics.install(settings, telemetry.meter_provider)
    kpis.install(telemetry.tracer_provider)
    health.install(settings)
    lifecycle.install(telemetry)
    return telemetry


def batch_processors(signal: Literal["traces", "logs"], settings: Settings) -> list:
    """The in-process export path: a reporting batch processor per exporter (also the export helper's
    fallback when the helper cannot be kept running)."""
    if signal == "traces":
        cls: Any = export.ReportingBatchSpanProcessor
        queue = _queue(settings.bsp_max_queue_size, settings.bsp_max_export_batch_size)
    else:
        cls = export.ReportingBatchLogRecordProcessor
        queue = _queue(settings.blrp_max_queue_size, settings.blrp_max_export_batch_size)
    return [
        cls(exporter, **queue, report_interval=settings.drop_report_interval, shutdown_timeout_millis=settings.shutdown_timeout * 1000)
        for exporter in _exporters(signal, settings)
    ]


def _export_processors(signal: Literal["traces", "logs"], settings: Settings, sidecar: Sidecar | None) -> list:
    """The export path of ``signal``: the export helper's link when the helper runs, else the batch processors."""
    if sidecar is None:
        return batch_processors(signal, settings)
    if not _exported(signal, settings):
        return []
    from otel_trading.export import sidecar as helper

    return [helper.SidecarSpanProcessor(sidecar) if signal == "traces" else helper.SidecarLogRecordProcessor(sidecar)]


def exporter_names(signal: Literal["traces", "metrics", "logs"], settings: Settings) -> list[str]:
    """OTEL_<SIGNAL>_EXPORTER from the settings; ``otlp`` resolved by the signal's OTLP protocol, as the SDK does."""
    protocol = getattr(settings, f"otlp_{signal}_protocol") or settings.otlp_protocol or "grpc"
    otlp = "otlp_proto_http" if protocol == "http/protobuf" else "otlp_proto_grpc"
    names = [otlp if name == "otlp" else name for name in getattr(settings, f"{signal}_exporter") if name != "none"]
    return list(dict.fromkeys(names))


def sampler(settings: Settings) -> Sampler | None:
    """OTEL_TRACES_SAMPLER / _ARG from the settings (None: the SDK's default, parent-based always-on)."""
    name = settings.traces_sampler
    if not name:
        return None
    arg: str | float | None = settings.traces_sampler_arg
    if name in ("traceidratio", "parentbased_traceidratio"):
        try:
            arg = float(arg) if arg is not None else 1.0
        except ValueError:
            report(f"OTEL_TRACES_SAMPLER_ARG={arg!r:.80} is not a ratio for {name}: accepted a number from 0 to 1; using 1.0")
            arg = 1.0
    try:
        made = _import_sampler_factory(name)(arg)
    except Exception as exc:  # a sampler that cannot be built: the default, never a crash
        report(f"sampler {name!r} could not be built ({exc!r:.80}); using the SDK's default (parentbased_always_on)")
        return None
    return made if isinstance(made, Sampler) else None


def _sidecar(settings: Settings) -> Sidecar | None:
    """The export helper link when OTEL_TRADING_EXPORT_PROCESS is on and spans or logs are exported
    (its modules are imported only then)."""
    if not settings.export_process or not (_exported("traces", settings) or _exported("logs", settings)):
        return None
    from otel_trading.export import sidecar

    return sidecar.start(settings)


def _exported(signal: Literal["traces", "logs"], settings: Settings) -> bool:
    return bool(exporter_names(signal, settings))


def _exporters(signal: Literal["traces", "metrics", "logs"], settings: Settings) -> list:
    """Instantiate the exporters OTEL_<SIGNAL>_EXPORTER names; one that fails is reported and left out.

    ``otlp`` becomes ``local`` under the embedded default (no collector configured nor running);
    OTLP span and log exporters get the disk spool (OTEL_TRADING_SPOOL). Both the in-process set-up
    and an out-of-process export helper build their exporters here.
    """
    names = exporter_names(signal, settings)
    if any(name.startswith("otlp") for name in names) and embedded.use_local(settings):
        names = list(dict.fromkeys("local" if name.startswith("otlp") else name for name in names))
    exporters = []
    for name in names:
        try:
            _, cls = _import_config_components([name], _EXPORTER_GROUPS[signal])[0]
            exporter = export.faster(cls, settings.fast_export)(**_exporter_args(cls, signal, settings))
            if settings.spool and signal != "metrics":
                exporter = _spooled(signal, exporter, settings)
            exporters.append(exporter)
        except Exception as exc:  # e.g. Prometheus port in use: the app must keep running
            report(f"{signal} exporter {name!r} could not start ({exc}); {signal} are not exported there")
    return exporters


def _spooled(signal: str, exporter, settings: Settings):
    """An OTLP span / log exporter behind the service's disk spool; any other exporter unchanged
    (metrics stay in memory: cumulative temporality recovers after an outage)."""
    from otel_trading.export import spool

    service = settings.service_name or (settings.resource_attributes or {}).get("service.name") or "unknown_service"
    store = spool.shared(spool.spool_path(settings.spool_dir, service), settings.spool_max_bytes)
    return spool.wrap(signal, exporter, store, drain_seconds=settings.shutdown_timeout / 2)


def _queue(size: int, batch: int) -> dict[str, int]:
    """Queue and batch sizes; a batch larger than the queue (which the SDK refuses) is cut to the queue."""
    return {"max_queue_size": size, "max_export_batch_size": min(batch, size)}


def _exporter_args(cls: type, signal: str, settings: Settings) -> dict[str, Any]:
    """What the settings say that an exporter would otherwise read from the environment itself.

    Local files: the folder (a ``configure(local_dir=...)`` keyword wins over the env var).
    OTLP: the timeout per the spec (milliseconds); the Python exporters would read the variable as seconds.
    The compression as an enum: the gRPC exporters read only ``gzip`` from the variable and refuse
    ``none``, which the spec allows.
    """
    local = sys.modules.get("otel_trading.export.localfiles")  # imported by the entry point when ``local`` is chosen
    if local is not None and issubclass(cls, (local.LocalSpanExporter, local.LocalLogExporter, local.LocalMetricExporter)):
        return {"directory": settings.local_dir}
    if not cls.__module__.startswith("opentelemetry.exporter.otlp"):
        return {}
    args: dict[str, Any] = {}
    timeout_ms = getattr(settings, f"otlp_{signal}_timeout") or settings.otlp_timeout
    if timeout_ms is not None:
        args["timeout"] = timeout_ms / 1000
    compression = getattr(settings, f"otlp_{signal}_compression") or settings.otlp_compression
    if compression is not None:
        args["compression"] = _compression(cls, compression)
    return args


_COMPRESSION_NAMES = {"none": "NoCompression", "gzip": "Gzip", "deflate": "Deflate"}


def _compression(cls: type, name: str) -> Any:
    """The exporter's own compression enum member for a validated ``OTEL_EXPORTER_OTLP_*COMPRESSION``."""
    if ".grpc" in cls.__module__:
        import grpc

        return grpc.Compression[_COMPRESSION_NAMES[name]]
    from opentelemetry.exporter.otlp.proto.http import Compression

    return Compression(name)
