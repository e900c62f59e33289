"""OTLP export of log events: a cheaper emit path than the upstream structlog processor's.

Compared with ``opentelemetry-instrumentation-structlog``'s ``StructlogProcessor``
(which ``structlog_setup.TradingProcessor`` subclasses, so the upstream
instrumentor's configure patching recognises it):

* the OTel ``Logger`` is cached per logger name (upstream calls
  ``get_logger()`` for every event);
* nothing is built when the provider has no log record processors (the
  ``none`` exporter) or is a no-op;
* the timestamp is taken once (no parsing of the rendered timestamp), the
  current context is passed in instead of looked up again;
* exception attributes come from the already formatted *and redacted* fields,
  so the exported copy carries the same masking as the rendered line.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry._logs import (
    LogRecord,
    NoOpLogger,
    NoOpLoggerProvider,
    get_logger_provider,
)

from otel_trading import forksafe
from otel_trading.logs.levels import severity
from otel_trading.redaction import already_redacted

try:  # the SDK classes the direct emit path builds; checked below, else the public path is used
    from opentelemetry.sdk._logs._internal import Logger as _SdkLogger
    from opentelemetry.sdk._logs._internal import (
        ReadWriteLogRecord as _ReadWriteLogRecord,
    )
    from opentelemetry.trace import INVALID_SPAN_CONTEXT as _INVALID
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover
    _SdkLogger = None  # type: ignore[misc, assignment]  # the SDK is optional for these helpers

_RECORD_FIELDS = (
    "timestamp", "observed_timestamp", "context", "trace_id", "span_id", "trace_flags",
    "severity_text", "severity_number", "body", "attributes", "event_name", "exception",
)


def _direct_path_ok() -> bool:
    """True when the SDK's records look exactly as the direct path builds them (same pinned release)."""
    if _SdkLogger is None:
        return False
    try:
        import dataclasses

        probe = LogRecord(timestamp=1, body="x")
        fields = tuple(f.name for f in dataclasses.fields(_ReadWriteLogRecord))
        return set(vars(probe)) == set(_RECORD_FIELDS) and fields == ("log_record", "resource", "instrumentation_scope", "limits")
    except Exception:
        return False


DIRECT = _direct_path_ok()

# event keys that are not exported as attributes: the record fields carry them
RESERVED = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "exc_info",
        "exception",
        "_record",
        "_logger",
        "_name",
        "_from_structlog",
        "trace_id",
        "span_id",
        "service",
        "logger",
        "exc_type",
        "exc_message",
        "stack",
    }
)

SCOPE_FALLBACK = "otel_trading.logs"

_PLAIN = frozenset({str, float, bool, bytes, type(None)})
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def clean_value(value: Any, depth: int = 0) -> Any:
    """A valid OTel AnyValue for ``value`` (no SDK warnings, no encoder failures): ints beyond
    int64 and unknown types become strings, sets/tuples lists, mapping keys strings; nesting
    (and so any cycle) is cut at 32 levels. Never raises."""
    t = type(value)
    if t in _PLAIN:
        return value
    if t is int:
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if depth >= 32:
        return "<too deep>"
    try:
        if isinstance(value, bool):
            return value
        if isinstance(value, (list, tuple, set, frozenset)):
            return [clean_value(v, depth + 1) for v in value]
        if isinstance(value, dict):
            return {_key(k): clean_value(v, depth + 1) for k, v in value.items()}
        if isinstance(value, int):
            return int(value) if _INT_MIN <= value <= _INT_MAX else str(value)
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, float):
            return float(value)
        return repr(value)
    except Exception:  # noqa: BLE001 - what cannot be rendered is named, not exported raw
        return f"<unrenderable {t.__name__}>"


def _key(key: Any) -> str:
    return key if type(key) is str else str(clean_value(key, 31))


def clean_attributes(attributes: dict) -> dict:
    for key, value in attributes.items():
        t = type(value)
        if t not in _PLAIN and (t is not int or not _INT_MIN <= value <= _INT_MAX):
            attributes[key] = clean_value(value)
    return attributes


_route_for: list = [None, (False, None)]  # (the processors tuple last seen, its route)


def _route(processors: tuple) -> tuple[bool, Any]:
    """For a provider's processors: (would any act on otel-trading's own already-redacted records,
    the one processor's ``emit_fields`` when it is the only one that would act; else None).

    The redacting processor passes those records untouched (``skips_redacted``); ``emit_fields`` is
    offered by the export helper's processor and by the batch processor that encodes as records
    arrive. Cached by the tuple's identity: the SDK replaces the tuple when a processor is added.
    """
    seen, route = _route_for
    if seen is processors:
        return route
    acting = [p for p in processors if not getattr(p, "skips_redacted", False)]
    fields = getattr(acting[0], "emit_fields", None) if len(acting) == 1 else None
    route = (bool(acting), fields)
    _route_for[:] = [processors, route]
    return route


