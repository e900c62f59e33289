"""Test helper: otel-trading logging with in-memory exporters and captured output.

    with LogCapture(log_level="debug") as cap:
        with cap.tracer.start_as_current_span("order"):
            get_logger("orders").info("placed", qty=1)
    cap.lines()     # rendered JSON lines (dicts)
    cap.records()   # exported OTel log records (ReadableLogRecord / ReadWriteLogRecord)
    cap.spans()     # exported spans (after RedactingSpanProcessor)
    cap.audit_dir   # the audit trail (a temporary directory unless OTEL_TRADING_AUDIT_DIR / audit_dir is given)
"""

from __future__ import annotations

import io
import json
import tempfile
from typing import Any

import structlog
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_trading.redaction import RedactingSpanProcessor, configure_redaction_from


class LogCapture:
    def __init__(
        self, service: str = "test-svc", export: bool = True, environ: dict | None = None, reset_structlog: bool = True, **overrides: Any
    ):
        self.service = service
        self.reset_structlog = reset_structlog
        self.export = export
        self.environ = {} if environ is None else dict(environ)
        self.overrides = overrides

    def __enter__(self) -> LogCapture:
        from otel_trading import logs
        from otel_trading.config import load

        logs.uninstall()
        self._audit_tmp = None
        if "OTEL_TRADING_AUDIT_DIR" not in self.environ and "audit_dir" not in self.overrides:
            self._audit_tmp = tempfile.TemporaryDirectory(prefix="otel-trading-audit-")
            self.environ["OTEL_TRADING_AUDIT_DIR"] = self._audit_tmp.name
        self.settings = load(self.environ, **self.overrides)
        self.audit_dir = logs.audit_dir(self.settings)
        self.exporter = InMemoryLogRecordExporter()
        self.provider = LoggerProvider(resource=Resource.create({"service.name": self.service}), shutdown_on_exit=False)
        if self.export:
            self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=Resource.create({"service.name": self.service}), shutdown_on_exit=False)
        redactor = configure_redaction_from(self.settings)
        if redactor.enabled:
            self.tracer_provider.add_span_processor(RedactingSpanProcessor(redactor))
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.tracer = self.tracer_provider.get_tracer("test")
        self._bytes = io.BytesIO()
        self.stream = io.TextIOWrapper(self._bytes, write_through=True)
        logs.install(self.settings, self.provider, stream=self.stream, stdlib_output=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        from otel_trading import logs

        logs.uninstall()
        if self._audit_tmp is not None:
            self._audit_tmp.cleanup()
        if self.reset_structlog:
            structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()

    def text(self) -> str:
        self.stream.flush()
        return self._bytes.getvalue().decode()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]

    def records(self) -> list:
        return list(self.exporter.get_finished_logs())

    def spans(self) -> list:
        return list(self.span_exporter.get_finished_spans())
