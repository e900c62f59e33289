"""The compact form spans and log records take to cross to the export helper process.

A frame's payload is one ``marshal`` string (version 4) of a list of items:

* a span is ``(origin, body)``: ``body`` is its OTLP ``Span`` message, written as
  it ends by the wire encoder the in-process path uses (``SpanEncoder.encode_item``,
  after the redacting processor), so the span's objects are freed at once and the
  helper does not encode again; ``origin`` is ``(scope, resource)`` as tuples of
  primitives, one object per pair of SDK objects, which ``marshal`` writes once per
  frame (the other spans of the frame refer to it in 5 bytes). ~125 bytes a
  span with two attributes. The helper hands the exporters ``wire.EncodedSpan``
  items (as the in-process queue holds) with SDK resource and scope objects built
  once per origin; an exporter that takes only SDK spans gets them parsed back
  (:func:`readable_span`).
* a log record is a tuple of primitives (its attribute dict referenced, not
  copied: the SDK no longer changes it), which the helper turns back into a
  ``ReadableLogRecord``; scope and resource tuples are cached per SDK object, so
  ``marshal`` writes each once per frame too. ``marshal`` was measured cheaper per
  item than ``pickle`` protocol 5 or ``struct`` packing.

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

from otel_trading.export.wire import EncodedSpan, SpanEncoder
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


_NOTHING = object()


class SpanRecorder:
    """``record(span) -> (origin, body)``: an ended, sampled span as its OTLP ``Span`` message (producer side).

    ``body`` is what the in-process path queues too (:class:`~otel_trading.export.wire.SpanEncoder`'s
    ``encode_item``): the span's objects are freed as it ends and the helper only groups and sends.
    ``origin`` is the (scope, resource) tuple pair, built once per pair of SDK objects and shared by
    every span of it, so ``marshal`` writes it once per batch and a reference (5 bytes) after that.
    """

    def __init__(self) -> None:
        self._encode = SpanEncoder().encode_item
        self._origins: dict[tuple[int, int], tuple[Any, Any, tuple]] = {}
        self._last: tuple[Any, Any, tuple] = (_NOTHING, _NOTHING, ())  # the last span's: a busy loop's are all the same

    def record(self, span: Any) -> tuple[tuple, bytes]:
        body = self._encode(span)
        resource, scope = span.resource, span.instrumentation_scope
        last = self._last
        if last[0] is not resource or last[1] is not scope:
            last = self._last = self._origin(resource, scope)
        return (last[2], body)

    def _origin(self, resource: Any, scope: Any) -> tuple[Any, Any, tuple]:
        key = (id(resource), id(scope))
        entry = self._origins.get(key)
        if entry is None or entry[0] is not resource or entry[1] is not scope:
            if len(self._origins) > 1024:  # short-lived providers: start over rather than grow
                self._origins.clear()
            entry = self._origins[key] = (resource, scope, (_scope(scope), _resource(resource)))
        return entry


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
_SAMPLED = _FLAGS[1]
_EMPTY_STATE = TraceState()
_REMOTE = 0x200  # SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK of the OTLP Span / Link flags


def _flags(value: int) -> TraceFlags:
    return _FLAGS[value] if value < 2 else TraceFlags(value)


def _context(trace_id: int, span_id: int, remote: bool, state: TraceState) -> SpanContext:
    return tuple.__new__(SpanContext, (trace_id, span_id, remote, _SAMPLED, state, True))


class Decoder:
    """Bytes of a batch -> the items the exporters take (helper side)."""

    def __init__(self) -> None:
        self._objects = _Objects()

    def spans(self, payload: bytes) -> list[EncodedSpan]:
        """The batch's spans as the in-process path queues them: their OTLP bytes with SDK resource and scope."""
        out = []
        per_batch: dict[int, tuple[Resource, InstrumentationScope | None]] = {}  # marshal shares one origin per batch
        for origin, body in marshal.loads(payload):
            objects = per_batch.get(id(origin))
            if objects is None:
                objects = per_batch[id(origin)] = (self._objects.resource(origin[1]), self._objects.scope(origin[0]))
            out.append(EncodedSpan(objects[0], objects[1], body))
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


def readable_span(span: EncodedSpan) -> ReadableSpan:
    """An encoded span as the SDK's ``ReadableSpan``, for an exporter that takes only those (console,
    third-party exporters): parsed from its OTLP bytes, so it encodes back to the same bytes. Only
    sampled spans are exported, so its trace flags are ``SAMPLED`` (OTLP does not carry them)."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span  # the protobuf runtime: only when such an exporter is used

    pb = Span.FromString(span.body)
    trace_id = int.from_bytes(pb.trace_id, "big")
    state = TraceState.from_header([pb.trace_state]) if pb.trace_state else _EMPTY_STATE
    readable = _new(ReadableSpan)
    readable.__dict__.update(
        _name=pb.name,
        _context=_context(trace_id, int.from_bytes(pb.span_id, "big"), False, state),
        _kind=_KINDS[max(pb.kind - 1, 0)],
        _instrumentation_info=None,
        _instrumentation_scope=span.instrumentation_scope,
        _parent=_context(trace_id, int.from_bytes(pb.parent_span_id, "big"), bool(pb.flags & _REMOTE), state) if pb.parent_span_id else None,
        _start_time=pb.start_time_unix_nano,
        _end_time=pb.end_time_unix_nano,
        _attributes=_bounded_attrs(_key_values(pb.attributes), pb.dropped_attributes_count),
        _events=_bounded_list([_event(e) for e in pb.events], pb.dropped_events_count),
        _links=_bounded_list([_link(k) for k in pb.links], pb.dropped_links_count),
        _resource=span.resource,
        _status=_UNSET if not (pb.status.code or pb.status.message) else Status(_CODES[pb.status.code], pb.status.message or None),
    )
    return readable


def _any(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(_any(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return _key_values(value.kvlist_value.values)
    return getattr(value, which)


def _key_values(pairs: Any) -> dict | None:
    return {kv.key: _any(kv.value) for kv in pairs} or None


def _event(pb: Any) -> Event:
    return Event(pb.name, _bounded_attrs(_key_values(pb.attributes), pb.dropped_attributes_count), pb.time_unix_nano)


def _link(pb: Any) -> Link:
    state = TraceState.from_header([pb.trace_state]) if pb.trace_state else _EMPTY_STATE
    ctx = _context(int.from_bytes(pb.trace_id, "big"), int.from_bytes(pb.span_id, "big"), bool(pb.flags & _REMOTE), state)
    return Link(ctx, _bounded_attrs(_key_values(pb.attributes), pb.dropped_attributes_count))
