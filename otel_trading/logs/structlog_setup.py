"""structlog wiring: one processor for correlation, trading context, errors, redaction, files and OTLP.

``TradingProcessor`` subclasses the upstream ``StructlogProcessor`` and
``TradingStructlogInstrumentor`` subclasses ``StructlogInstrumentor``, reusing
its ``structlog.configure`` / ``configure_once`` / ``reset_defaults`` patching:
whether the app configured structlog before instrumentation, configures it
after, or never does, our processor sits right before the app's renderer (the
last processor) and the app's processors and renderer are kept.

When the app never configures structlog, otel-trading installs its own chain::

    merge_contextvars -> TradingProcessor(own chain) -> JSON (orjson) or console renderer

with a filtering bound logger (``log.audit()`` / ``log.business()`` included,
calls below the level are a bare ``return None``) and bytes output to stdout.
"""

from __future__ import annotations

import logging
from time import time_ns
from typing import Any

import structlog
from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.instrumentation.structlog import (
    StructlogInstrumentor,
    StructlogProcessor,
)
from opentelemetry.trace.propagation import _SPAN_KEY

from otel_trading.logs.audit import SEQ, SHA256, AuditTrail
from otel_trading.logs.correlation import (
    CORRELATION_BAGGAGE_KEY,
    _current_context,
    _span_entry,
    add_correlation,
)
from otel_trading.logs.correlation import _cache as _SPAN_CACHE
from otel_trading.logs.files import Channels
from otel_trading.logs.levels import NAME_TO_LEVEL, filtering_logger_class
from otel_trading.logs.loggers import clear_proxy_caches, structlog_get_logger
from otel_trading.logs.otlp import RESERVED, OtlpEmitter, _route_for
from otel_trading.logs.rendering import (
    JsonRenderer,
    NamedBytesLoggerFactory,
    NamedWriteLoggerFactory,
    _fallback,
    console_renderer,
    exception_fields,
    fields_from_text,
    iso_from_ns,
    resolve_format,
)
from otel_trading.redaction import Redactor, get_redactor
from otel_trading.report import report_once

_METHOD_TO_LEVEL = {"exception": "error", "warn": "warning", "msg": "info", "fatal": "critical"}
_STDLIB_LOGGER = logging.Logger
_IS_STDLIB: dict[type, bool] = {}


