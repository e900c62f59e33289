"""Telemetry to local files, and back: the embedded default when no collector runs.

Exporters (entry point name ``local`` for traces, metrics and logs, so
``OTEL_TRACES_EXPORTER=local`` works under ``opentelemetry-instrument``) write
JSON lines under ``OTEL_TRADING_LOCAL_DIR`` (default ``./otel-trading-data``):

    spans.<pid>.jsonl    one finished span per line
    resource.<pid>.json  the process's resource attributes (records carry service.name)
    logs.<pid>.jsonl     one log record per line
    metrics.<pid>.jsonl  one data point per line, each export (cumulative)

One file per process, so forked workers never interleave lines. Everything is
plain JSON: ``jq`` works, and so does ``otel-trading traces`` (``cli/traces.py``)
which prints traces as trees with durations.
"""

from __future__ import annotations

import glob
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import format_span_id, format_trace_id

from otel_trading import config
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
    patterns = [f"{signal}.*.jsonl" for signal in _SIGNALS] + ["resource.*.json"]
    for pattern in patterns:
        for path in glob.glob(str(folder / pattern)):
            try:
                os.remove(path)
            except OSError:
                pass


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "items"):
        return dict(value.items())
    return str(value)


def _dumps(record: dict) -> bytes:
    return orjson.dumps(record, default=_default, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)


class _Writer:
    """Appends JSON lines to ``<dir>/<signal>.<pid>.jsonl``; reopens after fork."""

    def __init__(self, signal: str, directory: str | os.PathLike | None):
        self.signal = signal
        self.directory = local_dir(directory)
        self._lock = threading.Lock()
        self._file = None
        self._pid = None
        self._resource_written = None  # pid for which resource.<pid>.json was written
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
                    self.directory.mkdir(parents=True, exist_ok=True)
                    self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across exports
                    self._pid = os.getpid()
                self._file.write(data)
                self._file.flush()
            return True
        except OSError as exc:
            if not self._warned:
                self._warned = True
                report(f"cannot write {self.signal} to {self.directory}: {exc}")
            return False

    def resource(self, resource) -> str | None:
        """Write the resource once per process to ``resource.<pid>.json``; return its service.name."""
        attrs = _resource(resource)
        if self._resource_written != os.getpid():
            self._resource_written = os.getpid()
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                (self.directory / f"resource.{os.getpid()}.json").write_bytes(orjson.dumps(attrs, default=_default, option=orjson.OPT_INDENT_2))
            except OSError:
                pass
        return attrs.get("service.name")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                finally:
                    self._file = None


def _resource(resource) -> dict:
    return dict(resource.attributes) if resource is not None else {}


def _ns(value: int | None) -> int | None:
    return int(value) if value is not None else None


# ---------------------------------------------------------------------- exporters


