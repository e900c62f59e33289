"""The documented JSON log line schema (JSON Schema draft 2020-12), shared by structlog and stdlib output."""

from __future__ import annotations

HEX32 = "^[0-9a-f]{32}$"
HEX16 = "^[0-9a-f]{16}$"
ISO_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"
LEVELS = ["debug", "info", "business", "audit", "warning", "error", "critical"]

LOG_LINE_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "otel-trading log line",
    "type": "object",
    "required": ["timestamp", "level", "logger", "event", "service"],
    "properties": {
        "timestamp": {"type": "string", "pattern": ISO_UTC, "description": "ISO 8601 UTC, microseconds"},
        "level": {"enum": LEVELS},
        "logger": {"type": "string", "minLength": 1},
        "event": {"type": "string"},
        "service": {"type": "string", "minLength": 1},
        "trace_id": {"type": "string", "pattern": HEX32},
        "span_id": {"type": "string", "pattern": HEX16},
        "correlation_id": {"type": "string"},
        "symbol": {"type": "string"},
        "order_id": {"type": "string"},
        "strategy": {"type": "string"},
        "venue": {"type": "string"},
        "side": {"type": "string"},
        "exc_type": {"type": "string"},
        "exc_message": {"type": "string"},
        "stack": {"type": "string"},
    },
    "dependentRequired": {"trace_id": ["span_id"], "span_id": ["trace_id"], "exc_type": ["exc_message", "stack"]},
    "additionalProperties": True,
}

# the fields of the README table, in order
FIELDS: tuple[tuple[str, str], ...] = (
    ("timestamp", "ISO 8601 UTC with microseconds, e.g. `2026-11-23T13:25:10.123456Z`"),
    ("level", "`debug`, `info`, `business`, `audit`, `warning`, `error`, `critical`"),
    ("logger", "logger name (`get_logger(name)`, `structlog.get_logger(name)`, stdlib logger name; `root` when none)"),
    ("event", "the message"),
    ("service", "`service.name` of the resource"),
    ("trace_id", "32 lowercase hex, when logged inside a span (as Jaeger shows it)"),
    ("span_id", "16 lowercase hex, with `trace_id`"),
    ("correlation_id", "business correlation id from baggage `trading.correlation_id`, when present"),
    ("symbol, order_id, strategy, venue, side", "trading context: bound/passed values, else the active span's `trading.symbol`, `trading.order.id`, `trading.strategy.id`, `trading.venue`, `trading.side`"),
    ("exc_type, exc_message, stack", "for errors logged with an exception (`log.exception(...)`, `exc_info=`): type name, message, formatted traceback"),
    ("(anything else)", "the event's own key/values and bound context (`bind`, `bind_contextvars`, stdlib `extra=`)"),
)
