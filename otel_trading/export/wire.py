"""OTLP protobuf wire encoding of SDK spans and log records, in plain Python.

The stock encoder (``opentelemetry.exporter.otlp.proto.common``) builds a
protobuf object for every span, attribute and value and then serializes the
tree; on these machines that is ~55 us per span, ~90 % of the export thread's
work. This module writes the same wire bytes directly:

* resource and scope messages are encoded once per object and cached,
* attribute keys are encoded once (``KeyValue.key`` field bytes are cached),
* string / bool attribute values are cached per (key, value) in a bounded dict,
* lengths below 128 are one byte from a table; the rest is plain concatenation.

The output is the same ``ExportTraceServiceRequest`` /
``ExportLogsServiceRequest`` as the stock encoder's, field for field (the tests
compare both byte-for-byte and after parsing). The semantics are the stock ones:
``None`` values encode as an empty ``AnyValue``, an attribute that cannot be
encoded (unknown type, int outside int64, unencodable string) is skipped and
logged, and grouping by resource / scope uses the SDK objects' equality.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from struct import Struct
from typing import Any

from opentelemetry.trace import SpanContext
from opentelemetry.trace.span import DEFAULT_TRACE_STATE
from opentelemetry.trace.status import Status

_logger = logging.getLogger(__name__)
_UNSET = object()
_warned: set = set()


def _warn_once(key, message: str, *args) -> None:
    """Log a problem once per key (bounded), never a traceback on the export thread."""
    if key in _warned:
        return
    if len(_warned) < 1000:
        _warned.add(key)
    _logger.warning(message, *args)


_CACHE_MAX_LEN = 256  # longer strings are encoded every time, never cached (bounded memory)
_pack_q = Struct("<Q").pack  # fixed64
_pack_d = Struct("<d").pack  # double
_pack_i = Struct("<I").pack  # fixed32

_V1 = [bytes((i,)) for i in range(128)]  # one-byte varints
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64 = 1 << 64


def varint(value: int) -> bytes:
    """Unsigned varint (negative int64 values as their 10-byte two's complement)."""
    if 0 <= value < 128:
        return _V1[value]
    if value < 0:
        value += _UINT64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len(n: int) -> bytes:
    return _V1[n] if n < 128 else varint(n)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    n = len(payload)
    return tag + (_V1[n] if n < 128 else varint(n)) + payload


# ---------------------------------------------------------------- AnyValue / KeyValue
# AnyValue: 1 string, 2 bool, 3 int64, 4 double, 5 ArrayValue, 6 KeyValueList, 7 bytes
# KeyValue: 1 key, 2 value.   ArrayValue / KeyValueList: 1 repeated values.

_EMPTY_VALUE = b"\x12\x00"  # KeyValue.value = AnyValue() (stock encodes None this way)
_TRUE = b"\x10\x01"
_FALSE = b"\x10\x00"


def any_value(value: Any) -> bytes:
    """The AnyValue message bytes for ``value`` (stock ``_encode_value`` semantics)."""
    if value is None:
        return b""
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    if isinstance(value, str):
        return field(b"\x0a", value.encode())
    if isinstance(value, bool):  # bool subclasses other than the singletons do not exist; kept for clarity
        return _TRUE if value else _FALSE
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"Value out of range: {value}")
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _pack_d(value)
    if isinstance(value, bytes):
        return field(b"\x3a", value)
    if isinstance(value, Sequence):
        return field(b"\x2a", b"".join([field(b"\x0a", any_value(v)) for v in value]))
    if isinstance(value, Mapping):
        return field(b"\x32", b"".join([field(b"\x0a", key_value(str(k), v)) for k, v in value.items()]))
    raise Exception(f"Invalid type {type(value)} of value {value}")  # noqa: TRY002 - stock message


def key_value(key: str, value: Any) -> bytes:
    return field(b"\x0a", key.encode()) + field(b"\x12", any_value(value))