class TradingProcessor(StructlogProcessor):
    """Adds ``trace_id``/``span_id`` (+ trading fields, ``correlation_id``), error fields, redacts, writes
    channel files and exports over OTLP, in one pass.

    This class is what goes into an app's own chain (right before its renderer): level and timestamp
    stay the app's, errors become ``exc_type``/``exc_message`` plus structlog's usual ``exception``
    text. :class:`OwnChainProcessor` is the variant used by otel-trading's default chain.
    """

    own_chain = False

    def __init__(
        self,
        logger_provider: Any = None,
        *,
        service: str | None = None,
        redactor: Redactor | None = None,
        channels: Channels | None = None,
        audit: AuditTrail | None = None,
    ):
        super().__init__(logger_provider=logger_provider)
        self.service = service
        self.redactor = redactor or get_redactor()
        self.channels = channels
        self.audit = audit
        self.emitter = OtlpEmitter(self._logger_provider)

    def __call__(self, logger: Any, method_name: str, event_dict: dict) -> dict:
        """The processor in an app's own chain. One Python frame: its work is written out here, not in
        helpers, since every call costs a line more than its instructions say (see docs/performance.md)."""
        if type(event_dict) is not dict and not isinstance(event_dict, dict):
            return event_dict  # an app chain that renders before its last processor: nothing to add to
        ed = event_dict
        try:
            stack = None
            if "exc_info" in ed:
                stack = self._exception(ed)
            elif "exception" in ed:
                stack = self._app_exception(ed)
            redactor = self.redactor
            if redactor.enabled:
                redactor.redact_event(ed)
            ctx = _current_context()
            if ctx:  # an empty context (no span, no baggage) adds nothing
                add_correlation(ed, ctx)
            is_stdlib = _IS_STDLIB.get(type(logger))
            if is_stdlib is None:
                is_stdlib = _IS_STDLIB[type(logger)] = isinstance(logger, _STDLIB_LOGGER)
            if is_stdlib:
                # structlog.stdlib: the stdlib handlers export and file the record structlog hands to logging
                return ed
            if method_name == "audit" and self.audit is not None:
                self._audit(ed)
            channels = self.channels
            emitter = self.emitter
            multi = emitter._multi
            seen, route = _route_for  # emitter.active's cache read as one pair, without the property's call
            if channels is not None or (emitter._always if multi is None else multi._log_record_processors is not seen or route[0]):
                level = ed.get("level") or _METHOD_TO_LEVEL.get(method_name, method_name)
                name = ed.get("logger") or getattr(logger, "name", None)
                if channels is not None:
                    channels.write_event(ed, level, name)
                if emitter.active:
                    self._emit(ed, name, level, ctx, time_ns(), stack)
            return ed
        except Exception as exc:  # noqa: BLE001 - hostile event contents must never break the app's logging
            return self._failed(logger, method_name, event_dict, exc)

    def _failed(self, logger: Any, method_name: str, ed: dict, exc: Exception) -> dict:
        report_once(f"log processor failed ({type(exc).__name__}); the line is logged with placeholders for what could not be checked")
        return self._fail_closed(logger, method_name, ed)

    def _fail_closed(self, logger: Any, method_name: str, ed: dict) -> dict:
        """Still rendered, still redacted, still exported: what cannot be inspected becomes a placeholder."""
        if "exc_info" in ed:  # the renderer would format the raw traceback: replace it by checked text
            fields = exception_fields(ed.pop("exc_info"))
            if fields is not None:
                ed["exc_type"], ed["exc_message"], ed["stack" if self.own_chain else "exception"] = fields
        if self.redactor.enabled:
            self.redactor.redact_event_closed(ed)
        else:
            for key in list(ed):
                value = ed[key]
                if type(value) not in (str, int, float, bool, type(None)):
                    ed[key] = _fallback(value)
        level = ed.get("level") or _METHOD_TO_LEVEL.get(method_name, method_name)
        if self.own_chain:
            ed.setdefault("level", level)
            ed.setdefault("timestamp", iso_from_ns(time_ns()))
        try:
            if self.emitter.active:
                name = ed.get("logger") or getattr(logger, "name", None) or "root"
                attrs = {k: v for k, v in ed.items() if k not in RESERVED}
                exc = (ed.get("exc_type"), ed.get("exc_message"), ed.get("stack") or ed.get("exception")) if "exc_type" in ed else None
                self.emitter.emit(str(name), level, ed.get("event"), attrs, _current_context(), time_ns(), exc)
        except Exception:  # noqa: BLE001, S110 - the line is still rendered; the failure was reported above
            pass
        return ed

    def _audit(self, ed: dict) -> None:
        """Append to the audit trail; the record's other copies (console, OTLP) carry its place in the chain."""
        written = self.audit.append(ed)  # type: ignore[union-attr]
        if written is not None:
            ed[SEQ], ed[SHA256] = written

    def _emit(self, ed: dict, name: Any, level: Any, ctx: Any, ns: int, stack: str | None) -> None:
        attrs = {k: v for k, v in ed.items() if k not in RESERVED}
        exc = None
        if stack is not None:
            # the (redacted) text as rendered: our "stack", or structlog's "exception" in an app's chain
            text = ed.get("stack") if self.own_chain else ed.get("exception")
            if not isinstance(text, str):  # exc_info kept for the app's renderer (redaction off)
                text = stack or None
            exc = (ed.get("exc_type"), ed.get("exc_message"), text)
        self.emitter.emit(name or "root", level, ed.get("event"), attrs, ctx, ns, exc)

    def _exception(self, ed: dict) -> str | None:
        """Error fields from ``exc_info``; returns the formatted stack (None: no exception)."""
        fields = exception_fields(ed["exc_info"])
        if fields is None:
            if self.own_chain:
                ed.pop("exc_info", None)
            return None
        ed["exc_type"], ed["exc_message"], stack = fields
        if self.own_chain:
            del ed["exc_info"]
            ed["stack"] = stack
        elif self.redactor.enabled:
            # replace exc_info by its text so the app's renderer prints the redacted traceback
            del ed["exc_info"]
            ed["exception"] = stack
        return stack

    def _app_exception(self, ed: dict) -> str | None:
        text = ed["exception"]
        if isinstance(text, str):
            exc_type, exc_message = fields_from_text(text)
            ed.setdefault("exc_type", exc_type)
            ed.setdefault("exc_message", exc_message)
            return text
        if isinstance(text, list) and text and isinstance(text[-1], dict):  # dict_tracebacks
            ed.setdefault("exc_type", text[-1].get("exc_type"))
            ed.setdefault("exc_message", text[-1].get("exc_value"))
            return ""
        return None


