"""otel-trading logging: structlog and stdlib logs correlated with traces, exported over OTLP.

``install(settings, logger_provider)`` (called by the configurator) wires everything;
apps use ``get_logger()`` and, for stdlib, ``logging.getLogger(...).log(AUDIT, ...)``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

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
    register_stdlib_levels,
)
from otel_trading.logs.rendering import resolve_format
from otel_trading.logs.stdlib import (
    ChannelHandler,
    ConsoleFormatter,
    ConsoleHandler,
    JsonFormatter,
    TraceContextFilter,
    TradingLoggingHandler,
    _managed,
    attach_when_exporting,
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
from otel_trading.onimport import on_import
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

    # structlog: wired now when it is already imported, else when the app imports it (until then an
    # app that logs through stdlib only does not load it); either way before the app's first configure()
    common = {"service": service, "redactor": redactor, "channels": state.channels, "audit": state.audit}
    if "structlog" in sys.modules:
        _install_structlog(state, common, fmt, level, stream)
    else:

        def on_structlog_import(module: Any) -> None:
            if _state is state:  # still installed
                try:
                    _install_structlog(state, common, fmt, level, stream)
                except Exception as exc:  # noqa: BLE001 - the app's `import structlog` must not fail
                    report(f"structlog could not be wired ({exc!r:.200}); its lines are not correlated nor exported")

        on_import("structlog", on_structlog_import)

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
    state.handlers.append(otlp_handler)
    _managed["otlp"] = otlp_handler
    attach_when_exporting(otlp_handler, root)
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


def _install_structlog(state: _State, common: dict[str, Any], fmt: str, level: int, stream: Any) -> None:
    """otel-trading's processor in the app's structlog chain, or its default chain when the app has none."""
    from otel_trading.logs.structlog_setup import (
        OwnChainProcessor,
        TradingProcessor,
        TradingStructlogInstrumentor,
        default_config,
    )

    instrumentor = TradingStructlogInstrumentor()
    instrumentor.instrument(
        logger_provider=state.provider,
        app_processor=TradingProcessor(state.provider, **common),
        default_config=default_config(OwnChainProcessor(state.provider, **common), fmt, level, stream),
        skip_dep_check=True,
    )
    state.instrumentor = instrumentor
    _clear_proxy_caches()


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


def get_logger(name: str | None = None, **initial_values: Any) -> Any:
    """A structlog logger named ``name`` (rendered as ``logger``), with ``audit()`` and ``business()``.

    Works with otel-trading's default structlog setup and with an app's own
    ``structlog.configure(...)``.
    """
    if name and "logger" not in initial_values and not _state:
        initial_values["logger"] = name
    import structlog  # noqa: F401 - first: when installed, importing it wires it (before any module of ours needs it)

    from otel_trading.logs import loggers

    return loggers.get_logger(name, initial_values)


def _clear_proxy_caches() -> None:
    loggers = sys.modules.get("otel_trading.logs.loggers")
    if loggers is not None:  # no proxy exists before that module is imported
        loggers.clear_proxy_caches()
