"""The compact form spans and log records take to cross to the export helper process.

The producing process pays only for turning an ended span / emitted record into
a tuple of primitives (its attribute dicts are referenced, not copied: the SDK
no longer changes them) and, on the flusher thread, for one ``marshal.dumps``
per batch: measured cheaper per item than ``pickle`` protocol 5 or ``struct``
packing (see the module docstring of :mod:`otel_trading.export.sidecar`).
Scope and resource tuples are cached per SDK object, so ``marshal`` writes each
once per batch. The helper turns the tuples back into SDK ``ReadableSpan`` /
``ReadableLogRecord`` objects for the exporters the in-process path uses.

Frames on the socket: ``HEADER`` (signal, sequence number, payload length) then
the payload; the helper answers each frame with ``ACK`` (sequence number,
items exported, items whose export failed, length of the state that follows)
then its ``marshal``-ed :func:`state`: what its exporters did since it started
(delivered, spooled, rejected ...) and what it counted as lost, so the app
reports the same lines and metrics as in-process. After the app closes its end,
a last ``ACK`` with sequence number 0 carries the final state (the exit summary).
"""

from __future__ import annotations

import marshal
import struct
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from otel_trading.logs.otlp import clean_value

SPANS, LOGS = 1, 2
SIGNALS = {SPANS: "spans", LOGS: "logs"}
HEADER = struct.Struct("<BQI")  # signal, sequence number, payload bytes
ACK = struct.Struct("<QIII")  # sequence number, exported, failed, state bytes
FINAL = 0  # the sequence number of the helper's last word: its state after its exporters shut down
TALLY_FIELDS = ("delivered", "spooled", "replayed", "evicted", "rejected", "lost")  # spool.Tally's counts
_MARSHAL_VERSION = 4


