"""The export path: a faster OTLP/gRPC encoder and batch processors that count drops.

* :class:`FastOTLPSpanExporter` / :class:`FastOTLPLogExporter` - the stock OTLP/gRPC
  exporters (same settings, retries, self-metrics) with a direct protobuf wire encoder
  producing the stock encoder's bytes ~7x cheaper; :class:`FastOTLPHTTPSpanExporter` /
  :class:`FastOTLPHTTPLogExporter` the same for OTLP/HTTP protobuf. Imported on first use, so
  start-up loads only the transport the settings choose.
* :class:`ReportingBatchSpanProcessor` / :class:`ReportingBatchLogRecordProcessor` - the
  SDK batch processors plus a drop counter, a periodic "dropped N" warning and a bounded
  shutdown.
* :mod:`otel_trading.export.spool` - the disk spool the OTLP span and log exporters sit behind:
  batches the collector cannot take wait in SQLite and are sent, oldest first, when it answers.
* :mod:`otel_trading.export.localfiles` - the ``local`` exporters (OTLP/JSON lines), the embedded default.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from otel_trading.export.processors import (
    DropCounter,
    ReportingBatchLogRecordProcessor,
    ReportingBatchSpanProcessor,
)

if TYPE_CHECKING:
    from otel_trading.export.otlp_http import (
        FastOTLPHTTPLogExporter as FastOTLPHTTPLogExporter,
    )
    from otel_trading.export.otlp_http import (
        FastOTLPHTTPSpanExporter as FastOTLPHTTPSpanExporter,
    )
    from otel_trading.export.otlp_grpc import (
        FastOTLPLogExporter as FastOTLPLogExporter,
    )
    from otel_trading.export.otlp_grpc import (
        FastOTLPSpanExporter as FastOTLPSpanExporter,
    )
    from otel_trading.export.wire import LogEncoder as LogEncoder
    from otel_trading.export.wire import SpanEncoder as SpanEncoder

_GRPC_SPANS = ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter")
_GRPC_LOGS = ("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter")
_GRPC_METRICS = ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "OTLPMetricExporter")
# stock exporter class (module, name) -> otel-trading's equivalent (module, name)
_FAST = {
    _GRPC_SPANS: ("otel_trading.export.otlp_grpc", "FastOTLPSpanExporter"),
    _GRPC_LOGS: ("otel_trading.export.otlp_grpc", "FastOTLPLogExporter"),
    _GRPC_METRICS: ("otel_trading.export.otlp_grpc", "GatedOTLPMetricExporter"),
    ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"): ("otel_trading.export.otlp_http", "FastOTLPHTTPSpanExporter"),
    ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"): ("otel_trading.export.otlp_http", "FastOTLPHTTPLogExporter"),
}
# with the fast encoders off: the stock gRPC exporters, their calls still waited for by a fork
_STOCK = {
    _GRPC_SPANS: ("otel_trading.export.otlp_grpc", "GatedOTLPSpanExporter"),
    _GRPC_LOGS: ("otel_trading.export.otlp_grpc", "GatedOTLPLogExporter"),
    _GRPC_METRICS: ("otel_trading.export.otlp_grpc", "GatedOTLPMetricExporter"),
}
# imported on first use: only the chosen transport's stack is loaded at start-up
_LAZY = {
    "FastOTLPSpanExporter": "otel_trading.export.otlp_grpc",
    "FastOTLPLogExporter": "otel_trading.export.otlp_grpc",
    "FastOTLPHTTPSpanExporter": "otel_trading.export.otlp_http",
    "FastOTLPHTTPLogExporter": "otel_trading.export.otlp_http",
    "SpanEncoder": "otel_trading.export.wire",
    "LogEncoder": "otel_trading.export.wire",
}


def faster(exporter_cls: type, enabled: bool = True) -> type:
    """otel-trading's equivalent of a stock exporter class, or the class itself.

    ``OTLPSpanExporter`` / ``OTLPLogExporter`` of the gRPC and HTTP packages map to
    :class:`FastOTLPSpanExporter` / :class:`FastOTLPLogExporter` / their HTTP twins (same
    constructor arguments), the gRPC ``OTLPMetricExporter`` to the same exporter with its calls
    waited for by a fork (as the fast gRPC exporters' are); anything else is returned unchanged.
    ``enabled=False`` (the ``fast_export`` setting, ``OTEL_TRADING_FAST_EXPORT``) keeps the stock
    encoders: the gRPC exporters are then only gated for forks.
    Matched by the class's module and name, so the other transport's stack is never imported.
    """
    fast = (_FAST if enabled else _STOCK).get((exporter_cls.__module__, exporter_cls.__qualname__))
    if fast is None:
        return exporter_cls
    found: type = getattr(importlib.import_module(fast[0]), fast[1])
    return found if exporter_cls in found.__mro__ else exporter_cls


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_trading.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
