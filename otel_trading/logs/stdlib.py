"""stdlib ``logging``: OTLP export with trace context, ids on records, the same JSON schema.

* ``TradingLoggingHandler`` builds on the upstream ``LoggingHandler``
  (opentelemetry-instrumentation-logging) with a cheaper emit: cached OTel
  loggers, nothing built when nothing is exported, extras and the message
  redacted, exception attributes from the redacted text.
* A log record factory (like the upstream ``LoggingInstrumentor``'s) sets
  ``record.trace_id``, ``record.span_id``, ``record.service`` and, when known,
  ``record.correlation_id`` and the trading fields, so ``%(trace_id)s`` works in
  any format string and our formatters render them.
* ``JsonFormatter`` / ``ConsoleFormatter`` render the documented schema.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.logging.handler import (
    _RESERVED_ATTRS,
    LoggingHandler,
)

from otel_trading import forksafe
from otel_trading.logs.correlation import (
    TRADING_FIELDS,
    _current_context,
    add_correlation,
    current_fields,
)
from otel_trading.logs.files import Channels
from otel_trading.logs.otlp import OtlpEmitter
from otel_trading.logs.rendering import (
    child_file,
    console_renderer,
    dumps,
    exception_fields,
    iso_from_ns,
)
from otel_trading.redaction import Redactor, _placeholder, get_redactor
from otel_trading.report import report_once

_TRADING_NAMES = tuple(field for _, field in TRADING_FIELDS)
# record attributes that are not exported as OTLP attributes / rendered as extra keys
SKIP_ATTRS = frozenset(_RESERVED_ATTRS) | frozenset(
    {"trace_id", "span_id", "service", "otelSpanID", "otelTraceID", "otelTraceSampled", "otelServiceName", "_logger", "_name", "_from_structlog"}
)
_CORRELATED = frozenset({"correlation_id", *_TRADING_NAMES})


def _level_name(record: logging.LogRecord) -> str:
    return record.levelname.lower()


# --- record factory ----------------------------------------------------------

_old_factory: Callable[..., logging.LogRecord] | None = None
_service = ""


def install_record_factory(service: str) -> None:
    """Set ``trace_id``/``span_id``/``service`` (+ correlation/trading fields when known) on every record."""
    global _old_factory, _service
    _service = service or ""
    if _old_factory is not None:
        return
    old = logging.getLogRecordFactory()
    _old_factory = old
    redactor = get_redactor()  # the one process-wide object: configure_redaction() changes its rules in place

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = old(*args, **kwargs)
        fields = record.__dict__
        if redactor.enabled:
            # redact_record()'s common case inlined (a message string, no exception, nothing to mask):
            # one Python call per line, since each call costs more than its instructions say
            msg, msg_args = fields["msg"], fields["args"]
            try:
                clean = type(msg) is str and not fields["exc_info"] and redactor.message_clean(msg % msg_args if msg_args else msg, msg_args)
            except Exception:  # noqa: BLE001 - an argument that cannot be rendered: redact_record() handles it
                clean = False
            if not clean:
                redact_record(record, redactor)
        fields["trace_id"] = fields["span_id"] = ""
        fields["service"] = _service
        ctx = _current_context()
        if ctx:  # an empty context (no span, no baggage) adds nothing
            add_correlation(fields, ctx)  # written straight into the record: no dict per line
        return record

    factory._otel_trading = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    _install_make_record()


# the fields the factory adds: an app's ``extra={...}`` naming one of them sets it (the stdlib raises
# KeyError for an ``extra`` key already on the record, which would break the app's logging call)
_FACTORY_FIELDS = frozenset({"trace_id", "span_id", "service", *_CORRELATED})
_original_make_record: Callable[..., logging.LogRecord] | None = None


def _make_record(self: logging.Logger, name: str, level: int, fn: str, lno: int, msg: object, args: Any, exc_info: Any, func: str | None = None, extra: Any = None, sinfo: str | None = None) -> logging.LogRecord:
    """``Logger.makeRecord``'s own code, except that an ``extra`` key naming a factory field sets it.

    Written out rather than wrapped: a wrapper adds a call to every line, logged or exported or not."""
    record = logging._logRecordFactory(name, level, fn, lno, msg, args, exc_info, func, sinfo)  # type: ignore[attr-defined]
    if extra is not None:
        fields = record.__dict__
        for key in extra:
            if key in ("message", "asctime") or (key in fields and key not in _FACTORY_FIELDS):
                raise KeyError(f"Attempt to overwrite {key!r} in LogRecord")
            fields[key] = extra[key]
    return record


def _install_make_record() -> None:
    global _original_make_record
    if _original_make_record is not None:
        return
    original = _original_make_record = logging.Logger.makeRecord
    if getattr(original, "__module__", None) == "logging":  # the stdlib's own: replaced by its code above
        _make_record._otel_trading = True  # type: ignore[attr-defined]
        logging.Logger.makeRecord = _make_record  # type: ignore[method-assign]
        return

    def makeRecord(self: logging.Logger, name: str, level: int, fn: str, lno: int, msg: object, args: Any, exc_info: Any, func: str | None = None, extra: Any = None, sinfo: str | None = None) -> logging.LogRecord:  # noqa: N802 - logging's name
        """Another library's ``makeRecord`` came first: kept, with the factory fields taken out of ``extra``."""
        if not extra or _FACTORY_FIELDS.isdisjoint(extra):
            return original(self, name, level, fn, lno, msg, args, exc_info, func, extra, sinfo)
        record = original(self, name, level, fn, lno, msg, args, exc_info, func, {k: extra[k] for k in extra if k not in _FACTORY_FIELDS}, sinfo)
        record.__dict__.update((k, extra[k]) for k in extra if k in _FACTORY_FIELDS)  # the app's own value wins
        return record

    makeRecord._otel_trading = True  # type: ignore[attr-defined]
    logging.Logger.makeRecord = makeRecord  # type: ignore[method-assign]