class AttributeEncoder:
    """Encodes attribute mappings as repeated ``KeyValue`` fields under ``tag``.

    Keys are encoded once; a (key, str/bool value) pair is cached whole, so the
    usual low-cardinality trading attributes cost one dict lookup each. The
    caches are bounded (cleared when full) so high-cardinality values such as
    order ids cannot grow memory.
    """

    __slots__ = ("_tag", "_keys", "_pairs", "_max")

    def __init__(self, tag: bytes, max_entries: int = 8192) -> None:
        self._tag = tag
        self._keys: dict[str, bytes] = {}
        self._pairs: dict[tuple[str, str], bytes] = {}
        self._max = max_entries

    def encode(self, attributes: Mapping[str, Any] | None, out: list[bytes] | None = None) -> list[bytes]:
        """The ``KeyValue`` fields, appended to ``out`` (a message's parts) or a new list."""
        if out is None:
            out = []
        if not attributes:
            return out
        pairs = self._pairs
        tag = self._tag
        inner = getattr(attributes, "_dict", None)  # BoundedAttributes: iterate its dict, not the Mapping mixin
        items = inner.items() if type(inner) is dict else attributes.items()
        for key, value in items:
            cls = type(value)
            if cls is str:
                entry = pairs.get((key, value))
                if entry is None:
                    entry = self._pair(key, value)
                out.append(entry)
                continue
            try:
                kb = self._keys.get(key)
                if kb is None:
                    kb = self._key(key)
                if cls is int:
                    if _INT64_MIN <= value <= _INT64_MAX:
                        if 0 <= value < 128:
                            payload = kb + b"\x12\x02\x18" + _V1[value]
                        else:
                            v = b"\x18" + varint(value)
                            payload = kb + b"\x12" + _V1[len(v)] + v
                    else:
                        raise ValueError(f"Value out of range: {value}")
                elif cls is float:
                    payload = kb + b"\x12\x09\x21" + _pack_d(value)
                elif value is True:
                    payload = kb + b"\x12\x02\x10\x01"
                elif value is False:
                    payload = kb + b"\x12\x02\x10\x00"
                else:
                    payload = kb + field(b"\x12", any_value(value))
                n = len(payload)
                out.append(tag + (_V1[n] if n < 128 else varint(n)) + payload)
            except Exception as error:  # noqa: BLE001 - stock behaviour: skip the attribute, continue
                _warn_once(("attr", key), "otel-trading: attribute %r not exported: %s", key, error)
        return out

    def _key(self, key: str) -> bytes:
        kb = field(b"\x0a", key.encode())
        if len(key) <= _CACHE_MAX_LEN:
            if len(self._keys) >= self._max:
                self._keys.clear()
            self._keys[key] = kb
        return kb

    def _pair(self, key: str, value: str) -> bytes:
        try:
            kb = self._keys.get(key)
            if kb is None:
                kb = self._key(key)
            payload = kb + field(b"\x12", field(b"\x0a", value.encode()))
        except Exception as error:  # noqa: BLE001 - e.g. lone surrogates: skipped like the stock encoder
            _warn_once(("attr", key), "otel-trading: attribute %r not exported: %s", key, error)
            return b""
        entry = field(self._tag, payload)
        if len(key) + len(value) <= _CACHE_MAX_LEN:
            if len(self._pairs) >= self._max:
                self._pairs.clear()
            self._pairs[(key, value)] = entry
        return entry


# ---------------------------------------------------------------- resource / scope
# Resource: 1 repeated attributes.  InstrumentationScope: 1 name, 2 version, 3 attributes.

_generic_attrs = AttributeEncoder(b"\x0a", max_entries=1024)


def resource_message(resource) -> bytes:
    if resource is None:
        return b""
    return b"".join(_generic_attrs.encode(resource.attributes))