class OwnChainProcessor(TradingProcessor):
    """The processor of otel-trading's default chain: also sets ``level``, ``timestamp`` (ISO 8601 UTC),
    ``logger`` and ``service``, and renders errors as ``exc_type``/``exc_message``/``stack``."""

    own_chain = True

    def __call__(self, logger: Any, method_name: str, event_dict: dict) -> dict:
        if type(event_dict) is not dict and not isinstance(event_dict, dict):
            return event_dict
        ed = event_dict
        try:
            ns = time_ns()
            stack = self._exception(ed) if "exc_info" in ed else None
            redactor = self.redactor
            if redactor.enabled:
                redactor.redact_event(ed)  # before our own fields: only the app's keys are walked
            level = _METHOD_TO_LEVEL.get(method_name, method_name)
            ed["level"] = level
            ed["timestamp"] = iso_from_ns(ns)
            name = ed.get("logger")
            if name is None:
                name = ed["logger"] = getattr(logger, "name", None) or "root"
            ed["service"] = self.service
            # add_correlation(ed, ctx) inlined: a call costs ~2% of a default-chain log line
            ctx = _current_context()
            span = ctx.get(_SPAN_KEY)
            if span is not None:
                entry = _SPAN_CACHE.get(id(span))
                if entry is None or entry[5] is not span or (entry[4] is not None and len(entry[4]) != entry[3]):
                    entry = _span_entry(span)
                if entry is not None:
                    ed["trace_id"] = entry[0]
                    ed["span_id"] = entry[1]
                    for field, value in entry[2]:
                        if field not in ed:
                            ed[field] = value
            bag = ctx.get(_BAGGAGE_KEY)
            if bag:
                cid = bag.get(CORRELATION_BAGGAGE_KEY)
                if cid is not None and "correlation_id" not in ed:
                    ed["correlation_id"] = cid
            if level == "audit" and self.audit is not None:
                self._audit(ed)
            if self.channels is not None:
                self.channels.write_event(ed, level, name)
            emitter = self.emitter
            multi = emitter._multi
            seen, route = _route_for  # as in TradingProcessor.__call__: no record is built when nothing would export it
            if (emitter._always if multi is None else multi._log_record_processors is not seen or route[0]) and emitter.active:
                self._emit(ed, name, level, ctx, ns, stack)
            return ed
        except Exception as exc:  # noqa: BLE001
            return self._failed(logger, method_name, event_dict, exc)