def message(record: logging.LogRecord) -> str:
    """``record.getMessage()``, or the template and a note when an argument cannot be rendered."""
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - e.g. an argument whose __str__ raises
        msg = record.msg
        return f"{msg if isinstance(msg, str) else _placeholder(msg)} (arguments could not be rendered)"


def redact_record(record: logging.LogRecord, redactor: Redactor | None = None) -> None:
    """Mask the message and the traceback text before any handler formats the record, so an app's
    own ``basicConfig(format=...)`` or ``Formatter`` prints the masked text too. The template and
    arguments are kept unless something had to be masked (or could not be rendered)."""
    redactor = redactor or get_redactor()
    if not redactor.enabled:
        return
    msg, args = record.msg, record.args
    try:
        if type(msg) is str:
            text = msg % args if args else msg  # record.getMessage() without its call and str()
        elif isinstance(msg, dict) and "event" in msg:
            return  # from structlog.stdlib: already through otel-trading's processor
        else:
            text = record.getMessage()
    except Exception:  # noqa: BLE001
        text = None
    if text is None:
        record.msg, record.args = redactor.redact_text(message(record)), ()
        return
    new = redactor.redact_text(text)
    if new is text and args and not redactor.message_clean(text, args):
        # arguments judged as values too: a ("password", x) pair or {"token": x} renders without a tell-tale "="
        args = redactor.redact_value(args)
        if args is not record.args:
            try:
                new = redactor.redact_text(str(record.msg) % args)
            except Exception:  # noqa: BLE001
                new = redactor.redact_text(f"{record.msg} (arguments masked)")
    if new is not text:
        record.msg, record.args = new, ()
    if record.exc_info and not record.exc_text:
        fields = exception_fields(record.exc_info)
        if fields is not None:
            record.exc_text = redactor.redact_text(fields[2])


def _report_handler_error(handler: logging.Handler, record: logging.LogRecord) -> None:
    """``Handler.handleError`` replacement: one line naming the handler, never the record's text."""
    error = sys.exc_info()[1]
    report_once(f"log handler {type(handler).__name__} could not write a record of logger {record.name!r} ({type(error).__name__})", key=(type(handler), record.name, type(error)))


class ConsoleHandler(logging.StreamHandler):
    """The stdout handler otel-trading adds when the app has none; errors are one stderr line; in a
    forked child it writes through a fresh file object (see ``rendering.child_file``)."""

    def __init__(self, stream: Any = None):
        super().__init__(stream)
        forksafe.in_child(self._after_fork)

    def _after_fork(self) -> None:
        self.stream = child_file(self.stream)  # not setStream(): it would flush the old stream first

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        _report_handler_error(self, record)


def uninstall_record_factory() -> None:
    global _old_factory, _original_make_record
    if _old_factory is not None:
        current = logging.getLogRecordFactory()
        if getattr(current, "_otel_trading", False):
            logging.setLogRecordFactory(_old_factory)
        _old_factory = None
    if _original_make_record is not None:
        if getattr(logging.Logger.makeRecord, "_otel_trading", False):
            logging.Logger.makeRecord = _original_make_record  # type: ignore[method-assign]
        _original_make_record = None


