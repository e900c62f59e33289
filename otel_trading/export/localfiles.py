"""Telemetry to local files, and back: the embedded default when no collector runs.

Exporters (entry point name ``local`` for traces, metrics and logs, so
``OTEL_TRACES_EXPORTER=local`` works under ``opentelemetry-instrument``) write
JSON lines under ``OTEL_TRADING_LOCAL_DIR`` (default ``./otel-trading-data``):

    spans.<pid>.jsonl    one finished span per line
    resource.<pid>.json  the process's resource attributes (records carry service.name)
    logs.<pid>.jsonl     one log record per line
    metrics.<pid>.jsonl  one data point per line, each export (cumulative)

One file per process, so forked workers never interleave lines. Everything is
plain JSON: ``jq`` works, and so does ``otel-trading traces`` which prints
traces as trees with durations (``show_traces``).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
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

from otel_trading import forksafe, privatefiles
from otel_trading.redaction import get_redactor
from otel_trading.report import report
from otel_trading.trading.kinds import SPAN_KIND_ATTRIBUTE

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
    "traces",
    "order_traces",
    "render_trace",
    "histogram_percentiles",
    "show_traces",
]

DEFAULT_DIR = "otel-trading-data"
DEMO_DIR = "otel-trading-demo"  # where `otel-trading demo` writes by default
ORDER_ID = "trading.order.id"
_SIGNALS = ("spans", "logs", "metrics")


def local_dir(directory: str | os.PathLike | None = None) -> Path:
    """The folder the local exporters use: ``directory``, else OTEL_TRADING_LOCAL_DIR, else ./otel-trading-data."""
    if directory is not None:
        return Path(directory)
    return Path(os.environ.get("OTEL_TRADING_LOCAL_DIR", "").strip() or DEFAULT_DIR)


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
        forksafe.owned(self, "_lock")
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

    def resource(self, resource) -> str | None:
        """Write the resource once per process to ``resource.<pid>.json``; return its service.name."""
        attrs = _resource(resource)
        if self._resource_written != os.getpid():
            self._resource_written = os.getpid()
            try:
                privatefiles.makedirs(self.directory)
                privatefiles.write(self.directory / f"resource.{os.getpid()}.json", orjson.dumps(attrs, default=_default, option=orjson.OPT_INDENT_2))
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
        try:
            fh = privatefiles.open_read(path)
        except OSError:
            continue  # a symlink planted in the folder, or gone meanwhile
        with fh:
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


def traces(spans: list[dict]) -> dict[str, list[dict]]:
    """Spans grouped by trace id, each list in start order; traces ordered by first start."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for span in spans:
        grouped[span["trace_id"]].append(span)
    for items in grouped.values():
        items.sort(key=lambda s: s["start_ns"] or 0)
    return dict(sorted(grouped.items(), key=lambda kv: kv[1][0]["start_ns"] or 0))


def _fmt_duration(ms: float | None) -> str:
    if ms is None:
        return "?"
    if ms < 1:
        return f"{ms * 1000:.0f} us"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


_SHOWN = (
    ORDER_ID,
    "trading.symbol",
    "trading.side",
    "trading.order.quantity",
    "trading.order.status",
    "trading.reject.reason",
    "trading.venue",
    "trading.stage",
)