def scope_message(scope) -> bytes:
    if scope is None:
        return b""
    parts = []
    if scope.name:
        parts.append(field(b"\x0a", scope.name.encode()))
    if scope.version:
        parts.append(field(b"\x12", scope.version.encode()))
    attrs = getattr(scope, "attributes", None)
    if attrs:
        parts.append(b"".join(AttributeEncoder(b"\x1a").encode(attrs)))
    return b"".join(parts)


class _Groups:
    """Groups items by resource / scope the way the stock encoder's dicts do.

    The stock encoder hashes the SDK Resource for every span (a JSON dump of the
    attributes, ~6 us); here objects are looked up by identity and hashed /
    compared only the first time a new object is seen.
    """

    __slots__ = ("_by_id", "_canon")

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Any, Any, bytes]] = {}  # id(obj) -> (obj, canonical obj, message bytes)
        self._canon: dict[Any, tuple[Any, bytes]] = {}

    def canonical(self, obj, encode) -> tuple[Any, bytes]:
        entry = self._by_id.get(id(obj))
        if entry is None or entry[0] is not obj:
            if len(self._by_id) > 512:  # many short-lived providers: start over
                self._by_id.clear()
                self._canon.clear()
            try:
                canon = self._canon.get(obj)
                if canon is None:
                    canon = self._canon[obj] = (obj, encode(obj))
            except TypeError:  # unhashable: group by identity
                canon = (obj, encode(obj))
            entry = (obj, canon[0], canon[1])
            self._by_id[id(obj)] = entry
        return entry[1], entry[2]


# ---------------------------------------------------------------- spans
# Span: 1 trace_id, 2 span_id, 3 trace_state, 4 parent_span_id, 5 name, 6 kind,
# 7 start fixed64, 8 end fixed64, 9 attributes, 10 dropped_attributes_count,
# 11 events, 12 dropped_events_count, 13 links, 14 dropped_links_count,
# 15 status, 16 flags fixed32.
# Event: 1 time fixed64, 2 name, 3 attributes, 4 dropped_attributes_count.
# Link: 1 trace_id, 2 span_id, 3 trace_state, 4 attributes, 5 dropped, 6 flags fixed32.
# Status: 2 message, 3 code.
# ScopeSpans: 1 scope, 2 spans, 3 schema_url. ResourceSpans: 1 resource, 2 scope_spans, 3 schema_url.

# SpanKind value 0..4 -> the Span.kind field (proto 1..5), indexed by the member's ``_value_``: a dict keyed
# by the member would call Enum.__hash__ and ``.value`` the Enum property, each a Python call per span.
_SPAN_KIND = [b"\x30" + _V1[value + 1] for value in range(5)]
_FLAGS_LOCAL = b"\x85\x01" + _pack_i(0x100)  # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_FLAGS_REMOTE = b"\x85\x01" + _pack_i(0x300)  # ... | SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_LINK_FLAGS_LOCAL = b"\x35" + _pack_i(0x100)
_LINK_FLAGS_REMOTE = b"\x35" + _pack_i(0x300)
_STATUS_UNSET = b"\x7a\x00"


def _trace_state(trace_state) -> str:
    if not trace_state:
        return ""
    return ",".join([f"{key}={value}" for key, value in trace_state.items()])


