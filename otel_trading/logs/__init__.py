"""otel-trading logging: structlog and stdlib logs correlated with traces, exported over OTLP.

``install(settings, logger_provider)`` (called by the configurator) wires everything;
apps use ``get_logger()`` and, for stdlib, ``logging.getLogger(...).log(AUDIT, ...)``.
"""

from __future__ import annotations

import logging
import os
import sys
import weakref
from typing import Any

import structlog

from otel_trading.logs.audit import (
    AuditHandler,
    AuditTrail,
    keep_audit_records,
    release,
    set_level_keeping_audit,
)
from otel_trading.logs.contextflow import ContextThread, start_thread, submit, wrap
from otel_trading.logs.correlation import CORRELATION_BAGGAGE_KEY, current_fields
from otel_trading.logs.files import Channels
from otel_trading.logs.levels import (
    AUDIT,
    BUSINESS,
    NAME_TO_LEVEL,
    proxy_custom_level,
    register_stdlib_levels,
)
from otel_trading.logs.stdlib import (
    ChannelHandler,
    ConsoleFormatter,
    ConsoleHandler,
    JsonFormatter,
    TraceContextFilter,
    TradingLoggingHandler,
    _managed,
    install_record_factory,
    patch_config_functions,
    uninstall_record_factory,
    unpatch_config_functions,
)
from otel_trading.redaction import (
    RedactingLogRecordProcessor,
    RedactingSpanProcessor,
    Redactor,
    configure_redaction,
    configure_redaction_from,
    get_redactor,
)
from otel_trading.report import report

__all__ = [
    "AUDIT",
    "BUSINESS",
    "CORRELATION_BAGGAGE_KEY",
    "ConsoleFormatter",
    "ContextThread",
    "JsonFormatter",
    "RedactingLogRecordProcessor",
    "RedactingSpanProcessor",
    "Redactor",
    "TraceContextFilter",
    "TradingLoggingHandler",
    "configure_redaction",
    "current_fields",
    "get_logger",
    "get_redactor",
    "install",
    "start_thread",
    "submit",
    "uninstall",
    "wrap",
]

register_stdlib_levels()


class _State:
    def __init__(self) -> None:
        self.settings: Any = None
        self.provider: Any = None
        self.instrumentor: Any = None
        self.handlers: list[logging.Handler] = []
        self.channels: Any = None
        self.audit: AuditTrail | None = None
        self.root_level: int | None = None


_state: _State | None = None


def _service_name(settings: Any, logger_provider: Any) -> str:
    """``service.name`` as exported: the logger provider's resource, else the setting."""
    resource = getattr(logger_provider, "resource", None)
    value = resource.attributes.get("service.name") if resource is not None else None
    if value:
        return str(value)
    return getattr(settings, "service_name", None) or "unknown_service"


def install(settings: Any, logger_provider: Any, *, stream: Any = None, stdlib_output: bool | None = None) -> None:
    """Wire structlog and stdlib logging to ``logger_provider``. Idempotent.

    * structlog: if the app has not configured it, otel-trading's default chain
      (JSON lines, or console on a TTY, at ``OTEL_TRADING_LOG_LEVEL``); if it has, or
      does later, our processor goes right before the app's renderer.
    * stdlib: an OTLP handler on the root logger, trace ids on every record,
      and, when the root logger has no handlers yet, a stdout handler with the same
      format (removed again if the app calls ``logging.basicConfig``/``dictConfig``/``fileConfig``).
    * redaction rules, per-channel files.
    * the audit trail: ``audit`` records pass every level setting and go to the audit file too.

    ``stream`` (default ``sys.stdout``) receives the rendered lines; ``stdlib_output``
    forces (True) or prevents (False) the stdlib stdout handler (default: only when
    the root logger has no handlers).
    """
    global _state
    if _state is not None:
        if _state.settings is settings and _state.provider is logger_provider:
            return
        uninstall()
    from otel_trading.logs.structlog_setup import (
        OwnChainProcessor,
        TradingProcessor,
        TradingStructlogInstrumentor,
        default_config,
        resolve_format,
    )

    state = _State()
    state.settings, state.provider = settings, logger_provider
    register_stdlib_levels()
    service = _service_name(settings, logger_provider)

    redactor = configure_redaction_from(settings)

    if settings.log_files:
        state.channels = Channels(settings.log_dir, settings.log_files, settings.log_file_max_bytes, settings.log_file_backups)
    if settings.audit_file:
        state.audit = AuditTrail(audit_dir(settings), settings.audit_fsync, settings.log_file_max_bytes, settings.audit_fsync_interval)
    else:
        report("OTEL_TRADING_AUDIT_FILE=false: audit records are exported and logged, but not written to an audit trail file")
    level = NAME_TO_LEVEL[settings.log_level]
    fmt = resolve_format(settings.log_format, stream)

    # structlog
    common = {"service": service, "redactor": redactor, "channels": state.channels, "audit": state.audit}
    app_processor = TradingProcessor(logger_provider, **common)
    own_processor = OwnChainProcessor(logger_provider, **common)
    instrumentor = TradingStructlogInstrumentor()
    instrumentor.instrument(
        logger_provider=logger_provider,
        app_processor=app_processor,
        default_config=default_config(own_processor, fmt, level, stream),
        skip_dep_check=True,
    )
    state.instrumentor = instrumentor
    _clear_proxy_caches()

    # stdlib
    install_record_factory(service)
    keep_audit_records()
    root = logging.getLogger()
    if state.audit is not None:
        audit_handler = AuditHandler(state.audit, service)
        root.handlers.insert(0, audit_handler)  # first: the other handlers' copies carry audit.seq
        state.handlers.append(audit_handler)
        _managed["audit"] = audit_handler
    otlp_handler = TradingLoggingHandler(logger_provider=logger_provider, redactor=redactor)
    set_level_keeping_audit(otlp_handler, level)
    root.addHandler(otlp_handler)
    state.handlers.append(otlp_handler)
    _managed["otlp"] = otlp_handler
    if stdlib_output is None:
        stdlib_output = all(h in state.handlers for h in root.handlers)
    if stdlib_output:
        console = ConsoleHandler(stream if stream is not None else sys.stdout)
        console.setFormatter(ConsoleFormatter(service, redactor) if fmt == "console" else JsonFormatter(service, redactor))
        set_level_keeping_audit(console, level)
        root.addHandler(console)
        state.handlers.append(console)
        _managed["console"] = console
    if state.channels is not None:
        channel_handler = ChannelHandler(state.channels, service)
        root.addHandler(channel_handler)
        state.handlers.append(channel_handler)
        _managed["files"] = channel_handler
    if root.level > level:
        state.root_level = root.level
        root.setLevel(level)
    patch_config_functions()
    _state = state


