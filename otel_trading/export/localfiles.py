"""Telemetry to local files, and back: the embedded default when no collector runs.

Exporters (entry point name ``local`` for traces, metrics and logs, so
``OTEL_TRACES_EXPORTER=local`` works under ``opentelemetry-instrument``; also
what the distro falls back to when no collector is configured nor running)
write OTLP/JSON lines under ``OTEL_TRADING_LOCAL_DIR`` (default
``./otel-trading-data``):

    spans.<pid>.jsonl    one ExportTraceServiceRequest per line (one exported batch)
    logs.<pid>.jsonl     one ExportLogsServiceRequest per line
    metrics.<pid>.jsonl  one ExportMetricsServiceRequest per line, each export (cumulative)

That is the format the Collector's ``file`` exporter writes and its
``otlpjsonfile`` receiver reads (protobuf JSON mapping, lowerCamelCase keys,
enums as integers, 64-bit integers as strings, trace and span ids as hex, as
the OTLP specification says), so the files can be replayed into any collector
later (``docker compose --profile replay up``). One file per process, so forked
workers never interleave lines. ``otel-trading traces`` (``cli/traces.py``) prints traces
as trees with durations; ``read_spans`` / ``read_logs`` /
``read_metrics`` flatten the files into one dict per span, record or point.
"""

from __future__ import annotations

import base64
import glob
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_trading import config, forksafe, privatefiles
from otel_trading.report import report

__all__ = [
    "LocalSpanExporter",
    "LocalLogExporter",
    "LocalMetricExporter",
    "local_dir",
    "clear",
    "read_spans",
    "read_logs",
    "read_metrics",
    "latest_metrics",
    "histogram_percentiles",
]

DEFAULT_DIR = "otel-trading-data"
DEMO_DIR = "otel-trading-demo"  # where `otel-trading demo` writes by default
_SIGNALS = ("spans", "logs", "metrics")


def local_dir(directory: str | os.PathLike | None = None) -> Path:
    """The folder the local exporters use: ``directory``, else OTEL_TRADING_LOCAL_DIR, else ./otel-trading-data."""
    if directory is not None:
        return Path(directory)
    return Path(config.current().local_dir or DEFAULT_DIR)


def clear(directory: str | os.PathLike | None = None) -> None:
    """Remove the local exporters' files (and only those) from ``directory``."""
    folder = local_dir(directory)
    for pattern in [f"{signal}.*.jsonl" for signal in _SIGNALS]:
        for path in glob.glob(str(folder / pattern)):
            try:
                os.remove(path)
            except OSError:
                pass


class _Writer:
    """Appends lines to ``<dir>/<signal>.<pid>.jsonl``; reopens after fork."""

    def __init__(self, signal: str, directory: str | os.PathLike | None):
        self.signal = signal
        self.directory = local_dir(directory)
        self._lock = threading.Lock()
        forksafe.owned(self, "_lock")
        self._file: BinaryIO | None = None
        self._pid: int | None = None
        self._warned = False

    @property
    def path(self) -> Path:
        return self.directory / f"{self.signal}.{os.getpid()}.jsonl"

    def write(self, lines: Iterable[bytes]) -> bool:
        data = b"".join(lines)
        if not data:
            return True
        try:
            with self._lock:
                if self._file is None or self._pid != os.getpid():
                    privatefiles.makedirs(self.directory)
                    self._file = privatefiles.open_append(self.path)
                    self._pid = os.getpid()
                self._file.write(data)
                self._file.flush()
            return True
        except OSError as exc:
            if not self._warned:
                self._warned = True
                report(f"cannot write {self.signal} to {self.directory}: {exc}")
            return False

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                finally:
                    self._file = None


