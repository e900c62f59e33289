"""OTLP/gRPC span and log exporters with a faster encoder.

They are the stock ``OTLPSpanExporter`` / ``OTLPLogExporter`` (same constructor,
same ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_EXPORTER_OTLP_TRACES_*`` settings:
endpoint, headers, TLS, compression, timeout, retryable codes; same retry with
backoff bounded by the timeout, same channel re-creation on UNAVAILABLE, same
``otel.sdk.exporter.*`` self-metrics) with the encode step replaced: the batch
is written straight to OTLP protobuf bytes by :mod:`otel_trading.export.wire`
(the bytes the stock encoder produces for the same batch) and sent over a gRPC
method whose request serializer passes bytes through.

Two more differences, both about not losing data:

* the request is encoded once per batch, not once per retry;
* a batch whose request would exceed ``max_request_bytes`` (default just under
  the collector's default 4 MiB receive limit, which rejects the whole batch)
  is split in halves until each part fits; a single item larger than that is
  sent on its own and the collector decides.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from otel_trading.export.wire import LogEncoder, SpanEncoder

TRACE_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024 - 64 * 1024  # the collector's default limit is 4 MiB per message
FORK_WAIT_SECONDS = 1.0  # the longest a fork waits for export calls in flight


class _CallsInFlight:
    """The export calls a ``fork()`` waits for.

    gRPC skips its own fork handlers when a thread is inside a call at the fork ("Other threads
    are currently calling into gRPC, skipping fork() handlers") and the child's gRPC is left in
    an undefined state: its first export fails ("Closed on fork"), so a short-lived child (a
    multiprocessing worker) ended with its spans spooled for the next start, not delivered.
    A fork waits for the calls in flight, at most FORK_WAIT_SECONDS (a hung collector cannot
    hold it longer), and calls wait while it forks. ``subprocess`` does not run fork hooks.
    """

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(before=self._before_fork, after_in_parent=self._forked, after_in_child=self._reset)

    def _reset(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._calls = 0
        self._forking = False

    def __enter__(self) -> None:
        with self._changed:
            while self._forking:
                self._changed.wait()
            self._calls += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._changed:
            self._calls -= 1
            self._changed.notify_all()

    def _before_fork(self) -> None:
        with self._changed:
            self._forking = True
            self._changed.wait_for(lambda: not self._calls, timeout=FORK_WAIT_SECONDS)

    def _forked(self) -> None:
        with self._changed:
            self._forking = False
            self._changed.notify_all()


_IN_FLIGHT = _CallsInFlight()


class _GatedStub:
    """A stub whose ``Export`` a fork waits for (see ``_CallsInFlight``)."""

    def __init__(self, export: Callable[..., Any]) -> None:
        self._export = export

    def Export(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the stub API the SDK exporters call
        with _IN_FLIGHT:
            return self._export(*args, **kwargs)


def _raw_stub(channel, method: str, response_deserializer) -> _GatedStub:
    """A stub whose ``Export`` takes already-encoded request bytes."""
    return _GatedStub(channel.unary_unary(method, request_serializer=None, response_deserializer=response_deserializer))


class _GatedClient:
    """A stock OTLP/gRPC exporter whose calls a fork waits for, like the fast exporters' (same encoder, same bytes)."""

    _client: Any

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()  # type: ignore[misc]
        self._client = _GatedStub(self._client.Export)


class GatedOTLPMetricExporter(_GatedClient, OTLPMetricExporter):
    """The stock OTLP/gRPC metric exporter, gated (its encoding has no faster equivalent here)."""


class GatedOTLPSpanExporter(_GatedClient, OTLPSpanExporter):
    """The stock OTLP/gRPC span exporter, gated (``OTEL_TRADING_FAST_EXPORT=false``)."""


class GatedOTLPLogExporter(_GatedClient, OTLPLogExporter):
    """The stock OTLP/gRPC log exporter, gated (``OTEL_TRADING_FAST_EXPORT=false``)."""


class _FastGrpcMixin:
    _method: str
    _response: Any  # the generated Export*ServiceResponse class
    _encoder_cls: type
    _channel: Any  # set by the stock exporter's _initialize_channel_and_stub
    _pending: tuple[Sequence, bytes] | None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()  # type: ignore[misc]
        self._client = _raw_stub(self._channel, self._method, self._response.FromString)

    def _encode(self, data: Sequence) -> bytes:
        encoder = self.__dict__.get("_encoder")
        if encoder is None:
            encoder = self._encoder = self._encoder_cls()
        return encoder.encode(data)

    def _translate_data(self, data: Sequence) -> bytes:
        pending = self.__dict__.get("_pending")
        if pending is not None and pending[0] is data:
            return pending[1]  # encoded once in _export_split, reused by every retry
        return self._encode(data)

    def _export_split(self, data: Sequence):
        request = self._encode(data)
        if len(request) > self.max_request_bytes and len(data) > 1:
            items = list(data)
            middle = len(items) // 2
            first = self._export_split(items[:middle])
            second = self._export_split(items[middle:])
            return first if first != self._result.SUCCESS else second  # type: ignore[attr-defined]
        self._pending = (data, request)
        try:
            return self._export(data)  # type: ignore[attr-defined]
        finally:
            self._pending = None


class FastOTLPSpanExporter(_FastGrpcMixin, OTLPSpanExporter):  # type: ignore[misc]  # encodes to bytes, not a message
    """Drop-in ``OTLPSpanExporter`` (gRPC) that encodes ~7x faster."""

    _method = TRACE_EXPORT_METHOD
    _response = ExportTraceServiceResponse
    _encoder_cls = SpanEncoder
    takes_encoded_spans = True  # a batch may hold wire.EncodedSpan items (see ReportingBatchSpanProcessor)

    def export(self, spans: Sequence):
        if self._shutdown:
            return self._export(spans)  # the stock warning and FAILURE
        return self._export_split(spans)


class FastOTLPLogExporter(_FastGrpcMixin, OTLPLogExporter):  # type: ignore[misc]  # encodes to bytes, not a message
    """Drop-in ``OTLPLogExporter`` (gRPC) with the same direct encoder for log records."""

    _method = LOGS_EXPORT_METHOD
    _response = ExportLogsServiceResponse
    _encoder_cls = LogEncoder
    takes_encoded_logs = True  # a batch may hold wire.EncodedLog items (see ReportingBatchLogRecordProcessor)

    def export(self, batch: Sequence):
        if self._shutdown:
            return self._export(batch)
        return self._export_split(batch)


_REJECTED = frozenset({"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "UNIMPLEMENTED"})


def single_attempt(exporter, method: str, response_deserializer):
    """One send of already-encoded request bytes over ``exporter``'s channel, no retry: the spool retries.

    Same headers, timeout, compression and ``otel.sdk.exporter.*`` self-metrics as the
    exporter's own ``_export``; the channel is re-created after UNAVAILABLE (as the SDK
    does) so a collector that comes back is reached at once, not after gRPC's backoff.
    """
    import grpc
    from opentelemetry.semconv._incubating.attributes.rpc_attributes import (
        RPC_RESPONSE_STATUS_CODE,
    )

    from otel_trading.export.spool import Outcome

    stub: list = [None, None]  # (channel, raw stub)

    def send(body: bytes, items: int) -> tuple[Outcome, str]:
        if exporter._shutdown or exporter._channel is None:
            return Outcome.RETRY, "exporter shut down"
        if stub[0] is not exporter._channel:
            stub[:] = [exporter._channel, _raw_stub(exporter._channel, method, response_deserializer)]
        with exporter._metrics.export_operation(items) as result:
            try:
                stub[1].Export(body, metadata=exporter._headers, timeout=exporter._timeout)
                return Outcome.SENT, ""
            except grpc.RpcError as error:
                code = error.code()
                result.error = error
                result.error_attrs = {RPC_RESPONSE_STATUS_CODE: code.name}
                details = str(error.details() or "")[:120]
                if code == grpc.StatusCode.UNAVAILABLE and not exporter._shutdown:
                    try:
                        exporter._channel.close()
                    finally:
                        exporter._initialize_channel_and_stub()
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED and ("larger than max" in details or len(body) > DEFAULT_MAX_REQUEST_BYTES):
                    return Outcome.TOO_LARGE, f"RESOURCE_EXHAUSTED, request of {len(body)} bytes too large: {details}"
                if code.name in _REJECTED:
                    return Outcome.REJECTED, f"{code.name}: {details}"
                return Outcome.RETRY, f"{code.name}: {details}"

    return send
