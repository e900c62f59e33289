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