class _BatchEncoder:
    """Groups items by resource and scope and frames them as
    ``Export*ServiceRequest{ resource_* { resource, scope_* { scope, items } } }``
    (the trace and logs requests share the same field numbers)."""

    _what = "item"

    def __init__(self) -> None:
        self._resources = _Groups()
        self._scopes = _Groups()

    def encode_item(self, item) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, items: Sequence) -> bytes:
        groups: dict[int, tuple[Any, bytes, dict[int, tuple[Any, bytes, list[bytes]]]]] = {}
        resources = self._resources
        scopes = self._scopes
        encode_item = self.encode_item
        last_resource = last_scope = _UNSET
        current: list[bytes] = []
        for item in items:
            resource = item.resource
            scope = item.instrumentation_scope or None
            if resource is not last_resource or scope is not last_scope:
                canon_r, r_bytes = resources.canonical(resource, resource_message)
                group = groups.get(id(canon_r))
                if group is None:
                    group = groups[id(canon_r)] = (canon_r, r_bytes, {})
                canon_s, s_bytes = scopes.canonical(scope, scope_message) if scope is not None else (None, b"")
                scope_group = group[2].get(id(canon_s))
                if scope_group is None:
                    scope_group = group[2][id(canon_s)] = (canon_s, s_bytes, [])
                current = scope_group[2]
                last_resource, last_scope = resource, scope
            try:
                current.append(encode_item(item))
            except Exception as error:  # noqa: BLE001 - one bad item must not lose the batch
                _warn_once(("item", type(error).__name__), "otel-trading: could not encode a %s (%r); it is skipped", self._what, error)
        out = []
        for canon_r, r_bytes, scope_groups in groups.values():
            parts = [field(b"\x0a", r_bytes)]
            for canon_s, s_bytes, encoded in scope_groups.values():
                scope_parts = [field(b"\x0a", s_bytes)]
                for item_bytes in encoded:
                    n = len(item_bytes)
                    scope_parts.append(b"\x12" + (_V1[n] if n < 128 else varint(n)))
                    scope_parts.append(item_bytes)
                schema = canon_s.schema_url if canon_s is not None else None
                if schema:
                    scope_parts.append(field(b"\x1a", schema.encode()))
                parts.append(field(b"\x12", b"".join(scope_parts)))
            schema = getattr(canon_r, "schema_url", None)
            if schema:
                parts.append(field(b"\x1a", schema.encode()))
            out.append(field(b"\x0a", b"".join(parts)))
        return b"".join(out)


# The SDK span fields read directly (pinned SDK); a span type without all of them uses the properties.
_SPAN_FIELDS = ("_context", "_parent", "_name", "_kind", "_start_time", "_end_time", "_attributes", "_events", "_links", "_status")


class _Encoded:
    __slots__ = ("resource", "instrumentation_scope", "body")

    def __init__(self, resource, instrumentation_scope, body: bytes) -> None:
        self.resource = resource
        self.instrumentation_scope = instrumentation_scope
        self.body = body


class EncodedSpan(_Encoded):
    """A span already written as its OTLP ``Span`` message, with what it is grouped by.

    The batch span processor queues these instead of the SDK's span objects when its
    exporter encodes with :class:`SpanEncoder` (see ``ReportingBatchSpanProcessor``): a queued
    span is then one small object holding bytes rather than a graph of a dozen
    containers, which the garbage collector would otherwise traverse again and again
    while the queue is deep (a busy producer's main cost after the span itself).
    """

    __slots__ = ()


class EncodedLog(_Encoded):
    """A log record already written as its OTLP ``LogRecord`` message (see :class:`EncodedSpan`):
    queued by ``ReportingBatchLogRecordProcessor`` when its exporter encodes with :class:`LogEncoder`."""

    __slots__ = ()


