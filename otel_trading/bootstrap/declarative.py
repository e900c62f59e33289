"""``OTEL_CONFIG_FILE``: the SDK builds the providers from the file; otel-trading adds what the file allows.

With a declarative configuration file the SDK (``opentelemetry-configuration``
0.66b1, for SDK 1.45.1) builds the providers, processors and exporters from the
file alone. It loads plugins from entry point groups, and otel-trading is
registered in them, so a file can name:

* samplers ``trading`` / ``parentbased_trading`` (group ``opentelemetry_sampler``;
  the file gives them no arguments, so the rules come from ``OTEL_TRACES_SAMPLER_ARG``);
* exporters ``local`` (groups ``opentelemetry_{traces,metrics,logs}_exporter``).

On the providers the file built, otel-trading then adds span and log-record
redaction (first in each processor chain, so no exporter sees a secret), metric
data-point redaction on the file's readers, log correlation,
rendering and redaction, the trading metrics and the export-loss counters. The
file format has no place for the rest, which is off; one stderr line says so.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.metrics import get_meter_provider

from otel_trading.bootstrap.configure import Telemetry
from otel_trading.config import Settings
from otel_trading.report import report

OFF = (
    "otel-trading's batch processors (drop warnings, bounded shutdown, queue sizes), "
    "the fast OTLP encoder, metric views (latency buckets, cardinality limit), the SIGTERM flush"
)
_sampler_arg: str | None = None  # OTEL_TRACES_SAMPLER_ARG as validated, for the zero-argument sampler plugins


def trading_sampler() -> Any:
    """Entry point ``trading`` in ``opentelemetry_sampler``: the trading rules for every span."""
    from otel_trading.sampling import TradingSampler

    return TradingSampler(_sampler_arg)


def parentbased_trading_sampler() -> Any:
    """Entry point ``parentbased_trading`` in ``opentelemetry_sampler``: trading rules for roots, children follow."""
    from otel_trading.sampling import parentbased_trading_sampler as build

    return build(_sampler_arg)


def build(settings: Settings) -> Telemetry:
    """Configure the SDK from ``settings.config_file``, then add otel-trading's pieces to what it built."""
    global _sampler_arg
    telemetry = Telemetry(settings)
    try:
        from opentelemetry.configuration import configure_sdk, load_config_file
    except ImportError:
        report(
            f"OTEL_CONFIG_FILE={settings.config_file} is set but opentelemetry-configuration is not installed "
            "(pip install 'otel-trading[declarative]'); telemetry is off"
        )
        return telemetry
    _sampler_arg = settings.traces_sampler_arg
    configure_sdk(load_config_file(str(settings.config_file)))

    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from otel_trading import excepthooks, logs, redaction
    from otel_trading.export import losses
    from otel_trading.trading import metrics

    tracer_provider, meter_provider, logger_provider = trace.get_tracer_provider(), get_meter_provider(), get_logger_provider()
    off = [OFF]
    redactor = redaction.configure_redaction_from(settings)
    if isinstance(tracer_provider, TracerProvider):
        telemetry.tracer_provider = tracer_provider
        if redactor.enabled and not _add_first(tracer_provider, "_active_span_processor", "_span_processors", redaction.RedactingSpanProcessor(redactor)):
            off.append("span redaction")
    if isinstance(meter_provider, MeterProvider):
        telemetry.meter_provider = meter_provider
        for reader in getattr(meter_provider, "_metric_readers", ()):
            redaction.RedactingMetricReader.wrap(reader, redactor)
        losses.observe(meter_provider)
        metrics.install(settings, meter_provider)
    if isinstance(logger_provider, LoggerProvider):
        telemetry.logger_provider = logger_provider
        if redactor.enabled and not _add_first(logger_provider, "_multi_log_record_processor", "_log_record_processors", redaction.RedactingLogRecordProcessor(redactor)):
            off.append("redaction of records made through the OTel Logs API")
        logs.install(settings, logger_provider)
    excepthooks.install(redactor)
    report(f"OTEL_CONFIG_FILE is set: the file configures the SDK; off: {', '.join(off)} (see README, Declarative configuration)")
    return telemetry


def _add_first(provider: Any, multi_name: str, tuple_name: str, processor: Any) -> bool:
    """Put ``processor`` before the processors the file added (they run in order, so exporters see its result)."""
    multi = getattr(provider, multi_name, None)
    if multi is None or not isinstance(getattr(multi, tuple_name, None), tuple):
        return False
    with multi._lock:
        setattr(multi, tuple_name, (processor, *getattr(multi, tuple_name)))
    return True
