"""Log levels, including the trading levels ``business`` and ``audit``.

Numbers follow the stdlib scale so structlog, :mod:`logging` and OpenTelemetry
agree. ``business`` (22) and ``audit`` (23) sit between ``info`` (20) and
``warning`` (30); the OpenTelemetry severity of every level is the one the
standard ``std_to_otel`` table gives its number, so any OTel handler (ours or
upstream's) maps them identically:

=========  ======  ==================  =============
level      number  OTel SeverityNumber severity_text
=========  ======  ==================  =============
debug      10      DEBUG (5)           DEBUG
info       20      INFO (9)            INFO
business   22      INFO3 (11)          BUSINESS
audit      23      INFO4 (12)          AUDIT
warning    30      WARN (13)           WARN
error      40      ERROR (17)          ERROR
critical   50      FATAL (21)          FATAL
=========  ======  ==================  =============
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry._logs import SeverityNumber

DEBUG = logging.DEBUG
INFO = logging.INFO
BUSINESS = 22
AUDIT = 23
WARNING = logging.WARNING
ERROR = logging.ERROR
CRITICAL = logging.CRITICAL

NAME_TO_LEVEL: dict[str, int] = {
    "notset": 0,
    "debug": DEBUG,
    "info": INFO,
    "business": BUSINESS,
    "audit": AUDIT,
    "warning": WARNING,
    "warn": WARNING,
    "error": ERROR,
    "exception": ERROR,
    "critical": CRITICAL,
    "fatal": CRITICAL,
}
LEVEL_TO_NAME: dict[int, str] = {
    DEBUG: "debug",
    INFO: "info",
    BUSINESS: "business",
    AUDIT: "audit",
    WARNING: "warning",
    ERROR: "error",
    CRITICAL: "critical",
}

# level name (as structlog renders it, lowercase) -> (SeverityNumber, severity_text)
SEVERITY: dict[str, tuple[SeverityNumber, str]] = {
    "debug": (SeverityNumber.DEBUG, "DEBUG"),
    "info": (SeverityNumber.INFO, "INFO"),
    "business": (SeverityNumber.INFO3, "BUSINESS"),
    "audit": (SeverityNumber.INFO4, "AUDIT"),
    "warning": (SeverityNumber.WARN, "WARN"),
    "warn": (SeverityNumber.WARN, "WARN"),
    "error": (SeverityNumber.ERROR, "ERROR"),
    "exception": (SeverityNumber.ERROR, "ERROR"),
    "critical": (SeverityNumber.FATAL, "FATAL"),
    "fatal": (SeverityNumber.FATAL, "FATAL"),
}
_UNSPECIFIED = (SeverityNumber.UNSPECIFIED, None)


def severity(level_name: Any) -> tuple[SeverityNumber, str | None]:
    """OTel (SeverityNumber, severity_text) of a level name; unknown names are UNSPECIFIED."""
    found = SEVERITY.get(level_name)
    if found is not None:
        return found
    if isinstance(level_name, str):
        found = SEVERITY.get(level_name.lower())
        if found is not None:
            return found
        number = logging.getLevelName(level_name.upper())
        if isinstance(number, int):
            from opentelemetry.instrumentation.log_utils import std_to_otel

            return std_to_otel(number), level_name.upper()
        return SeverityNumber.UNSPECIFIED, level_name.upper()
    return _UNSPECIFIED


def level_name(number: int) -> str:
    """Lowercase name of a level number (nearest lower known level for odd numbers)."""
    name = LEVEL_TO_NAME.get(number)
    if name is not None:
        return name
    below = [n for n in LEVEL_TO_NAME if n <= number]
    return LEVEL_TO_NAME[max(below)] if below else "notset"


def register_stdlib_levels() -> None:
    """Give the stdlib level numbers 22 and 23 their names (``logging.log(AUDIT, ...)`` renders ``AUDIT``).

    Only ``logging.addLevelName`` is used here; audit records passing every level setting is
    :func:`otel_trading.logs.audit.keep_audit_records`.
    """
    if logging.getLevelName(BUSINESS) != "BUSINESS":
        logging.addLevelName(BUSINESS, "BUSINESS")
    if logging.getLevelName(AUDIT) != "AUDIT":
        logging.addLevelName(AUDIT, "AUDIT")


# --- structlog: filtering bound loggers with audit/business methods ---------

_CLASSES: dict[int, type] = {}


def proxy_custom_level(bound: Any, name: str, level: int, event: Any, kw: dict) -> Any:
    """Run the processors with method name ``name`` and hand the result to the wrapped logger:
    ``logger.log(level, ...)`` for stdlib loggers, else its ``name`` method, else ``msg``."""
    from structlog import DropEvent

    try:
        args, kwargs = bound._process_event(name, event, kw)
    except DropEvent:
        return None
    wrapped = bound._logger
    if isinstance(wrapped, logging.Logger):
        return wrapped.log(level, *args, **kwargs)
    method = getattr(wrapped, name, None) or wrapped.msg
    return method(*args, **kwargs)


def filtering_logger_class(min_level: int) -> type:
    """A structlog ``FilteringBoundLogger`` class that also has ``business``/``audit`` (and async ``abusiness``/``aaudit``).

    Calls below ``min_level`` are a bare ``return None`` (structlog's design), except ``audit``:
    audit records are never filtered by a level.
    """
    cls = _CLASSES.get(min_level)
    if cls is not None:
        return cls
    from structlog import _native

    base_level = max((lvl for lvl in _native.LEVEL_TO_FILTERING_LOGGER if lvl <= min_level), default=0)
    base = _native._make_filtering_bound_logger(base_level)
    sync_meths: dict[str, Any] = {}

    def make(level: int, name: str):
        if level < min_level and level != AUDIT:
            return _native._nop, _native._anop

        if name in ("business", "audit"):

            def meth(self: Any, event: str, *args: Any, **kw: Any) -> Any:
                return proxy_custom_level(self, name, level, _native._maybe_interpolate(event, args), kw)

        else:

            def meth(self: Any, event: str, *args: Any, **kw: Any) -> Any:
                return self._proxy_to_logger(name, _native._maybe_interpolate(event, args), **kw)

        async def ameth(self: Any, event: str, *args: Any, **kw: Any) -> Any:
            import asyncio
            import contextvars

            event = _native._maybe_interpolate(event, args)
            ctx = contextvars.copy_context()
            return await asyncio.get_running_loop().run_in_executor(
                None, lambda: ctx.run(lambda: getattr(self, name)(event, **kw))
            )

        meth.__name__ = name
        ameth.__name__ = f"a{name}"
        return meth, ameth

    for level, name in LEVEL_TO_NAME.items():
        sync_meths[name], sync_meths[f"a{name}"] = make(level, name)
    sync_meths["exception"] = base.exception if min_level <= ERROR else _native._nop
    sync_meths["aexception"] = base.aexception if min_level <= ERROR else _native._anop
    sync_meths["fatal"], sync_meths["afatal"] = sync_meths["critical"], sync_meths["acritical"]
    sync_meths["warn"], sync_meths["awarn"] = sync_meths["warning"], sync_meths["awarning"]
    sync_meths["msg"], sync_meths["amsg"] = sync_meths["info"], sync_meths["ainfo"]

    def log(self: Any, level: int, event: str, *args: Any, **kw: Any) -> Any:
        if level < min_level and level != AUDIT:
            return None
        return getattr(self, level_name(level))(_native._maybe_interpolate(event, args), **kw)

    async def alog(self: Any, level: int, event: str, *args: Any, **kw: Any) -> Any:
        if level < min_level and level != AUDIT:
            return None
        method = getattr(self, "a" + level_name(level))
        return await method(event, *args, **kw)

    sync_meths["log"], sync_meths["alog"] = log, alog
    sync_meths["is_enabled_for"] = lambda self, level: level >= min_level or level == AUDIT
    sync_meths["get_effective_level"] = lambda self: min_level
    cls = type(f"TradingBoundLoggerFilteringAt{level_name(min_level).capitalize()}", (base,), sync_meths)
    _CLASSES[min_level] = cls
    return cls