# ANSI escape sequences and other control characters: span data must not drive the terminal
_CONTROL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)?|[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` for the terminal: control characters and escape sequences removed, secrets masked."""
    return get_redactor().redact_text(_CONTROL.sub(lambda m: " " if m.group(0) in "\t\n\r" else "", text))


def _label(span: dict) -> str:
    return printable(_raw_label(span))


def _raw_label(span: dict) -> str:
    attrs = span.get("attributes") or {}
    kind = attrs.get(SPAN_KIND_ATTRIBUTE)
    parts = [span["name"]]
    if kind:
        parts.append(f"[{kind}]")
    parts.append(_fmt_duration(span.get("duration_ms")))
    details = [f"{k.rsplit('.', 1)[-1] if k != ORDER_ID else 'order'}={attrs[k]}" for k in _SHOWN if k in attrs]
    if details:
        parts.append(" ".join(details))
    if span.get("status") == "ERROR":
        parts.append("ERROR" + (f": {span['status_message']}" if span.get("status_message") else ""))
    other = [link["trace_id"][:8] for link in span.get("links") or () if link["trace_id"] != span["trace_id"]]
    if other:
        parts.append(f"linked to trace {','.join(other)}")
    return "  ".join(parts)


def render_trace(spans: list[dict]) -> list[str]:
    """One trace as tree lines: ``name [kind] duration details``."""
    by_id = {s["span_id"]: s for s in spans}
    children: dict[str | None, list[dict]] = defaultdict(list)
    roots = []
    for s in spans:
        parent = s.get("parent_span_id")
        if parent and parent in by_id:
            children[parent].append(s)
        else:
            roots.append(s)
    lines = [printable(f"trace {spans[0]['trace_id']}")]

    def walk(span: dict, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + _label(span))
        kids = sorted(children.get(span["span_id"], []), key=lambda s: s["start_ns"] or 0)
        extension = "" if top else ("   " if last else "│  ")
        for i, kid in enumerate(kids):
            walk(kid, prefix + extension, i == len(kids) - 1, False)

    for i, root in enumerate(roots):
        walk(root, "  ", i == len(roots) - 1, True)
    return lines


def order_traces(spans: list[dict], order_id: str | None = None) -> list[list[dict]]:
    """Traces that contain an order span; given ``order_id``, that order's traces with the traces linked to or from them."""
    grouped = traces(spans)
    if order_id is None:
        return [items for items in grouped.values() if any((s.get("attributes") or {}).get(SPAN_KIND_ATTRIBUTE) == "order" for s in items)]
    selected = [t for t, items in grouped.items() if any(str((s.get("attributes") or {}).get(ORDER_ID)) == order_id for s in items)]
    # traces linking to the order's (fills arrive in their own trace, linked to the order) ...
    chosen = set(selected)
    selected += [
        t for t, items in grouped.items() if t not in chosen and any(link["trace_id"] in chosen for s in items for link in s.get("links") or ())
    ]
    # ... and the traces they link to (the signal that caused the order)
    for trace_id in list(selected):
        for s in grouped[trace_id]:
            for link in s.get("links") or ():
                if link["trace_id"] in grouped and link["trace_id"] not in selected:
                    selected.append(link["trace_id"])
    # the order's story in time order: signal, order, fills
    return sorted((grouped[t] for t in selected), key=lambda items: items[0]["start_ns"] or 0)


def show_traces(argv: Sequence[str] | None = None) -> int:
    """``otel-trading traces [--order ID] [--dir DIR] [--limit N] [--all]``: print traces from local files."""
    parser = argparse.ArgumentParser(
        prog="otel-trading traces",
        description="Show traces written by the local exporters (OTEL_TRACES_EXPORTER=local, the demo's embedded mode).",
    )
    parser.add_argument("--order", metavar="ID", help="show the trace(s) of this order id (trading.order.id), with linked traces")
    parser.add_argument("--dir", metavar="DIR", help=f"folder of the files (default: $OTEL_TRADING_LOCAL_DIR, else ./{DEFAULT_DIR}, else ./{DEMO_DIR})")
    parser.add_argument("--limit", type=int, default=5, metavar="N", help="show at most N traces (default 5, the latest)")
    parser.add_argument("--all", action="store_true", help="every trace, not only those with an order span")
    args = parser.parse_args(list(argv) if argv is not None else None)
    folder = local_dir(args.dir)
    if args.dir is None and not os.environ.get("OTEL_TRADING_LOCAL_DIR") and not read_spans(folder):
        folder = Path(DEMO_DIR)  # nothing here: the demo's folder
    spans = read_spans(folder)
    if not spans:
        print(f"no spans in {folder.resolve()} (run `otel-trading demo --local` or set OTEL_TRACES_EXPORTER=local)", file=sys.stderr)
        return 1
    if args.all:
        selected = list(traces(spans).values())
    else:
        selected = order_traces(spans, args.order)
    if not selected:
        what = f"order {args.order!r}" if args.order else "an order span"
        print(f"no trace with {what} among {len(traces(spans))} traces in {folder.resolve()}", file=sys.stderr)
        return 1
    shown = selected if args.order else selected[max(len(selected) - max(args.limit, 0), 0):]
    for items in shown:
        print("\n".join(render_trace(items)))
        print()
    total = len(selected)
    print(f"{len(shown)} of {total} trace(s) shown, from {folder.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(show_traces())