def audit_dir(settings: Any) -> str:
    """``OTEL_TRADING_AUDIT_DIR``, by default ``<OTEL_TRADING_LOG_DIR>/audit``."""
    return settings.audit_dir or os.path.join(settings.log_dir, "audit")


def uninstall() -> None:
    """Undo ``install()`` (tests, re-configuration)."""
    global _state
    state = _state
    if state is None:
        return
    if state.instrumentor is not None and state.instrumentor.is_instrumented_by_opentelemetry:
        state.instrumentor.uninstrument()
    _clear_proxy_caches()
    unpatch_config_functions()
    uninstall_record_factory()
    root = logging.getLogger()
    for handler in state.handlers:
        root.removeHandler(handler)
    for key in _managed:
        _managed[key] = None
    if state.root_level is not None:
        root.setLevel(state.root_level)
    if state.channels is not None:
        state.channels.close()
    if state.audit is not None:
        state.audit.close()
    release()
    configure_redaction()
    _state = None


# --- get_logger ----------------------------------------------------------------

_proxies: weakref.WeakSet[_LoggerProxy] = weakref.WeakSet()
_LOG_METHODS = frozenset(
    {"debug", "info", "business", "audit", "warning", "warn", "error", "exception", "critical", "fatal", "msg", "log"}
)
_augmented: dict[type, type] = {}


class _LoggerProxy(structlog._config.BoundLoggerLazyProxy):
    """structlog's lazy proxy, plus: once structlog caches the logger, log methods are looked up once
    (a filtered-out call is then a plain function call); reset on every ``structlog.configure``."""

    def __getattr__(self, name: str) -> Any:
        if name == "__isabstractmethod__":
            raise AttributeError
        bound = self.bind()
        value = getattr(bound, name)
        if name in _LOG_METHODS and "bind" in self.__dict__:
            self.__dict__[name] = value
        return value


def _clear_proxy_caches() -> None:
    for proxy in list(_proxies):
        for name in _LOG_METHODS | {"bind"}:
            proxy.__dict__.pop(name, None)


def _with_trading_levels(cls: type) -> type:
    """A subclass of an app's wrapper class with ``business``/``audit`` methods; ``audit`` (also as
    ``log(AUDIT, ...)``) passes the class's level filter."""
    found = _augmented.get(cls)
    if found is not None:
        return found

    def make(level: int, name: str):
        def meth(self: Any, event: str | None = None, *args: Any, **kw: Any) -> Any:
            enabled = getattr(self, "is_enabled_for", None)
            if level != AUDIT and enabled is not None and not enabled(level):
                return None
            if args and event is not None:
                event = event % args
            return proxy_custom_level(self, name, level, event, kw)

        meth.__name__ = name
        return meth

    methods = {"business": make(BUSINESS, "business"), "audit": make(AUDIT, "audit")}
    app_log = getattr(cls, "log", None)
    if app_log is not None:

        def log(self: Any, level: int, event: str | None = None, *args: Any, **kw: Any) -> Any:
            if level == AUDIT:
                return self.audit(event, *args, **kw)
            return app_log(self, level, event, *args, **kw)

        methods["log"] = log
    found = type(cls.__name__, (cls,), methods)
    _augmented[cls] = found
    return found


def get_logger(name: str | None = None, **initial_values: Any) -> Any:
    """A structlog logger named ``name`` (rendered as ``logger``), with ``audit()`` and ``business()``.

    Works with otel-trading's default structlog setup and with an app's own
    ``structlog.configure(...)``.
    """
    args = (name,) if name else ()
    wrapper = structlog.get_config()["wrapper_class"]
    wrapper_class = None if hasattr(wrapper, "audit") else _with_trading_levels(wrapper)
    if name and "logger" not in initial_values and not _state:
        initial_values["logger"] = name
    proxy = _LoggerProxy(None, wrapper_class=wrapper_class, logger_factory_args=args, initial_values=initial_values)
    _proxies.add(proxy)
    return proxy


def _structlog_get_logger(*args: Any, **initial_values: Any) -> Any:
    """``structlog.get_logger`` while otel-trading is installed: structlog's semantics, faster method lookup."""
    proxy = _LoggerProxy(None, logger_factory_args=args, initial_values=initial_values)
    _proxies.add(proxy)
    return proxy
