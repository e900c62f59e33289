"""The export path: a faster OTLP/gRPC encoder and batch processors that count drops.

* :class:`FastOTLPSpanExporter` / :class:`FastOTLPLogExporter` - the stock OTLP/gRPC
  exporters (same settings, retries, self-metrics) with a direct protobuf wire encoder
  producing the stock encoder's bytes ~7x cheaper; :class:`FastOTLPHTTPSpanExporter` /
  :class:`FastOTLPHTTPLogExporter` the same for OTLP/HTTP protobuf.
* :class:`ReportingBatchSpanProcessor` / :class:`ReportingBatchLogRecordProcessor` - the
  SDK batch processors plus a drop counter, a periodic "dropped N" warning and a bounded
  shutdown.
* :mod:`otel_trading.export.spool` - the disk spool the OTLP span and log exporters sit behind:
  batches the collector cannot take wait in SQLite and are sent, oldest first, when it answers.
* :mod:`otel_trading.export.localfiles` - the ``local`` exporters (OTLP/JSON lines), the embedded default.
"""

from otel_trading.export.otlp_grpc import FastOTLPLogExporter, FastOTLPSpanExporter
from otel_trading.export.otlp_http import (
    FastOTLPHTTPLogExporter,
    FastOTLPHTTPSpanExporter,
)
from otel_trading.export.processors import (
    DropCounter,
    ReportingBatchLogRecordProcessor,
    ReportingBatchSpanProcessor,
)
from otel_trading.export.wire import LogEncoder, SpanEncoder


def faster(exporter_cls: type, enabled: bool = True) -> type:
    """The fast equivalent of a stock exporter class, or the class itself.

    ``OTLPSpanExporter`` / ``OTLPLogExporter`` of the gRPC package map to
    :class:`FastOTLPSpanExporter` / :class:`FastOTLPLogExporter` (same constructor
    arguments); anything else is returned unchanged. ``enabled=False`` (the
    ``fast_export`` setting, ``OTEL_TRADING_FAST_EXPORT``) turns the substitution off.
    """
    if not enabled:
        return exporter_cls
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HTTPLogExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPSpanExporter,
    )

    return {
        OTLPSpanExporter: FastOTLPSpanExporter,
        OTLPLogExporter: FastOTLPLogExporter,
        HTTPSpanExporter: FastOTLPHTTPSpanExporter,
        HTTPLogExporter: FastOTLPHTTPLogExporter,
    }.get(exporter_cls, exporter_cls)


__all__ = [
    "faster",
    "DropCounter",
    "FastOTLPHTTPLogExporter",
    "FastOTLPHTTPSpanExporter",
    "FastOTLPLogExporter",
    "FastOTLPSpanExporter",
    "LogEncoder",
    "ReportingBatchLogRecordProcessor",
    "ReportingBatchSpanProcessor",
    "SpanEncoder",
]