class SpanEncoder(_BatchEncoder):
    """``encode(spans) -> bytes`` of an ``ExportTraceServiceRequest`` (SDK spans or :class:`EncodedSpan`)."""

    _what = "span"

    def __init__(self) -> None:
        super().__init__()
        self._span_attrs = AttributeEncoder(b"\x4a")
        self._event_attrs = AttributeEncoder(b"\x1a")
        self._link_attrs = AttributeEncoder(b"\x22")
        self._names: dict[str, bytes] = {}
        self._fast_types: dict[type, bool] = {}

    def encode_item(self, span) -> bytes:
        if type(span) is EncodedSpan:
            return span.body
        fast = self._fast_types.get(type(span))
        if fast is None:
            fast = self._fast_types[type(span)] = all(f in getattr(span, "__dict__", ()) for f in _SPAN_FIELDS)
        if fast:
            fields = span.__dict__
            # SDK ReadableSpan / Span (pinned SDK): read the fields, skipping the properties'
            # per-call copies (MappingProxyType, tuple(events), tuple(links)).
            ctx = fields["_context"]
            parent = fields["_parent"]
            name = fields["_name"]
            kind = fields["_kind"]
            start = fields["_start_time"]
            end = fields["_end_time"]
            attributes = fields["_attributes"]
            events = fields["_events"]
            links = fields["_links"]
            status = fields["_status"]
            dropped_attributes = getattr(attributes, "dropped", 0)
            dropped_events = getattr(events, "dropped", 0)
            dropped_links = getattr(links, "dropped", 0)
            # BoundedAttributes / BoundedList hold a dict / deque: tested and iterated in C below, not
            # through their Mapping / Sequence methods (a Python call for each test and loop)
            attributes = getattr(attributes, "_dict", attributes)
            events = getattr(events, "_dq", events)
            links = getattr(links, "_dq", links)
        else:
            ctx = span.context
            parent = span.parent
            name = span.name
            kind = span.kind
            start = span.start_time
            end = span.end_time
            attributes = span.attributes
            events = span.events
            links = span.links
            status = span.status
            dropped_attributes = span.dropped_attributes
            dropped_events = span.dropped_events
            dropped_links = span.dropped_links
        nb = self._names.get(name)
        if nb is None:
            nb = field(b"\x2a", name.encode()) if name else b""
            if name is None or len(name) <= _CACHE_MAX_LEN:
                if len(self._names) > 4096:
                    self._names.clear()
                self._names[name] = nb
        if type(ctx) is SpanContext:  # a tuple: one unpack instead of a property call per field
            trace_id, span_id, _, _, trace_state, _ = ctx
        else:
            trace_id, span_id, trace_state = ctx.trace_id, ctx.span_id, ctx.trace_state
        parts = [b"\x0a\x10" + trace_id.to_bytes(16, "big") + b"\x12\x08" + span_id.to_bytes(8, "big")]
        if trace_state is not DEFAULT_TRACE_STATE and trace_state:
            parts.append(field(b"\x1a", _trace_state(trace_state).encode()))
        remote = False
        if parent is not None:
            if type(parent) is SpanContext:  # a tuple, as above: no property calls
                parent_id, remote = parent[1], parent[2]
            else:
                parent_id, remote = parent.span_id, parent.is_remote
            parts.append(b"\x22\x08" + parent_id.to_bytes(8, "big"))
        parts.append(nb)
        parts.append(_SPAN_KIND[kind._value_])
        if start:
            parts.append(b"\x39" + _pack_q(start))
        if end:
            parts.append(b"\x41" + _pack_q(end))
        if attributes:
            self._span_attrs.encode(attributes, parts)
        if dropped_attributes:
            parts.append(b"\x50" + varint(dropped_attributes))
        if events:
            for event in events:
                parts.append(field(b"\x5a", self._event(event)))
        if dropped_events:
            parts.append(b"\x60" + varint(dropped_events))
        if links:
            for link in links:
                parts.append(field(b"\x6a", self._link(link)))
        if dropped_links:
            parts.append(b"\x70" + varint(dropped_links))
        if status is not None:
            if type(status) is Status:
                code, message = status._status_code._value_, status._description
            else:
                code, message = status.status_code.value, status.description
            if code or message:
                body = (field(b"\x12", message.encode()) if message else b"") + (b"\x18" + _V1[code] if code else b"")
                parts.append(field(b"\x7a", body))
            else:
                parts.append(_STATUS_UNSET)
        parts.append(_FLAGS_REMOTE if remote else _FLAGS_LOCAL)
        return b"".join(parts)

    def _event(self, event) -> bytes:
        parts = []
        timestamp = event.timestamp
        if timestamp:
            parts.append(b"\x09" + _pack_q(timestamp))
        if event.name:
            parts.append(field(b"\x12", event.name.encode()))
        self._event_attrs.encode(event.attributes, parts)
        dropped = event.dropped_attributes
        if dropped:
            parts.append(b"\x20" + varint(dropped))
        return b"".join(parts)

    def _link(self, link) -> bytes:
        ctx = link.context
        parts = [b"\x0a\x10" + ctx.trace_id.to_bytes(16, "big") + b"\x12\x08" + ctx.span_id.to_bytes(8, "big")]
        self._link_attrs.encode(link.attributes, parts)
        dropped = link.dropped_attributes
        if dropped:
            parts.append(b"\x28" + varint(dropped))
        parts.append(_LINK_FLAGS_REMOTE if ctx.is_remote else _LINK_FLAGS_LOCAL)
        return b"".join(parts)


