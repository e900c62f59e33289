"""OTLP/HTTP (protobuf) span and log exporters with the direct encoder.

Subclasses of the stock ``opentelemetry-exporter-otlp-proto-http`` exporters:
same constructor and ``OTEL_EXPORTER_OTLP_*`` settings, same transport
(session, retries, compression, max request size), same self-metrics. Only
``export`` is restated (it is where the stock classes encode), with
:mod:`otel_trading.export.wire` producing the same request bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.http._common import (
    RequestPayloadTooLargeError,
    _is_request_too_large,
)
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

from otel_trading.export.wire import LogEncoder, SpanEncoder

_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http")


def _export(exporter, items: Sequence, encoder, results, what: str):
    """The stock HTTP exporters' ``export`` with the encoding step replaced, and a batch
    too large for one request sent in halves instead of dropped."""
    if exporter._shutdown:
        _logger.warning("Exporter already shutdown, ignoring batch")
        return results.FAILURE
    try:
        serialized_data = encoder.encode(items)
    except Exception as error:  # noqa: BLE001 - as the stock exporter: a failed batch, not an exception
        with exporter._metrics.export_operation(len(items)) as result:
            _logger.error("Failed to encode %s batch: %s", what, error)
            result.error = error
        return results.FAILURE
    too_large = _is_request_too_large(serialized_data, exporter._max_request_size)
    if too_large and len(items) > 1:
        items = list(items)
        middle = len(items) // 2
        first = _export(exporter, items[:middle], encoder, results, what)
        second = _export(exporter, items[middle:], encoder, results, what)
        return first if first != results.SUCCESS else second
    with exporter._metrics.export_operation(len(items)) as result:
        if too_large:
            _logger.warning(
                "Dropping %s batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                what,
                len(serialized_data),
                exporter._max_request_size,
            )
            result.error = RequestPayloadTooLargeError(
                f"Serialized {what} request size {len(serialized_data)} bytes exceeds max_request_size "
                f"{exporter._max_request_size} bytes."
            )
            return results.FAILURE
        export_result = exporter._client.export(serialized_data)
        if not export_result.success:
            result.error = export_result.error
            result.error_attrs = (
                {HTTP_RESPONSE_STATUS_CODE: export_result.status_code} if export_result.status_code is not None else None
            )
            return results.FAILURE
    return results.SUCCESS


class FastOTLPHTTPSpanExporter(OTLPSpanExporter):
    """Drop-in OTLP/HTTP ``OTLPSpanExporter`` with the direct encoder."""

    takes_encoded_spans = True  # a batch may hold wire.EncodedSpan items (see ReportingBatchSpanProcessor)

    def export(self, spans: Sequence) -> SpanExportResult:
        encoder = getattr(self, "_encoder", None)
        if encoder is None:
            encoder = self._encoder = SpanEncoder()
        return _export(self, spans, encoder, SpanExportResult, "span")


class FastOTLPHTTPLogExporter(OTLPLogExporter):
    """Drop-in OTLP/HTTP ``OTLPLogExporter`` with the direct encoder."""

    takes_encoded_logs = True  # a batch may hold wire.EncodedLog items (see ReportingBatchLogRecordProcessor)

    def export(self, batch: Sequence) -> LogRecordExportResult:
        encoder = getattr(self, "_encoder", None)
        if encoder is None:
            encoder = self._encoder = LogEncoder()
        return _export(self, batch, encoder, LogRecordExportResult, "logs")


def single_attempt(exporter):
    """One POST of already-encoded request bytes, no retry (the spool retries); same session,
    headers, compression, timeout and self-metrics as the exporter's own ``export``."""
    from otel_trading.export.spool import Outcome

    client = exporter._client

    def send(body: bytes, items: int) -> tuple[Outcome, str]:
        if exporter._shutdown:
            return Outcome.RETRY, "exporter shut down"
        with exporter._metrics.export_operation(items) as result:
            answer = client._submit(client._compress(body), client._timeout)
            status = answer.status_code
            if status is not None and 200 <= status < 300:
                return Outcome.SENT, ""
            result.error = answer.error or RuntimeError(f"HTTP {status}")
            result.error_attrs = {HTTP_RESPONSE_STATUS_CODE: status} if status is not None else None
            if status == 413:
                return Outcome.TOO_LARGE, f"HTTP 413, request of {len(body)} bytes too large"
            if status in (400, 404, 405, 415):
                return Outcome.REJECTED, f"HTTP {status} {answer.reason or ''}".strip()
            return Outcome.RETRY, f"HTTP {status} {answer.reason or ''}".strip() if status else repr(answer.error)[:80]

    return send
