"""Context across process boundaries: HTTP headers and message envelopes.

W3C ``traceparent``/``tracestate`` and ``baggage`` go through the globally
configured propagators (``OTEL_PROPAGATORS``, default ``tracecontext,baggage``),
so whatever the rest of the system uses works here too. Carriers:

* a dict of headers (HTTP, Redis stream fields; bytes keys and values are read),
* a Kafka-style list of ``(str, bytes)`` header tuples.

``producer_span`` / ``consumer_span`` follow the OpenTelemetry messaging
conventions (PRODUCER/CONSUMER SpanKind, ``messaging.*`` attributes, span name
``"{operation} {destination}"``). Event-driven pipelines carry two more
envelope headers: ``event_id`` (this event) and ``causation_id`` (the event that
caused it); a consumer's event becomes the causation of every event produced
while it is processed. The business correlation id travels in baggage as
``trading.correlation_id``.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import baggage, propagate
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import SpanKind

from otel_trading.trading import attributes as A
from otel_trading.trading.kinds import TradingSpanKind
from otel_trading.trading.metrics import bad_input
from otel_trading.trading.tracing import _attributes, _kind_info

EVENT_ID_HEADER = "event_id"
CAUSATION_ID_HEADER = "causation_id"
CORRELATION_BAGGAGE_KEY = A.CORRELATION_ID  # "trading.correlation_id"

_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("otel_trading_event_id", default=None)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


class DictGetter(Getter):
    """Header dicts: case-insensitive keys, str or bytes keys and values (Redis streams return bytes)."""

    def get(self, carrier: Mapping, key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            value = carrier.get(key.encode())
        if value is None:
            for k, v in carrier.items():
                if (_text(k) or "").lower() == key:
                    value = v
                    break
        if isinstance(value, (list, tuple)):
            values = [t for t in map(_text, value) if t is not None]
            return values or None
        text = _text(value)
        return [text] if text is not None else None

    def keys(self, carrier: Mapping) -> list[str]:
        return [t for t in map(_text, carrier) if t is not None]


class DictSetter(Setter):
    def set(self, carrier: dict, key: str, value: str) -> None:
        carrier[key] = value


class KafkaGetter(Getter):
    """Kafka headers: a list of ``(str, bytes)``; the last header of a name wins."""

    def get(self, carrier: list, key: str) -> list[str] | None:
        found = None
        for item in carrier:
            if isinstance(item, (tuple, list)) and len(item) == 2 and (_text(item[0]) or "").lower() == key:
                found = _text(item[1])
        return [found] if found is not None else None

    def keys(self, carrier: list) -> list[str]:
        return [t for t in (_text(item[0]) for item in carrier if isinstance(item, (tuple, list)) and item) if t is not None]


class KafkaSetter(Setter):
    """Replaces headers of the same name, so a re-sent message does not carry a stale traceparent."""

    def set(self, carrier: list, key: str, value: str) -> None:
        carrier[:] = [item for item in carrier if not (isinstance(item, (tuple, list)) and item and _text(item[0]) == key)]
        carrier.append((key, value.encode("utf-8")))


DICT_GETTER, DICT_SETTER = DictGetter(), DictSetter()
KAFKA_GETTER, KAFKA_SETTER = KafkaGetter(), KafkaSetter()


def _accessors(carrier: Any) -> tuple[Getter, Setter] | None:
    if isinstance(carrier, Mapping):
        return DICT_GETTER, DICT_SETTER
    if isinstance(carrier, list):
        return KAFKA_GETTER, KAFKA_SETTER
    bad_input(f"unsupported carrier type {type(carrier).__name__}: use a dict or a list of (str, bytes)", TypeError)
    return None


def inject(carrier: dict | list, context: Context | None = None) -> dict | list:
    """Write trace context and baggage into ``carrier`` (dict or Kafka header list); returns it."""
    accessors = _accessors(carrier)
    if accessors is not None:
        propagate.inject(carrier, context, setter=accessors[1])
    return carrier


def extract(carrier: Any, context: Context | None = None) -> Context:
    """The context in ``carrier``. Missing or garbage headers give a context without a parent: a fresh trace."""
    if carrier is None:
        return context if context is not None else Context()
    accessors = _accessors(carrier)
    if accessors is None:
        return context if context is not None else Context()
    try:
        return propagate.extract(carrier, context, getter=accessors[0])
    except Exception:  # noqa: BLE001 - a third-party propagator choking on garbage must not break the consumer
        bad_input("could not extract context from carrier headers")
        return context if context is not None else Context()


def header(carrier: Any, key: str) -> str | None:
    """One header from a dict or Kafka carrier, as text."""
    accessors = _accessors(carrier) if carrier is not None else None
    values = accessors[0].get(carrier, key) if accessors is not None else None
    return values[0] if values else None


# -- correlation and causation ------------------------------------------------------


def correlation_id() -> str | None:
    """The business correlation id in the current baggage."""
    value = baggage.get_baggage(CORRELATION_BAGGAGE_KEY)
    return value if isinstance(value, str) else None


@contextlib.contextmanager
def correlation(correlation_id: str | None = None) -> Iterator[str]:
    """Put a correlation id (new uuid4 hex by default) into baggage for the block; it travels with injected context."""
    cid = correlation_id or uuid.uuid4().hex
    token = context_api.attach(baggage.set_baggage(CORRELATION_BAGGAGE_KEY, str(cid)))
    try:
        yield cid
    finally:
        context_api.detach(token)


def current_event_id() -> str | None:
    """The event being processed (in a ``consumer_span``): events produced now name it as their cause."""
    return _event_id.get()


# -- messaging spans -----------------------------------------------------------------


def _messaging_attributes(
    system: str, destination: str, operation: str, kind: TradingSpanKind | str | None, kw: dict, event_id: str | None, causation_id: str | None
) -> dict:
    attrs: dict[str, Any] = {
        "messaging.system": system,
        "messaging.destination.name": destination,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
    }
    attrs.update(_attributes(_kind_info(kind), kw, None))
    cid = correlation_id()
    if cid is not None:
        attrs[A.CORRELATION_ID] = cid
    if event_id:
        attrs["messaging.message.id"] = event_id
        attrs[A.EVENT_ID] = event_id
    if causation_id:
        attrs[A.CAUSATION_ID] = causation_id
    return attrs


def _tracer() -> trace_api.Tracer:
    return trace_api.get_tracer("otel_trading.propagation")


@contextlib.contextmanager
def producer_span(destination: str, carrier: dict | list, *, system: str = "kafka", event_id: str | None = None, causation_id: str | None = None, trading_kind: TradingSpanKind | str | None = None, **kw: Any) -> Iterator[trace_api.Span]:
    """A PRODUCER span ``send <destination>`` whose context is injected into ``carrier``, with the envelope headers.

    ``event_id`` defaults to a new uuid4 hex; ``causation_id`` to the event being
    processed (``current_event_id()``), so pipelines chain themselves.
    """
    event_id = event_id or uuid.uuid4().hex
    causation_id = causation_id or _event_id.get()
    attrs = _messaging_attributes(system, destination, "send", trading_kind, kw, event_id, causation_id)
    with _tracer().start_as_current_span(f"send {destination}", kind=SpanKind.PRODUCER, attributes=attrs) as span:
        accessors = _accessors(carrier)
        if accessors is not None:
            propagate.inject(carrier, setter=accessors[1])
            accessors[1].set(carrier, EVENT_ID_HEADER, event_id)
            if causation_id:
                accessors[1].set(carrier, CAUSATION_ID_HEADER, causation_id)
        yield span


@contextlib.contextmanager
def consumer_span(destination: str, carrier: Any, *, system: str = "kafka", operation: str = "process", trading_kind: TradingSpanKind | str | None = None, **kw: Any) -> Iterator[trace_api.Span]:
    """A CONSUMER span ``<operation> <destination>`` continuing the trace in ``carrier``.

    The sender's context is the parent (one connected trace in Jaeger) and is
    also added as a link, as the messaging conventions ask; its baggage
    (correlation id) becomes current. ``operation`` is ``process`` or ``receive``.
    """
    if operation not in ("process", "receive"):
        bad_input(f"operation={operation!r}; accepted: process, receive")
        operation = "process"
    parent = extract(carrier)
    token = context_api.attach(parent)
    try:
        event_id = header(carrier, EVENT_ID_HEADER)
        attrs = _messaging_attributes(system, destination, operation, trading_kind, kw, event_id, header(carrier, CAUSATION_ID_HEADER))
        sender = trace_api.get_current_span(parent).get_span_context()
        links = [trace_api.Link(sender)] if sender.is_valid else None
        event_token = _event_id.set(event_id)
        try:
            with _tracer().start_as_current_span(f"{operation} {destination}", kind=SpanKind.CONSUMER, attributes=attrs, links=links) as span:
                yield span
        finally:
            _event_id.reset(event_token)
    finally:
        context_api.detach(token)