def default_config(processor: TradingProcessor, fmt: str = "auto", level: str | int = "info", stream: Any = None) -> dict:
    """The ``structlog.configure`` keywords of otel-trading's default chain."""
    fmt = resolve_format(fmt, stream)
    min_level = level if isinstance(level, int) else NAME_TO_LEVEL[level]
    if fmt == "console":
        renderer: Any = console_renderer(colors=True)
        factory: Any = NamedWriteLoggerFactory(stream)
    else:
        renderer = JsonRenderer()
        factory = NamedBytesLoggerFactory(stream)
    return {
        "processors": [structlog.contextvars.merge_contextvars, processor, renderer],
        "wrapper_class": filtering_logger_class(min_level),
        "logger_factory": factory,
        "context_class": dict,
        "cache_logger_on_first_use": True,
    }


class TradingStructlogInstrumentor(StructlogInstrumentor):
    """The upstream instrumentor with otel-trading's processor and default chain.

    ``instrument(logger_provider=..., app_processor=..., default_config=...)``.
    """

    _defaults_installed = False
    _app_processor: TradingProcessor | None = None

    def _instrument(self, **kwargs: Any) -> None:
        app_configured = structlog.is_configured()
        app_processor: TradingProcessor = kwargs["app_processor"]
        super()._instrument(logger_provider=kwargs.get("logger_provider"))
        original_configure = StructlogInstrumentor._original_configure
        original_reset = StructlogInstrumentor._original_reset_defaults
        # upstream inserted its own StructlogProcessor: swap in ours (also for later configure() calls)
        StructlogInstrumentor._processor = app_processor
        TradingStructlogInstrumentor._app_processor = app_processor
        if app_configured:
            procs = [app_processor if type(p) is StructlogProcessor else p for p in structlog.get_config()["processors"]]
            original_configure(processors=procs)
        else:
            original_reset()
            original_configure(**kwargs["default_config"])
            StructlogInstrumentor._is_configured_by_app = False
            TradingStructlogInstrumentor._defaults_installed = True

        upstream_reset = structlog.reset_defaults

        def _drop_defaults() -> None:
            # the app's first configure starts from structlog's defaults, not from ours
            if TradingStructlogInstrumentor._defaults_installed and not StructlogInstrumentor._is_configured_by_app:
                original_reset()
                TradingStructlogInstrumentor._defaults_installed = False

        def _forget_cached_methods() -> None:
            # a configure() without processors keeps structlog's default chain: put our processor in it too
            current = list(structlog.get_config()["processors"])
            processor = TradingStructlogInstrumentor._app_processor
            if processor is not None and not any(isinstance(p, StructlogProcessor) for p in current):
                current.insert(max(len(current) - 1, 0), processor)
                original_configure(processors=current)
            clear_proxy_caches()

        def around_configure(upstream: Any) -> Any:
            def configure(*args: Any, **kw: Any) -> None:
                _drop_defaults()
                try:
                    return upstream(*args, **kw)
                finally:
                    _forget_cached_methods()

            return configure

        def reset_defaults(*args: Any, **kw: Any) -> None:
            TradingStructlogInstrumentor._defaults_installed = False
            return upstream_reset(*args, **kw)

        structlog.configure = around_configure(structlog.configure)
        structlog.configure_once = around_configure(structlog.configure_once)
        structlog.reset_defaults = reset_defaults

        # structlog.get_logger(): the same lazy proxy, but a cached logger's methods are looked up
        # once (a filtered-out call through a module-level proxy stays well under 1 us)
        TradingStructlogInstrumentor._original_get_logger = (structlog.get_logger, structlog.getLogger)
        structlog.get_logger = structlog.getLogger = structlog_get_logger

    _original_get_logger: tuple | None = None

    def _uninstrument(self, **kwargs: Any) -> None:
        if TradingStructlogInstrumentor._original_get_logger is not None:
            structlog.get_logger, structlog.getLogger = TradingStructlogInstrumentor._original_get_logger
            TradingStructlogInstrumentor._original_get_logger = None
        if TradingStructlogInstrumentor._defaults_installed:
            StructlogInstrumentor._is_configured_by_app = False
        super()._uninstrument(**kwargs)
        TradingStructlogInstrumentor._defaults_installed = False
        TradingStructlogInstrumentor._app_processor = None