class TraceContextFilter(logging.Filter):
    """Handler/logger filter that adds the same fields as the record factory (for hand-built setups)."""

    def __init__(self, service: str = ""):
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "trace_id", ""):
            fields = current_fields()
            record.trace_id = fields.pop("trace_id", "")
            record.span_id = fields.pop("span_id", "")
            for key, value in fields.items():
                if key not in record.__dict__:
                    setattr(record, key, value)
        if not getattr(record, "service", ""):
            record.service = self.service or _service
        return True


# --- schema ------------------------------------------------------------------


def record_to_event(record: logging.LogRecord, service: str | None = None, redactor: Redactor | None = None) -> dict:
    """The documented schema for a stdlib record (redacted)."""
    msg = record.msg
    if isinstance(msg, dict) and "event" in msg:  # structlog.stdlib ProcessorFormatter.wrap_for_formatter
        ed = {k: v for k, v in msg.items() if k not in ("_record", "_from_structlog")}
        ed.setdefault("logger", record.name)
    else:
        ed = {"event": message(record), "logger": record.name}
    ed["level"] = _level_name(record)
    ed["timestamp"] = iso_from_ns(int(record.created * 1e9))
    ed["service"] = getattr(record, "service", None) or service or _service
    trace_id = getattr(record, "trace_id", None)
    if trace_id is None:
        fields = current_fields()
        trace_id = fields.pop("trace_id", "")
        for key, value in fields.items():
            if key != "span_id":
                ed.setdefault(key, value)
        span_id = fields.get("span_id", "")
    else:
        span_id = getattr(record, "span_id", "")
    if trace_id:
        ed["trace_id"] = trace_id
        ed["span_id"] = span_id
    for key, value in record.__dict__.items():
        if key not in SKIP_ATTRS and key not in ed:
            ed[key] = value
    if record.exc_info:
        exc_fields = exception_fields(record.exc_info)
        if exc_fields is not None:
            ed["exc_type"], ed["exc_message"], ed["stack"] = exc_fields
    elif record.exc_text:
        ed["stack"] = record.exc_text
    if record.stack_info and "stack" not in ed:
        ed["stack"] = record.stack_info
    redactor = redactor or get_redactor()
    if redactor.enabled:
        redactor.redact_event(ed)
    return ed


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the documented schema (same as the structlog default)."""

    def __init__(self, service: str | None = None, redactor: Redactor | None = None):
        super().__init__()
        self.service = service
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        try:
            return dumps(record_to_event(record, self.service, self.redactor)).decode()
        except Exception:  # noqa: BLE001 - fail closed: a line without the parts that could not be checked
            return dumps(_closed_event(record)).decode()


class ConsoleFormatter(logging.Formatter):
    """The readable coloured format (structlog's ConsoleRenderer) for the same fields."""

    def __init__(self, service: str | None = None, redactor: Redactor | None = None, colors: bool = True):
        super().__init__()
        self.service = service
        self.redactor = redactor
        self._renderer = console_renderer(colors=colors)

    def format(self, record: logging.LogRecord) -> str:
        try:
            ed = record_to_event(record, self.service, self.redactor)
            return self._renderer(None, ed["level"], ed)
        except Exception:  # noqa: BLE001
            ed = _closed_event(record)
            return self._renderer(None, ed["level"], ed)


def _closed_event(record: logging.LogRecord) -> dict:
    """The fail-closed line of a record: its logger and level, the masked message, nothing else."""
    return {
        "event": get_redactor().redact_text(message(record)) if get_redactor().enabled else message(record),
        "logger": str(record.name),
        "level": _level_name(record),
        "timestamp": iso_from_ns(int(record.created * 1e9)),
        "render_error": "fields that could not be rendered were left out",
    }


# --- handlers ----------------------------------------------------------------


class TradingLoggingHandler(LoggingHandler):
    """OTLP export of stdlib records with the trace context of the span they were logged in.

    Attributes: the record's ``extra`` keys (redacted) plus ``exception.*`` for errors;
    body: the formatted message (redacted); severity: ``otel_trading.logs.levels``.
    """

    def __init__(self, level: int = logging.NOTSET, logger_provider: Any = None, redactor: Redactor | None = None):
        super().__init__(level=level, logger_provider=logger_provider)
        self.emitter = OtlpEmitter(self._logger_provider)
        self.redactor = redactor or get_redactor()

    def handle(self, record: logging.LogRecord) -> bool:
        """``Handler.handle`` without its filters and lock when nothing would be exported."""
        if not self.emitter.active:
            return False
        return super().handle(record)

    def emit(self, record: logging.LogRecord) -> None:
        emitter = self.emitter
        if not emitter.active:
            return
        if record.name.startswith("opentelemetry"):
            # the SDK's own messages (e.g. a failed export) are not fed back into the export pipeline
            return
        if self._is_emitting.get():
            return
        token = self._is_emitting.set(True)
        try:
            ctx = _current_context()
            msg = record.msg
            if isinstance(msg, dict) and "event" in msg:  # from structlog.stdlib (ProcessorFormatter)
                body = msg.get("event")
                attrs = {k: v for k, v in msg.items() if k not in SKIP_ATTRS and k not in ("event", "level", "timestamp", "logger", "exc_info", "exception")}
            else:
                body = message(record)
                attrs = {}
            for key, value in record.__dict__.items():
                if key not in SKIP_ATTRS and (key not in _CORRELATED or value is not None):
                    attrs[key] = value
            exc: tuple[str, ...] | None = None
            if record.exc_info:
                exc = exception_fields(record.exc_info)
            redactor = self.redactor
            if redactor.enabled:
                body = redactor.redact_value(body)
                redactor.redact_event(attrs)
                if exc is not None:
                    exc = tuple(redactor.redact_text(x) for x in exc)
            emitter.emit(record.name, _level_name(record), body, attrs, ctx, int(record.created * 1e9), exc)
        except Exception:  # never raise into the app
            self.handleError(record)
        finally:
            self._is_emitting.reset(token)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802
        _report_handler_error(self, record)


def attach_when_exporting(handler: TradingLoggingHandler, logger: logging.Logger) -> None:
    """Add ``handler`` to ``logger`` now if it would export anything, else as soon as a log record
    processor that would is added to its provider.

    A handler on the root logger is called for every line; with nothing to export (``OTEL_LOGS_EXPORTER=none``:
    only the redacting processor) that call was all it did. Detached afterwards only by ``logs.uninstall()``."""
    emitter = handler.emitter
    if emitter.active:
        logger.addHandler(handler)
        return
    multi = emitter._multi
    if multi is None:  # a no-op provider: nothing can ever be exported
        return
    add = multi.add_log_record_processor

    def add_log_record_processor(processor: Any) -> None:
        add(processor)
        if emitter.active and _managed["otlp"] is handler:  # still installed
            logger.addHandler(handler)  # no-op when already there

    multi.add_log_record_processor = add_log_record_processor


class ChannelHandler(logging.Handler):
    """Writes stdlib records to the per-channel files (same JSON schema)."""

    def __init__(self, channels: Channels, service: str | None = None):
        super().__init__()
        self.channels = channels
        self.service = service

    def emit(self, record: logging.LogRecord) -> None:
        try:
            channel = getattr(record, "channel", None)
            level = _level_name(record)
            writers = self.channels.route(level, record.levelno, record.name, channel)
            if writers:
                line = dumps(record_to_event(record, self.service)) + b"\n"
                for writer in writers:
                    writer.write(line)
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802
        _report_handler_error(self, record)


# --- logging.basicConfig / dictConfig / fileConfig -------------------------

_originals: dict[str, Callable] = {}
_managed: dict[str, logging.Handler | None] = {"audit": None, "otlp": None, "console": None, "files": None}


def _wrap(fn: Callable) -> Callable:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        root = logging.getLogger()
        kept = [h for h in (_managed["audit"], _managed["otlp"], _managed["files"]) if h is not None and h in root.handlers]
        console = _managed["console"]
        for handler in kept + ([console] if console is not None and console in root.handlers else []):
            root.removeHandler(handler)
        try:
            return fn(*args, **kwargs)
        finally:
            # the app configured its own console output: ours is not put back
            _managed["console"] = None
            for handler in kept:
                if handler in root.handlers:
                    continue
                if handler is _managed["audit"]:
                    root.handlers.insert(0, handler)  # first, as installed
                else:
                    root.addHandler(handler)

    wrapped.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapped


def patch_config_functions() -> None:
    if _originals:
        return
    _originals["basicConfig"] = logging.basicConfig
    _originals["dictConfig"] = logging.config.dictConfig
    _originals["fileConfig"] = logging.config.fileConfig
    logging.basicConfig = _wrap(logging.basicConfig)
    logging.config.dictConfig = _wrap(logging.config.dictConfig)
    logging.config.fileConfig = _wrap(logging.config.fileConfig)


def unpatch_config_functions() -> None:
    if _originals:
        logging.basicConfig = _originals.pop("basicConfig")
        logging.config.dictConfig = _originals.pop("dictConfig")
        logging.config.fileConfig = _originals.pop("fileConfig")