# ---------------------------------------------------------------------- OTLP/JSON

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node: Any) -> None:
    """Protobuf's JSON mapping writes bytes as base64; OTLP/JSON wants trace and span ids as hex."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            elif isinstance(value, (dict, list)):
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)


def otlp_json(request) -> bytes:
    """One OTLP export request message as an OTLP/JSON line."""
    data = MessageToDict(request, use_integers_for_enums=True)
    _hex_ids(data)
    return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE)


# ---------------------------------------------------------------------- exporters


class LocalSpanExporter(SpanExporter):
    """Finished spans as OTLP/JSON lines (entry point ``local`` in opentelemetry_traces_exporter)."""

    takes_encoded_spans = True  # a batch may hold wire.EncodedSpan items (see ReportingBatchSpanProcessor)

    def __init__(self, directory: str | os.PathLike | None = None):
        from otel_trading.export.wire import SpanEncoder

        self._writer = _Writer("spans", directory)
        self._encoder = SpanEncoder()

    @property
    def directory(self) -> Path:
        return self._writer.directory

    def export(self, spans: Sequence) -> SpanExportResult:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        if not spans:
            return SpanExportResult.SUCCESS
        line = otlp_json(ExportTraceServiceRequest.FromString(self._encoder.encode(spans)))
        return SpanExportResult.SUCCESS if self._writer.write([line]) else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class LocalLogExporter(LogRecordExporter):
    """Log records as OTLP/JSON lines (entry point ``local`` in opentelemetry_logs_exporter)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        from otel_trading.export.wire import LogEncoder

        self._writer = _Writer("logs", directory)
        self._encoder = LogEncoder()

    @property
    def directory(self) -> Path:
        return self._writer.directory

    def export(self, batch: Sequence) -> LogRecordExportResult:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )

        if not batch:
            return LogRecordExportResult.SUCCESS
        line = otlp_json(ExportLogsServiceRequest.FromString(self._encoder.encode(batch)))
        return LogRecordExportResult.SUCCESS if self._writer.write([line]) else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        self._writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class LocalMetricExporter(MetricExporter):
    """Metrics as OTLP/JSON lines, cumulative (entry point ``local`` in opentelemetry_metrics_exporter)."""

    def __init__(self, directory: str | os.PathLike | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._writer = _Writer("metrics", directory)

    @property
    def directory(self) -> Path:
        return self._writer.directory

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (
            encode_metrics,
        )

        line = otlp_json(encode_metrics(metrics_data))
        return MetricExportResult.SUCCESS if self._writer.write([line]) else MetricExportResult.FAILURE

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._writer.close()

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True


# ------------------------------------------------------------------------- reading


def _requests(signal: str, directory: str | os.PathLike | None) -> Iterable[dict]:
    for path in sorted(glob.glob(str(local_dir(directory) / f"{signal}.*.jsonl"))):
        try:
            fh = privatefiles.open_read(path)
        except OSError:
            continue  # a symlink planted in the folder, or gone meanwhile
        with fh:
            for line in fh:
                line = line.strip()
                if line:
                    try:
                        request = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue  # a line cut short by a crash: skip it
                    if isinstance(request, dict):
                        yield request


def _value(any_value: dict | None) -> Any:
    """An OTLP/JSON AnyValue as a Python value."""
    if not any_value:
        return None
    kind, value = next(iter(any_value.items()))
    if kind == "intValue":
        return int(value)
    if kind == "arrayValue":
        return [_value(v) for v in value.get("values", ())]
    if kind == "kvlistValue":
        return _attributes(value.get("values"))
    if kind == "bytesValue":
        return base64.b64decode(value).hex()
    return value


def _attributes(key_values: list | None) -> dict:
    return {kv["key"]: _value(kv.get("value")) for kv in key_values or ()}


def _items(signal: str, directory, resource_key: str, scope_key: str, items_key: str) -> Iterable[tuple[dict, str | None, dict]]:
    """(resource attributes, scope name, item) for every item of every request."""
    for request in _requests(signal, directory):
        for resource_items in request.get(resource_key, ()):
            resource = _attributes((resource_items.get("resource") or {}).get("attributes"))
            for scope_items in resource_items.get(scope_key, ()):
                scope = (scope_items.get("scope") or {}).get("name")
                for item in scope_items.get(items_key, ()):
                    yield resource, scope, item


_SPAN_KINDS = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def _ns(value: Any) -> int | None:
    return int(value) if value is not None else None


def read_spans(directory: str | os.PathLike | None = None) -> list[dict]:
    """Every span in the files, flattened: ids, name, kind, times, status, attributes, events, links, scope, service."""
    out = []
    for resource, scope, span in _items("spans", directory, "resourceSpans", "scopeSpans", "spans"):
        start, end = _ns(span.get("startTimeUnixNano")), _ns(span.get("endTimeUnixNano"))
        status = span.get("status") or {}
        out.append(
            {
                "trace_id": span.get("traceId"),
                "span_id": span.get("spanId"),
                "parent_span_id": span.get("parentSpanId") or None,
                "name": span.get("name", ""),
                "kind": _SPAN_KINDS.get(span.get("kind", 0), "INTERNAL"),
                "start_ns": start,
                "end_ns": end,
                "duration_ms": (end - start) / 1e6 if start and end else None,
                "status": _STATUS.get(status.get("code", 0), "UNSET"),
                "status_message": status.get("message"),
                "attributes": _attributes(span.get("attributes")),
                "events": [
                    {"name": e.get("name"), "time_ns": _ns(e.get("timeUnixNano")), "attributes": _attributes(e.get("attributes"))}
                    for e in span.get("events", ())
                ],
                "links": [
                    {"trace_id": link.get("traceId"), "span_id": link.get("spanId"), "attributes": _attributes(link.get("attributes"))}
                    for link in span.get("links", ())
                ],
                "scope": scope,
                "service": resource.get("service.name"),
            }
        )
    return out


def read_logs(directory: str | os.PathLike | None = None) -> list[dict]:
    """Every log record in the files, flattened."""
    out = []
    for resource, scope, rec in _items("logs", directory, "resourceLogs", "scopeLogs", "logRecords"):
        out.append(
            {
                "time_ns": _ns(rec.get("timeUnixNano") or rec.get("observedTimeUnixNano")),
                "severity": rec.get("severityText"),
                "severity_number": rec.get("severityNumber"),
                "body": _value(rec.get("body")),
                "attributes": _attributes(rec.get("attributes")),
                "trace_id": rec.get("traceId") or None,
                "span_id": rec.get("spanId") or None,
                "event_name": rec.get("eventName"),
                "scope": scope,
                "service": resource.get("service.name"),
            }
        )
    return out


def read_metrics(directory: str | os.PathLike | None = None) -> list[dict]:
    """Every metric data point in the files, flattened (one per point per export)."""
    out = []
    for resource, scope, metric in _items("metrics", directory, "resourceMetrics", "scopeMetrics", "metrics"):
        for kind, key in (("sum", "sum"), ("gauge", "gauge"), ("histogram", "histogram"), ("exponential_histogram", "exponentialHistogram"), ("summary", "summary")):
            data = metric.get(key)
            if data is not None:
                break
        else:
            continue
        if kind == "sum":
            kind = "counter" if data.get("isMonotonic") else "updowncounter"
        for point in data.get("dataPoints", ()):
            record = {
                "name": metric.get("name"),
                "unit": metric.get("unit", ""),
                "type": kind,
                "time_ns": _ns(point.get("timeUnixNano")),
                "attributes": _attributes(point.get("attributes")),
                "scope": scope,
                "service": resource.get("service.name"),
            }
            if kind == "histogram":
                record.update(
                    count=int(point.get("count", 0)),
                    sum=point.get("sum"),
                    min=point.get("min"),
                    max=point.get("max"),
                    bounds=list(point.get("explicitBounds", ())),
                    counts=[int(c) for c in point.get("bucketCounts", ())],
                )
            elif "asInt" in point or "asDouble" in point:
                record["value"] = int(point["asInt"]) if "asInt" in point else point["asDouble"]
            else:
                record.update(count=_ns(point.get("count")), sum=point.get("sum"))
            out.append(record)
    return out


def latest_metrics(records: list[dict]) -> dict[str, list[dict]]:
    """The last (cumulative) point of each series, by metric name."""
    last: dict[tuple, dict] = {}
    for rec in records:
        key = (rec.get("service"), rec["name"], tuple(sorted((k, str(v)) for k, v in rec["attributes"].items())))
        if key not in last or rec["time_ns"] >= last[key]["time_ns"]:
            last[key] = rec
    out: dict[str, list[dict]] = defaultdict(list)
    for rec in last.values():
        out[rec["name"]].append(rec)
    return dict(out)


def histogram_percentiles(points: list[dict], quantiles: Sequence[float] = (0.5, 0.9, 0.99)) -> dict[float, float] | None:
    """Quantiles estimated from histogram points merged together (linear inside a bucket)."""
    points = [p for p in points if p.get("count")]
    if not points:
        return None
    bounds = points[0]["bounds"]
    counts = [0] * (len(bounds) + 1)
    low = min(p["min"] for p in points)
    high = max(p["max"] for p in points)
    for p in points:
        if p["bounds"] != bounds:
            continue
        for i, c in enumerate(p["counts"]):
            counts[i] += c
    total = sum(counts)
    result = {}
    for q in quantiles:
        rank = q * total
        seen = 0
        for i, c in enumerate(counts):
            if c and seen + c >= rank:
                lo = bounds[i - 1] if i > 0 else low
                hi = bounds[i] if i < len(bounds) else high
                lo, hi = max(lo, low), min(hi, high)
                value = lo + (hi - lo) * ((rank - seen) / c)
                result[q] = value
                break
            seen += c
        else:
            result[q] = high
    return result