# ---------------------------------------------------------------- log records
# LogRecord: 1 time fixed64, 2 severity_number, 3 severity_text, 5 body, 6 attributes,
# 7 dropped_attributes_count, 8 flags fixed32, 9 trace_id, 10 span_id,
# 11 observed_time fixed64, 12 event_name.


class LogEncoder(_BatchEncoder):
    """``encode(readable_log_records) -> bytes`` of an ``ExportLogsServiceRequest``."""

    _what = "log record"

    def __init__(self) -> None:
        super().__init__()
        self._attrs = AttributeEncoder(b"\x32")
        self._texts: dict[Any, bytes] = {}

    def _text(self, tag: bytes, text: str) -> bytes:
        key = (tag, text)
        encoded = self._texts.get(key)
        if encoded is None:
            encoded = field(tag, text.encode()) if text else b""
            if len(text) <= _CACHE_MAX_LEN:
                if len(self._texts) > 1024:
                    self._texts.clear()
                self._texts[key] = encoded
        return encoded

    def encode_item(self, readable) -> bytes:
        if type(readable) is EncodedLog:
            return readable.body
        record = readable.log_record
        severity = record.severity_number
        return self.encode_fields(
            record.timestamp, record.observed_timestamp, severity.value if severity is not None else 0, record.severity_text,
            record.body, record.attributes, readable.dropped_attributes, int(record.trace_flags or 0), record.trace_id, record.span_id, record.event_name,
        )

    def encode_fields(
        self, timestamp: int | None, observed: int | None, severity: int, severity_text: str | None, body: Any,
        attributes: Mapping[str, Any] | None, dropped: int, flags: int, trace_id: int | None, span_id: int | None, event_name: str | None = None,
    ) -> bytes:
        """One ``LogRecord`` message from its fields (also what otel-trading's own emitters call: no SDK record built)."""
        parts = []
        if timestamp:
            parts.append(b"\x09" + _pack_q(timestamp))
        if severity:
            parts.append(b"\x10" + varint(severity))
        if severity_text:
            parts.append(self._text(b"\x1a", severity_text))
        try:
            encoded_body = any_value(body)
        except Exception as error:  # noqa: BLE001 - keep the line: send its text instead of losing it
            _warn_once(("body", type(error).__name__), "otel-trading: log body not encodable (%s); sent as text", error)
            encoded_body = field(b"\x0a", repr(body).encode("utf-8", "replace"))
        parts.append(field(b"\x2a", encoded_body))
        if attributes:
            self._attrs.encode(attributes, parts)
        if dropped:
            parts.append(b"\x38" + varint(dropped))
        if flags:
            parts.append(b"\x45" + _pack_i(flags))
        if trace_id:
            parts.append(b"\x4a\x10" + trace_id.to_bytes(16, "big"))
        if span_id:
            parts.append(b"\x52\x08" + span_id.to_bytes(8, "big"))
        if observed:
            parts.append(b"\x59" + _pack_q(observed))
        if event_name:
            parts.append(self._text(b"\x62", event_name))
        return b"".join(parts)