class OtlpEmitter:
    """Emits log records to one LoggerProvider with per-name cached OTel loggers."""

    def __init__(self, logger_provider: Any = None):
        self.provider = logger_provider if logger_provider is not None else get_logger_provider()
        self._loggers: dict[str, Any] = {}
        self._lock = threading.Lock()
        forksafe.owned(self, "_lock")
        multi = getattr(self.provider, "_multi_log_record_processor", None)
        self._noop = isinstance(self.provider, NoOpLoggerProvider)
        if multi is not None and not hasattr(multi, "_log_record_processors"):
            multi = None
        self._multi = multi
        # not an SDK provider we can look into: always emit (unless no-op)
        self._always = multi is None and not self._noop

    @property
    def active(self) -> bool:
        """False when nothing would be exported: a no-op provider, or an SDK provider whose processors
        would all pass otel-trading's own (already redacted) records untouched, such as the default
        redacting processor when ``OTEL_LOGS_EXPORTER=none``."""
        multi = self._multi
        if multi is None:
            return self._always
        processors = multi._log_record_processors
        seen, route = _route_for  # _route's cache, read here: this runs for every line, exported or not
        return (route if seen is processors else _route(processors))[0]

    def logger(self, name: str) -> Any:
        logger = self._loggers.get(name)
        if logger is None:
            with self._lock:
                logger = self._loggers.get(name)
                if logger is None:
                    logger = self.provider.get_logger(name or SCOPE_FALLBACK)
                    if len(self._loggers) < 1000:
                        self._loggers[name] = logger
        return logger

    def emit(
        self,
        name: str,
        level: Any,
        body: Any,
        attributes: dict,
        context: Any,
        timestamp_ns: int,
        exc: tuple | None = None,
    ) -> None:
        logger = self.logger(name)
        if isinstance(logger, NoOpLogger):
            return
        number, text = severity(level)
        clean_attributes(attributes)
        if type(body) is not str:
            body = clean_value(body)
        if exc is not None:
            exc_type, exc_message, stack = exc
            attributes["exception.type"] = exc_type
            if exc_message:
                attributes["exception.message"] = exc_message
            if stack:
                attributes["exception.stacktrace"] = stack
        if DIRECT and type(logger) is _SdkLogger:
            limits = logger._log_record_limits
            max_attrs = limits.max_log_record_attributes
            if limits.max_log_record_attribute_length is None and (max_attrs is None or len(attributes) <= max_attrs):
                # Logger.emit() without its per-record BoundedAttributes copy (attributes are already
                # clean) and without a second context lookup; same record, same processors, same metrics.
                if not logger._logger_config.is_enabled:
                    return
                span = context.get(_SPAN_KEY) if context else None
                sc = span.get_span_context() if span is not None else _INVALID
                emit_fields = _route(logger._multi_log_record_processor._log_record_processors)[1]
                if emit_fields is not None:  # the export helper's or the encoding batch processor: no SDK record needed
                    logger._logger_metrics.emit_log()
                    emit_fields(logger, timestamp_ns, sc.trace_id, sc.span_id, sc.trace_flags, text, number, body, attributes)
                    return
                record = LogRecord.__new__(LogRecord)
                record.__dict__.update(
                    timestamp=timestamp_ns,
                    observed_timestamp=timestamp_ns,
                    context=context,
                    trace_id=sc.trace_id,
                    span_id=sc.span_id,
                    trace_flags=sc.trace_flags,
                    severity_text=text,
                    severity_number=number,
                    body=body,
                    attributes=attributes,
                    event_name=None,
                    exception=None,
                )
                writable = _ReadWriteLogRecord.__new__(_ReadWriteLogRecord)
                writable.__dict__.update(
                    log_record=record, resource=logger._resource, instrumentation_scope=logger._instrumentation_scope, limits=limits
                )
                logger._logger_metrics.emit_log()
                with already_redacted():
                    logger._multi_log_record_processor.on_emit(writable)
                return
        with already_redacted():
            logger.emit(
                LogRecord(
                    timestamp=timestamp_ns,
                    observed_timestamp=timestamp_ns,
                    context=context,
                    severity_text=text,
                    severity_number=number,
                    body=body,
                    attributes=attributes,
                )
            )
