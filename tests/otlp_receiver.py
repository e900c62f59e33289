"""A loopback OTLP receiver for the tests: gRPC and HTTP/protobuf, built from
opentelemetry-proto's generated services. It decodes what the real exporters
send and keeps it, so tests assert on what a collector would have received.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2_grpc as metrics_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc


def value(any_value) -> Any:
    """An OTLP AnyValue as a Python value."""
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    v = getattr(any_value, kind)
    if kind == "array_value":
        return [value(x) for x in v.values]
    if kind == "kvlist_value":
        return attributes(v.values)
    return v


def attributes(key_values) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in key_values}


@dataclass
class Span:
    resource: dict[str, Any]
    scope: str
    proto: Any

    name = property(lambda self: self.proto.name)
    kind = property(lambda self: self.proto.kind)
    attributes = property(lambda self: attributes(self.proto.attributes))
    trace_id = property(lambda self: self.proto.trace_id.hex())
    span_id = property(lambda self: self.proto.span_id.hex())
    parent_span_id = property(lambda self: self.proto.parent_span_id.hex())
    status_code = property(lambda self: self.proto.status.code)
    events = property(lambda self: list(self.proto.events))
    links = property(lambda self: list(self.proto.links))


@dataclass
class LogRecord:
    resource: dict[str, Any]
    scope: str
    proto: Any

    body = property(lambda self: value(self.proto.body))
    attributes = property(lambda self: attributes(self.proto.attributes))
    trace_id = property(lambda self: self.proto.trace_id.hex())
    span_id = property(lambda self: self.proto.span_id.hex())
    severity_number = property(lambda self: self.proto.severity_number)
    severity_text = property(lambda self: self.proto.severity_text)


@dataclass
class Metric:
    resource: dict[str, Any]
    scope: str
    proto: Any

    name = property(lambda self: self.proto.name)
    unit = property(lambda self: self.proto.unit)

    @property
    def points(self) -> list:
        data = getattr(self.proto, self.proto.WhichOneof("data"))
        return list(data.data_points)


class OtlpReceiver:
    """Collects OTLP exports on 127.0.0.1. ``status`` makes it refuse exports
    (a gRPC status code) to play a failing collector; ``delay`` makes it slow."""

    def __init__(self, grpc_port: int = 0, http_port: int = 0) -> None:
        self.requests: dict[str, list] = {"traces": [], "metrics": [], "logs": []}
        self.headers: list[dict[str, str]] = []  # request metadata / HTTP headers, lowercased keys
        self.status: grpc.StatusCode | None = None
        self.delay = 0.0
        self._changed = threading.Condition()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_grpc.add_TraceServiceServicer_to_server(_Servicer(self, "traces", trace_pb.ExportTraceServiceResponse), self._grpc)
        metrics_grpc.add_MetricsServiceServicer_to_server(_Servicer(self, "metrics", metrics_pb.ExportMetricsServiceResponse), self._grpc)
        logs_grpc.add_LogsServiceServicer_to_server(_Servicer(self, "logs", logs_pb.ExportLogsServiceResponse), self._grpc)
        self.grpc_port = self._grpc.add_insecure_port(f"127.0.0.1:{grpc_port}")  # a fixed port: a collector restarted in place
        self._http = ThreadingHTTPServer(("127.0.0.1", http_port), _http_handler(self))
        self._http.daemon_threads = True
        self.http_port = self._http.server_address[1]

    grpc_endpoint = property(lambda self: f"http://127.0.0.1:{self.grpc_port}")
    http_endpoint = property(lambda self: f"http://127.0.0.1:{self.http_port}")

    def start(self) -> OtlpReceiver:
        self._grpc.start()
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._grpc.stop(grace=None)
        self._http.shutdown()
        self._http.server_close()

    def clear(self) -> None:
        with self._changed:
            for requests in self.requests.values():
                requests.clear()
            self.headers.clear()

    def _add(self, signal: str, request, headers: dict[str, str]) -> None:
        with self._changed:
            self.headers.append(headers)
            self.requests[signal].append(request)
            self._changed.notify_all()

    def _flatten(self, signal: str, cls, resource_field: str, scope_field: str, items_field: str) -> list:
        with self._changed:
            requests = list(self.requests[signal])
        out = []
        for request in requests:
            for resource_items in getattr(request, resource_field):
                resource = attributes(resource_items.resource.attributes)
                for scope_items in getattr(resource_items, scope_field):
                    for item in getattr(scope_items, items_field):
                        out.append(cls(resource, scope_items.scope.name, item))
        return out

    def spans(self) -> list[Span]:
        return self._flatten("traces", Span, "resource_spans", "scope_spans", "spans")

    def logs(self) -> list[LogRecord]:
        return self._flatten("logs", LogRecord, "resource_logs", "scope_logs", "log_records")

    def metrics(self) -> list[Metric]:
        return self._flatten("metrics", Metric, "resource_metrics", "scope_metrics", "metrics")

    def wait_for(self, predicate: Callable[[OtlpReceiver], Any], timeout: float = 15.0):
        """Wait until ``predicate(self)`` is truthy and return its value; raise on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate(self)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"OTLP receiver: condition not met within {timeout}s; got {self.counts()}")
                self._changed.wait(min(remaining, 0.2))

    def counts(self) -> dict[str, int]:
        return {"spans": len(self.spans()), "logs": len(self.logs()), "metrics": len(self.metrics())}


class _Servicer:
    def __init__(self, receiver: OtlpReceiver, signal: str, response) -> None:
        self.receiver, self.signal, self.response = receiver, signal, response

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        if self.receiver.delay:
            time.sleep(self.receiver.delay)
        if self.receiver.status is not None:
            context.abort(self.receiver.status, "receiver told to refuse")
        self.receiver._add(self.signal, request, {k.lower(): v for k, v in context.invocation_metadata()})
        return self.response()


_HTTP_REQUESTS = {
    "/v1/traces": ("traces", trace_pb.ExportTraceServiceRequest, trace_pb.ExportTraceServiceResponse),
    "/v1/metrics": ("metrics", metrics_pb.ExportMetricsServiceRequest, metrics_pb.ExportMetricsServiceResponse),
    "/v1/logs": ("logs", logs_pb.ExportLogsServiceRequest, logs_pb.ExportLogsServiceResponse),
}


def _http_handler(receiver: OtlpReceiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            if self.path not in _HTTP_REQUESTS:
                self.send_error(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            if receiver.delay:
                time.sleep(receiver.delay)
            if receiver.status is not None:
                self.send_error(503)
                return
            signal, request_cls, response_cls = _HTTP_REQUESTS[self.path]
            request = request_cls()
            request.ParseFromString(body)
            receiver._add(signal, request, {k.lower(): v for k, v in self.headers.items()})
            payload = response_cls().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    return Handler