class LocalSpanExporter(SpanExporter):
    """Finished spans as JSON lines (entry point ``local`` in opentelemetry_traces_exporter)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self._writer = _Writer("spans", directory)

    @property
    def directory(self) -> Path:
        return self._writer.directory

    def export(self, spans: Sequence) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.context
            parent = span.parent
            record = {
                "trace_id": format_trace_id(ctx.trace_id),
                "span_id": format_span_id(ctx.span_id),
                "parent_span_id": format_span_id(parent.span_id) if parent is not None else None,
                "parent_remote": bool(parent.is_remote) if parent is not None else None,
                "name": span.name,
                "kind": span.kind.name,
                "start_ns": _ns(span.start_time),
                "end_ns": _ns(span.end_time),
                "duration_ms": (span.end_time - span.start_time) / 1e6 if span.end_time and span.start_time else None,
                "status": span.status.status_code.name,
                "status_message": span.status.description,
                "attributes": dict(span.attributes or {}),
                "events": [
                    {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})} for e in span.events
                ],
                "links": [
                    {
                        "trace_id": format_trace_id(link.context.trace_id),
                        "span_id": format_span_id(link.context.span_id),
                        "attributes": dict(link.attributes or {}),
                    }
                    for link in span.links
                ],
                "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
                "service": self._writer.resource(span.resource),
            }
            lines.append(_dumps(record))
        return SpanExportResult.SUCCESS if self._writer.write(lines) else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class LocalLogExporter(LogRecordExporter):
    """Log records as JSON lines (entry point ``local`` in opentelemetry_logs_exporter)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self._writer = _Writer("logs", directory)

    @property
    def directory(self) -> Path:
        return self._writer.directory

    def export(self, batch: Sequence) -> LogRecordExportResult:
        lines = []
        for item in batch:
            rec = item.log_record
            record = {
                "time_ns": rec.timestamp or rec.observed_timestamp,
                "severity": rec.severity_text,
                "severity_number": rec.severity_number.value if rec.severity_number is not None else None,
                "body": rec.body,
                "attributes": dict(rec.attributes or {}),
                "trace_id": format_trace_id(rec.trace_id) if rec.trace_id else None,
                "span_id": format_span_id(rec.span_id) if rec.span_id else None,
                "event_name": getattr(rec, "event_name", None),
                "scope": item.instrumentation_scope.name if item.instrumentation_scope else None,
                "service": self._writer.resource(item.resource),
            }
            lines.append(_dumps(record))
        return LogRecordExportResult.SUCCESS if self._writer.write(lines) else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        self._writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class LocalMetricExporter(MetricExporter):
    """Metric data points as JSON lines, cumulative (entry point ``local`` in opentelemetry_metrics_exporter)."""

    def __init__(self, directory: str | os.PathLike | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._writer = _Writer("metrics", directory)

    @property
    def directory(self) -> Path:
        return self._writer.directory

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        lines = []
        for rm in metrics_data.resource_metrics:
            service = self._writer.resource(rm.resource)
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    data = metric.data
                    if isinstance(data, Sum):
                        kind = "counter" if data.is_monotonic else "updowncounter"
                    elif isinstance(data, Gauge):
                        kind = "gauge"
                    elif isinstance(data, Histogram):
                        kind = "histogram"
                    else:
                        kind = type(data).__name__.lower()
                    for point in data.data_points:
                        record = {
                            "name": metric.name,
                            "unit": metric.unit,
                            "type": kind,
                            "time_ns": point.time_unix_nano,
                            "attributes": dict(point.attributes or {}),
                            "scope": sm.scope.name,
                            "service": service,
                        }
                        if kind == "histogram":
                            record.update(
                                count=point.count,
                                sum=point.sum,
                                min=point.min,
                                max=point.max,
                                bounds=list(point.explicit_bounds),
                                counts=list(point.bucket_counts),
                            )
                        elif hasattr(point, "value"):
                            record["value"] = point.value
                        else:
                            record.update(count=getattr(point, "count", None), sum=getattr(point, "sum", None))
                        lines.append(_dumps(record))
        return MetricExportResult.SUCCESS if self._writer.write(lines) else MetricExportResult.FAILURE

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._writer.close()

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True


# ------------------------------------------------------------------------- reading


def _read(signal: str, directory: str | os.PathLike | None) -> list[dict]:
    out = []
    for path in sorted(glob.glob(str(local_dir(directory) / f"{signal}.*.jsonl"))):
        with open(path, "rb") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    try:
                        out.append(orjson.loads(line))
                    except orjson.JSONDecodeError:
                        pass  # a line cut short by a crash: skip it
    return out


def read_spans(directory: str | os.PathLike | None = None) -> list[dict]:
    return _read("spans", directory)


def read_logs(directory: str | os.PathLike | None = None) -> list[dict]:
    return _read("logs", directory)


def read_metrics(directory: str | os.PathLike | None = None) -> list[dict]:
    return _read("metrics", directory)


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
