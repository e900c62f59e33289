"""``get_logger()``'s loggers: structlog's lazy proxy with the ``business`` / ``audit`` methods.

A module of its own so that structlog is imported when the app asks for a logger or imports structlog
itself, not at every start-up.
"""

from __future__ import annotations

import weakref
from typing import Any

import structlog

from otel_trading.logs.levels import AUDIT, BUSINESS, proxy_custom_level

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


def clear_proxy_caches() -> None:
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


def get_logger(name: str | None, initial_values: dict[str, Any]) -> Any:
    """A proxy for ``otel_trading.logs.get_logger``."""
    args = (name,) if name else ()
    wrapper = structlog.get_config()["wrapper_class"]
    wrapper_class = None if hasattr(wrapper, "audit") else _with_trading_levels(wrapper)
    proxy = _LoggerProxy(None, wrapper_class=wrapper_class, logger_factory_args=args, initial_values=initial_values)
    _proxies.add(proxy)
    return proxy


def structlog_get_logger(*args: Any, **initial_values: Any) -> Any:
    """``structlog.get_logger`` while otel-trading is installed: structlog's semantics, faster method lookup."""
    proxy = _LoggerProxy(None, logger_factory_args=args, initial_values=initial_values)
    _proxies.add(proxy)
    return proxy
