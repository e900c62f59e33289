"""Rendering pieces shared by structlog and stdlib: timestamps, error fields, JSON and console output.

structlog is imported only by what renders through it (its console renderer, its loggers): an app that
never imports structlog does not pay for it at start-up.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
import traceback
import weakref
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import structlog

_last: tuple[int, str] = (-1, "")


def iso_from_ns(ns: int) -> str:
    """ISO 8601 UTC with microseconds and ``Z`` (the date/time part is cached per second)."""
    global _last
    second, rem = divmod(ns, 1_000_000_000)
    last = _last  # one read: (second, prefix) always belong together across threads
    if second != last[0]:
        last = _last = (second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)))
    return "%s%06dZ" % (last[1], rem // 1000)


def _exc_tuple(exc_info: Any) -> tuple | None:
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and exc_info[0] is not None:
        return exc_info
    return None


def exception_fields(exc_info: Any) -> tuple[str, str, str] | None:
    """``(exc_type, exc_message, stack)`` for a structlog/stdlib ``exc_info`` value, or None."""
    info = _exc_tuple(exc_info)
    if info is None:
        return None
    etype, value, tb = info
    name = getattr(etype, "__name__", None) or type(value).__name__
    try:
        message = str(value)
    except Exception:  # noqa: BLE001 - an exception whose __str__ raises
        message = "<exception str() failed>"
    try:
        stack = "".join(traceback.format_exception(etype, value, tb)).rstrip("\n")
    except Exception:  # noqa: BLE001
        stack = f"{name}: {message}"
    return name, message, stack


def fields_from_text(stack: str) -> tuple[str, str]:
    """Best effort ``(exc_type, exc_message)`` from a formatted traceback's last line."""
    for line in reversed(stack.rstrip().splitlines()):
        if line and not line.startswith(" "):
            name, _, message = line.partition(": ")
            return name.rsplit(".", 1)[-1], message
    return "", ""