class Interner:
    """The tuple for a scope / resource object, built once per object (the SDK keeps one per tracer/logger)."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Any, tuple]] = {}

    def get(self, obj: Any, build) -> tuple:
        entry = self._seen.get(id(obj))
        if entry is None or entry[0] is not obj:
            if len(self._seen) > 1024:  # short-lived providers: start over rather than grow
                self._seen.clear()
            entry = self._seen[id(obj)] = (obj, build(obj))
        return entry[1]


def _scope(scope: Any) -> tuple | None:
    if scope is None:
        return None
    attrs = getattr(scope, "attributes", None)
    return (scope.name, scope.version, scope.schema_url, dict(attrs) if attrs else None)


def _resource(resource: Any) -> tuple:
    return (dict(resource.attributes), resource.schema_url) if resource is not None else ({}, "")


def _attrs(attributes: Any) -> tuple[dict | None, int]:
    if not attributes:
        return None, getattr(attributes, "dropped", 0) if attributes is not None else 0
    inner = getattr(attributes, "_dict", None)
    return (inner if type(inner) is dict else dict(attributes)), getattr(attributes, "dropped", 0)


def _event(event: Any) -> tuple:
    attrs, dropped = _attrs(event.attributes)
    return (event.name, event.timestamp, attrs, dropped)


def _link(link: Any) -> tuple:
    ctx = link.context
    attrs, dropped = _attrs(link.attributes)
    return (ctx.trace_id, ctx.span_id, ctx.is_remote, int(ctx.trace_flags), _state(ctx.trace_state), attrs, dropped)


def _state(trace_state: Any) -> tuple | None:
    return tuple(trace_state.items()) if trace_state else None


_KIND_VALUE = {kind: kind.value for kind in SpanKind}
_CODE_VALUE = {code: code.value for code in StatusCode}
# The SDK span fields read directly (pinned SDK, as the wire encoder does); other span types use the properties.
_SPAN_FIELDS = ("_context", "_parent", "_name", "_kind", "_start_time", "_end_time", "_attributes", "_events", "_links", "_status", "_resource", "_instrumentation_scope")


class SpanRecorder:
    """``record(span) -> tuple``: an ended, sampled SDK span as primitives (producer side)."""

    def __init__(self) -> None:
        self._scopes = Interner()
        self._resources = Interner()
        self._fast: dict[type, bool] = {}

    def record(self, span: Any) -> tuple:
        fast = self._fast.get(type(span))
        if fast is None:
            fast = self._fast[type(span)] = all(f in getattr(span, "__dict__", ()) for f in _SPAN_FIELDS)
        if not fast:
            return self._record_public(span)
        d = span.__dict__
        ctx = d["_context"]  # SpanContext is a tuple: trace_id, span_id, is_remote, flags, state, valid
        parent = d["_parent"]
        attributes = d["_attributes"]
        attrs = attributes._dict if type(attributes) is BoundedAttributes else (dict(attributes) if attributes else None)
        events = d["_events"]
        links = d["_links"]
        status = d["_status"]
        state = ctx[4]
        return (
            ctx[0],
            ctx[1],
            int(ctx[3]),
            tuple(state.items()) if state else None,
            None if parent is None else (parent[1], parent[2]),
            d["_name"],
            _KIND_VALUE[d["_kind"]],
            d["_start_time"],
            d["_end_time"],
            attrs,
            getattr(attributes, "dropped", 0),
            tuple(map(_event, events)) if events else None,
            getattr(events, "dropped", 0),
            tuple(map(_link, links)) if links else None,
            getattr(links, "dropped", 0),
            _CODE_VALUE[status.status_code],
            status.description,
            self._scopes.get(d["_instrumentation_scope"], _scope),
            self._resources.get(d["_resource"], _resource),
        )

    def _record_public(self, span: Any) -> tuple:
        ctx = span.context
        parent = span.parent
        attrs, dropped_attrs = _attrs(span.attributes)
        events = span.events
        links = span.links
        status = span.status
        return (
            ctx.trace_id,
            ctx.span_id,
            int(ctx.trace_flags),
            _state(ctx.trace_state),
            None if parent is None else (parent.span_id, parent.is_remote),
            span.name,
            span.kind.value,
            span.start_time,
            span.end_time,
            attrs,
            span.dropped_attributes,
            tuple(map(_event, events)) if events else None,
            span.dropped_events,
            tuple(map(_link, links)) if links else None,
            span.dropped_links,
            status.status_code.value,
            status.description,
            self._scopes.get(span.instrumentation_scope, _scope),
            self._resources.get(span.resource, _resource),
        )


class LogRecorder:
    """``record(readable_or_writable_log_record) -> tuple`` (producer side)."""

    def __init__(self) -> None:
        self._scopes = Interner()
        self._resources = Interner()
        self._loggers = Interner()

    def origin(self, logger: Any) -> tuple:
        """(scope tuple, resource tuple) of an SDK ``Logger``, built once per logger."""
        return self._loggers.get(logger, lambda lg: (_scope(lg._instrumentation_scope), _resource(lg._resource)))

    def record(self, log: Any) -> tuple:
        record = log.log_record
        attrs, dropped = _attrs(record.attributes)
        severity = record.severity_number
        flags = record.trace_flags
        return (
            record.timestamp,
            record.observed_timestamp,
            record.trace_id,
            record.span_id,
            int(flags) if flags is not None else None,
            record.severity_text,
            severity.value if severity is not None else None,
            record.body,
            attrs,
            dropped,
            record.event_name,
            self._scopes.get(log.instrumentation_scope, _scope),
            self._resources.get(log.resource, _resource),
        )


def dumps(items: list) -> bytes:
    """One batch as bytes; an item ``marshal`` cannot write (an exotic attribute or body value) is cleaned."""
    try:
        return marshal.dumps(items, _MARSHAL_VERSION)
    except ValueError:
        return marshal.dumps([_marshallable(item) for item in items], _MARSHAL_VERSION)


def _marshallable(item: tuple) -> tuple:
    try:
        marshal.dumps(item, _MARSHAL_VERSION)
        return item
    except ValueError:
        return tuple(clean_value(v) if isinstance(v, dict) or i == 7 else v for i, v in enumerate(item))


# ---------------------------------------------------------------- helper side


def state(exporters: dict[int, list], losses: Any, waiting: dict[int, tuple[int, str | None]] | None = None) -> bytes:
    """The helper's counts since it started: per signal the summed ``Tally`` of its spooled exporters
    (None when it has none), the items of the spool that wait for a later start and its path (``waiting``,
    final state only), and its ``LOSSES`` (dropped, failed) by (signal, error.type)."""
    tallies: dict[int, tuple | None] = {}
    for kind, group in exporters.items():
        counted = [e.tally for e in group if getattr(e, "tally", None) is not None]
        tallies[kind] = tuple(sum(getattr(t, f) for t in counted) for f in TALLY_FIELDS) if counted else None
    return marshal.dumps((tallies, waiting, dict(losses.dropped), dict(losses.failed)), _MARSHAL_VERSION)


class _Objects:
    """Scopes and resources decoded once and reused, so exporters group batches by the same objects."""

    def __init__(self) -> None:
        self._scopes: dict[bytes, InstrumentationScope] = {}
        self._resources: dict[bytes, Resource] = {}

    def scope(self, t: tuple | None) -> InstrumentationScope | None:
        if t is None:
            return None
        key = marshal.dumps(t)
        scope = self._scopes.get(key)
        if scope is None:
            scope = self._scopes[key] = InstrumentationScope(t[0], t[1], t[2], t[3])
        return scope

    def resource(self, t: tuple) -> Resource:
        key = marshal.dumps(t)
        resource = self._resources.get(key)
        if resource is None:
            resource = self._resources[key] = Resource(t[0], t[1] or None)
        return resource


def _bounded_attrs(attrs: dict | None, dropped: int) -> Any:
    if not dropped:
        return attrs
    bounded = BoundedAttributes(None, attrs, immutable=True)
    bounded.dropped = dropped
    return bounded


def _bounded_list(items: list, dropped: int) -> Any:
    if not dropped:
        return tuple(items)
    bounded = BoundedList.from_seq(None, items)
    bounded.dropped = dropped
    return bounded


_new = object.__new__
_KINDS = list(SpanKind)
_CODES = {c.value: c for c in StatusCode}
_UNSET = Status(StatusCode.UNSET)
_FLAGS = [TraceFlags(0), TraceFlags(1)]
_EMPTY_STATE = TraceState()


def _flags(value: int) -> TraceFlags:
    return _FLAGS[value] if value < 2 else TraceFlags(value)


def _context(trace_id: int, span_id: int, remote: bool, flags: int, state: tuple | None) -> SpanContext:
    return tuple.__new__(SpanContext, (trace_id, span_id, remote, _flags(flags), TraceState(state) if state else _EMPTY_STATE, True))


class Decoder:
    """Bytes of a batch -> SDK objects the exporters take (helper side)."""

    def __init__(self) -> None:
        self._objects = _Objects()

    def spans(self, payload: bytes) -> list[ReadableSpan]:
        out = []
        per_batch: dict[int, Any] = {}  # marshal shares one scope / resource tuple per batch: look up once
        for t in marshal.loads(payload):
            (trace_id, span_id, flags, state, parent, name, kind, start, end, attrs, dropped_attrs,
             events, dropped_events, links, dropped_links, code, description, scope_t, resource_t) = t
            scope = per_batch.get(id(scope_t))
            if scope is None and scope_t is not None:
                scope = per_batch[id(scope_t)] = self._objects.scope(scope_t)
            resource = per_batch.get(id(resource_t))
            if resource is None:
                resource = per_batch[id(resource_t)] = self._objects.resource(resource_t)
            ctx = _context(trace_id, span_id, False, flags, state)
            span = _new(ReadableSpan)
            span.__dict__.update(
                _name=name,
                _context=ctx,
                _kind=_KINDS[kind],
                _instrumentation_info=None,
                _instrumentation_scope=scope,
                _parent=None if parent is None else _context(trace_id, parent[0], parent[1], flags, state),
                _start_time=start,
                _end_time=end,
                _attributes=_bounded_attrs(attrs, dropped_attrs),
                _events=_bounded_list([_decode_event(e) for e in events], dropped_events) if events or dropped_events else (),
                _links=_bounded_list([_decode_link(k) for k in links], dropped_links) if links or dropped_links else (),
                _resource=resource,
                _status=_UNSET if code == 0 and description is None else Status(_CODES[code], description),
            )
            out.append(span)
        return out

    def logs(self, payload: bytes) -> list[ReadableLogRecord]:
        out = []
        per_batch: dict[int, Any] = {}
        for t in marshal.loads(payload):
            (timestamp, observed, trace_id, span_id, flags, severity_text, severity,
             body, attrs, dropped, event_name, scope_t, resource_t) = t
            scope = per_batch.get(id(scope_t))
            if scope is None and scope_t is not None:
                scope = per_batch[id(scope_t)] = self._objects.scope(scope_t)
            resource = per_batch.get(id(resource_t))
            if resource is None:
                resource = per_batch[id(resource_t)] = self._objects.resource(resource_t)
            record = _new(LogRecord)
            record.__dict__.update(
                timestamp=timestamp,
                observed_timestamp=observed,
                context=None,
                trace_id=trace_id,
                span_id=span_id,
                trace_flags=None if flags is None else _flags(flags),
                severity_text=severity_text,
                severity_number=None if severity is None else SeverityNumber(severity),
                body=body,
                attributes=_bounded_attrs(attrs, dropped),
                event_name=event_name,
                exception=None,
            )
            readable = _new(ReadableLogRecord)
            readable.__dict__.update(log_record=record, resource=resource, instrumentation_scope=scope, limits=None)
            out.append(readable)
        return out


def _decode_event(t: tuple) -> Event:
    name, timestamp, attrs, dropped = t
    return Event(name, _bounded_attrs(attrs, dropped), timestamp)


def _decode_link(t: tuple) -> Link:
    trace_id, span_id, remote, flags, state, attrs, dropped = t
    return Link(_context(trace_id, span_id, remote, flags, state), _bounded_attrs(attrs, dropped))