def _fallback(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception:  # noqa: BLE001
        return f"<unrenderable {type(obj).__name__}>"


_OPTS = orjson.OPT_NON_STR_KEYS


def _sanitise(value: Any, path: tuple = ()) -> Any:
    """Values orjson refuses even with ``default`` (ints beyond 64 bits, odd keys, cycles, nesting
    deeper than orjson's limit) -> strings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        if id(value) in path:
            return "<recursive>"
        if len(path) >= 200:
            return "<too deep>"
        path = (*path, id(value))
        if isinstance(value, dict):
            return {k if isinstance(k, (str, int, float, bool)) or k is None else _fallback(k): _sanitise(v, path) for k, v in value.items()}
        return [_sanitise(v, path) for v in value]
    return value


def dumps(event_dict: dict) -> bytes:
    """orjson serialisation used for JSON lines (unknown types rendered with ``repr``); never raises.

    Call it on redacted data only: its last resort names the keys, never the values."""
    try:
        return orjson.dumps(event_dict, default=_fallback, option=_OPTS)
    except TypeError:
        try:
            return orjson.dumps(_sanitise(event_dict), default=_fallback, option=_OPTS)
        except Exception as exc:  # noqa: BLE001
            keys = [_fallback(k)[:100] for k in list(event_dict)[:50]]
            return orjson.dumps({"event": "<log event could not be rendered>", "keys": keys, "render_error": type(exc).__name__})


class JsonRenderer:
    """structlog processor: event dict -> one JSON line (bytes, for ``BytesLogger``)."""

    def __call__(self, logger: Any, method_name: str, event_dict: dict) -> bytes:
        try:
            return orjson.dumps(event_dict, default=_fallback, option=_OPTS)
        except TypeError:
            return dumps(event_dict)


def resolve_format(fmt: str, stream: Any = None) -> str:
    """``json`` or ``console`` as asked; ``auto``: console on a terminal, else JSON."""
    if fmt in ("json", "console"):
        return fmt
    stream = stream if stream is not None else sys.stdout
    try:
        return "console" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def console_renderer(colors: bool = True) -> structlog.dev.ConsoleRenderer:
    """structlog's ConsoleRenderer with styles for the ``business`` and ``audit`` levels."""
    import structlog.dev

    styles = structlog.dev.ConsoleRenderer.get_default_level_styles(colors=colors)
    if colors:
        styles["business"] = "\x1b[36m\x1b[1m"  # bright cyan
        styles["audit"] = "\x1b[35m\x1b[1m"  # bright magenta
    else:
        styles["business"] = styles["audit"] = ""
    return structlog.dev.ConsoleRenderer(colors=colors, level_styles=styles, pad_event_to=30)


class NamedBytesLoggerFactory:
    """``BytesLoggerFactory`` that names each logger after ``get_logger``'s first argument.

    Given a text stream, writes to its ``buffer`` (and keeps the stream alive: a collected
    ``TextIOWrapper`` would close the buffer under us)."""

    def __init__(self, file: Any = None):
        self._stream = file
        self._file = getattr(file, "buffer", file) if file is not None else None

    def __call__(self, *args: Any) -> structlog.BytesLogger:
        return _named_class("BytesLogger")(self._file or sys.stdout.buffer, name=args[0] if args else None)


def _slots(cls: type) -> tuple:
    """Add a ``name`` slot unless the structlog class already has one (structlog >= 26.1), and weak references."""
    name = () if "name" in getattr(cls, "__slots__", ("name",)) else ("name",)
    return name if hasattr(cls, "__weakref__") else (*name, "__weakref__")


_loggers: weakref.WeakSet[Any] = weakref.WeakSet()
_named: dict[str, type] = {}


def _named_class(kind: str) -> type:
    """structlog's ``BytesLogger`` / ``WriteLogger`` with a ``name`` (made on first use: structlog loads then)."""
    cls = _named.get(kind)
    if cls is None:
        import structlog

        base: Any = getattr(structlog, kind)

        def __init__(self: Any, file: Any = None, name: str | None = None) -> None:
            base.__init__(self, _in_this_process(file))
            self.name = name
            _loggers.add(self)

        cls = _named[kind] = type(f"_Named{kind}", (base,), {"__slots__": _slots(base), "__init__": __init__, "__module__": __name__})
    return cls


# A fork while another thread is inside ``stdout.write`` copies the buffer's lock held by a thread
# the child does not have: the child's first log line would block on it forever. The child's
# loggers write through fresh file objects on the same descriptors instead (which also drops the
# parent's unflushed bytes rather than writing them twice).
_child_files: dict[int, Any] = {}


def _in_this_process(file: Any) -> Any:
    return _child_files.get(id(file), file) if _child_files else file


def child_file(old: Any) -> Any:
    """In a forked child: a fresh file object on ``old``'s descriptor (one per descriptor), else ``old``."""
    new = _child_files.get(id(old))
    if new is None:
        try:
            binary = not isinstance(old, io.TextIOBase)
            new = open(old.fileno(), "wb" if binary else "w", closefd=False)  # noqa: SIM115 - lives as long as the process
        except (AttributeError, OSError, ValueError):
            return old
        _child_files[id(old)] = new
    return new


def _after_fork_in_child() -> None:
    _child_files.clear()  # the parent's replacements (a fork of a fork) are old files here too
    for logger in list(_loggers):
        new = child_file(logger._file)
        logger._file, logger._write, logger._flush = new, new.write, new.flush
        logger._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class NamedWriteLoggerFactory:
    """``WriteLoggerFactory`` (text) that names each logger after ``get_logger``'s first argument."""

    def __init__(self, file: Any = None):
        self._file = file

    def __call__(self, *args: Any) -> structlog.WriteLogger:
        return _named_class("WriteLogger")(self._file or sys.stdout, name=args[0] if args else None)
