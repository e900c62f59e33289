"""stdlib logging: OTLP export with trace context, ids on records, JSON schema, config functions."""

from __future__ import annotations

import contextlib
import io
import logging
import logging.config
from collections.abc import Iterator

import jsonschema
import pytest
import structlog
from opentelemetry._logs import SeverityNumber

from otel_trading import logs
from otel_trading.logs import AUDIT, BUSINESS, JsonFormatter, TraceContextFilter
from otel_trading.logs.schema import LOG_LINE_SCHEMA
from otel_trading.logs.testing import LogCapture

pytestmark = pytest.mark.usefixtures("clean_logging")


def test_record_inside_span_is_exported_with_trace_context_and_rendered_with_ids():
    with LogCapture() as cap:
        log = logging.getLogger("orders.std")
        with cap.tracer.start_as_current_span("s", attributes={"trading.order.id": "o-9"}) as span:
            log.info("placed %s", "o-9", extra={"qty": 5})
        log.info("outside")
    ctx = span.get_span_context()
    inside, outside = cap.lines()
    for line in (inside, outside):
        jsonschema.validate(line, LOG_LINE_SCHEMA)
    assert inside["trace_id"] == format(ctx.trace_id, "032x") and inside["span_id"] == format(ctx.span_id, "016x")
    assert inside["event"] == "placed o-9" and inside["qty"] == 5 and inside["order_id"] == "o-9"
    assert inside["logger"] == "orders.std" and inside["service"] == "test-svc"
    assert "trace_id" not in outside
    rec, rec_out = cap.records()
    assert (rec.log_record.trace_id, rec.log_record.span_id) == (ctx.trace_id, ctx.span_id)
    assert rec.log_record.body == "placed o-9"
    assert rec.log_record.attributes["qty"] == 5
    assert rec.instrumentation_scope.name == "orders.std"
    assert not rec_out.log_record.trace_id


@contextlib.contextmanager
def _logger_writing(name: str, fmt: str) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """The ``name`` logger with a handler of its own writing ``fmt`` lines into the buffer it yields."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(fmt))
    log = logging.getLogger(name)
    log.addHandler(handler)
    try:
        yield log, out
    finally:
        log.removeHandler(handler)


def test_record_factory_makes_ids_available_to_any_format_string():
    with LogCapture() as cap, _logger_writing("fmt", "%(levelname)s %(trace_id)s %(span_id)s %(service)s %(message)s") as (log, out):
        with cap.tracer.start_as_current_span("s") as span:
            log.warning("hi")
        log.warning("out")
    ctx = span.get_span_context()
    first, second = out.getvalue().splitlines()
    assert first == f"WARNING {ctx.trace_id:032x} {ctx.span_id:016x} test-svc hi"
    assert second == "WARNING   test-svc out"


def test_extra_naming_a_correlation_field_is_the_apps_value_not_a_key_error():
    """The stdlib refuses an ``extra`` key already on the record (KeyError out of the app's logging call);
    the fields the record factory adds (ids, service, trading fields from the span) give way instead."""
    with LogCapture() as cap, _logger_writing("extra", "%(symbol)s %(service)s %(trace_id)s %(message)s") as (log, out):
        with cap.tracer.start_as_current_span("s", attributes={"trading.symbol": "BTC-USD"}):
            log.info("hedge", extra={"symbol": "ETH-USD", "service": "hedger", "trace_id": "mine", "qty": 2})
            log.info("plain")
        with pytest.raises(KeyError):  # a stdlib field stays the stdlib's: its own error, unchanged
            log.info("bad", extra={"msg": "x"})
    hedge, plain = out.getvalue().splitlines()
    assert hedge == "ETH-USD hedger mine hedge"
    assert plain.startswith("BTC-USD test-svc ") and plain.endswith(" plain")
    assert cap.lines()[0]["symbol"] == "ETH-USD" and cap.lines()[0]["qty"] == 2


def test_another_librarys_make_record_installed_first_still_runs_and_factory_fields_still_give_way(monkeypatch):
    """otel-trading writes out the stdlib's ``makeRecord`` (no wrapper call per line), but only in place of
    the stdlib's own: a ``makeRecord`` another library put there first keeps running."""
    calls = []
    stdlib_make_record = logging.Logger.makeRecord

    def theirs(self, *args, **kwargs):
        calls.append(args[4])
        return stdlib_make_record(self, *args, **kwargs)

    monkeypatch.setattr(logging.Logger, "makeRecord", theirs)
    with LogCapture(export=False) as cap, _logger_writing("theirs", "%(service)s %(message)s %(qty)s") as (log, out):
        log.info("hedge", extra={"service": "hedger", "qty": 2})
        with pytest.raises(KeyError):
            log.info("bad", extra={"msg": "x"})
    assert calls == ["hedge", "bad"]
    assert out.getvalue().splitlines() == ["hedger hedge 2"]
    assert logging.Logger.makeRecord is theirs  # uninstall put theirs back
    assert cap.lines()[0]["service"] == "hedger"


@pytest.mark.parametrize(
    "level,name,severity,text",
    [
        (logging.DEBUG, "debug", SeverityNumber.DEBUG, "DEBUG"),
        (logging.INFO, "info", SeverityNumber.INFO, "INFO"),
        (BUSINESS, "business", SeverityNumber.INFO3, "BUSINESS"),
        (AUDIT, "audit", SeverityNumber.INFO4, "AUDIT"),
        (logging.WARNING, "warning", SeverityNumber.WARN, "WARN"),
        (logging.ERROR, "error", SeverityNumber.ERROR, "ERROR"),
        (logging.CRITICAL, "critical", SeverityNumber.FATAL, "FATAL"),
    ],
)
def test_each_level_rendered_and_exported(level, name, severity, text):
    with LogCapture(log_level="debug") as cap:
        logging.getLogger("lv.std").log(level, "m")
    (line,) = cap.lines()
    (record,) = cap.records()
    assert line["level"] == name
    jsonschema.validate(line, LOG_LINE_SCHEMA)
    assert (record.log_record.severity_number, record.log_record.severity_text) == (severity, text)


def test_stdlib_level_filtering_follows_setting():
    with LogCapture(log_level="audit") as cap:
        log = logging.getLogger("filt.std")
        log.info("i")
        log.log(BUSINESS, "b")
        log.log(AUDIT, "a")
        log.error("e")
    assert [line["event"] for line in cap.lines()] == ["a", "e"]
    assert [r.log_record.body for r in cap.records()] == ["a", "e"]


def test_exception_fields_same_schema_as_structlog():
    with LogCapture() as cap:
        try:
            {}["k"]
        except KeyError:
            logging.getLogger("exc.std").exception("lookup failed")
    (line,) = cap.lines()
    jsonschema.validate(line, LOG_LINE_SCHEMA)
    assert line["exc_type"] == "KeyError" and "Traceback" in line["stack"]
    attrs = cap.records()[0].log_record.attributes
    assert attrs["exception.type"] == "KeyError" and "Traceback" in attrs["exception.stacktrace"]


def test_basic_config_after_install_keeps_otlp_export_and_takes_over_console():
    with LogCapture() as cap:
        root = logging.getLogger()
        before = list(root.handlers)
        foreign = [h for h in before if type(h).__module__.startswith("_pytest")]  # pytest's capture handlers
        for handler in foreign:
            root.removeHandler(handler)
        app_out = io.StringIO()
        try:
            logging.basicConfig(stream=app_out, format="%(trace_id)s %(message)s", level=logging.INFO, force=False)
            assert any(isinstance(h, logs.TradingLoggingHandler) for h in root.handlers)
            with cap.tracer.start_as_current_span("s") as span:
                logging.getLogger("app").info("mine")
        finally:
            for handler in root.handlers[:]:
                if handler not in before:
                    root.removeHandler(handler)
            for handler in foreign:
                root.addHandler(handler)
    assert app_out.getvalue() == f"{span.get_span_context().trace_id:032x} mine\n"
    assert cap.lines() == []  # our console handler made way for the app's
    assert [r.log_record.body for r in cap.records()] == ["mine"]


def test_dict_config_keeps_otlp_handler():
    with LogCapture() as cap:
        logging.config.dictConfig({"version": 1, "incremental": False, "disable_existing_loggers": False, "root": {"level": "INFO"}})
        logging.getLogger("dc").info("x")
    assert [r.log_record.body for r in cap.records()] == ["x"]


def test_json_formatter_and_filter_for_hand_built_handlers():
    with LogCapture() as cap:
        out = io.StringIO()
        handler = logging.StreamHandler(out)
        handler.setFormatter(JsonFormatter(service="svc"))
        handler.addFilter(TraceContextFilter("svc"))
        log = logging.getLogger("hand")
        log.addHandler(handler)
        log.propagate = False
        try:
            with cap.tracer.start_as_current_span("s"):
                log.info("x", extra={"password": "p"})
        finally:
            log.removeHandler(handler)
            log.propagate = True
    import json

    line = json.loads(out.getvalue())
    jsonschema.validate(line, LOG_LINE_SCHEMA)
    assert line["password"] == "***" and line["trace_id"]


def test_structlog_through_stdlib_is_exported_once():
    with LogCapture() as cap:
        structlog.configure(
            processors=[structlog.stdlib.add_log_level, structlog.processors.JSONRenderer()],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        with cap.tracer.start_as_current_span("s"):
            structlog.get_logger("via.std").warning("once", k=1)
    assert len(cap.records()) == 1
    assert cap.records()[0].log_record.trace_id


def test_sdk_own_messages_are_rendered_but_not_fed_back_into_export():
    with LogCapture() as cap:
        logging.getLogger("opentelemetry.sdk._shared_internal").warning("Exception while exporting logs.")
    assert cap.lines()[0]["event"] == "Exception while exporting logs."
    assert cap.records() == []


def test_log_lines_build_no_otel_record_when_only_the_redacting_processor_would_see_it():
    """``OTEL_LOGS_EXPORTER=none`` leaves only the default redacting processor, which passes otel-trading's
    own records untouched: building them cost every stdlib/structlog line ~6 us for nothing. A processor
    the app adds later receives them again."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    from otel_trading.logs.otlp import OtlpEmitter
    from otel_trading.redaction import RedactingLogRecordProcessor

    provider = LoggerProvider()
    provider.add_log_record_processor(RedactingLogRecordProcessor())
    emitter = OtlpEmitter(provider)
    assert emitter.active is False
    exporter = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    assert emitter.active is True
    emitter.emit("app", "info", "order accepted", {}, None, 1)
    assert [r.log_record.body for r in exporter.get_finished_logs()] == ["order accepted"]



def _app_lines(*calls: tuple) -> tuple[list[str], list[logging.LogRecord]]:
    """Log ``calls`` through the app's own ``%(message)s`` handler: its lines and the records it saw."""
    out = io.StringIO()
    seen: list[logging.LogRecord] = []
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("APP %(message)s"))
    handler.addFilter(lambda record: seen.append(record) or True)
    log = logging.getLogger("app.own")
    log.addHandler(handler)
    try:
        for msg, *args in calls:
            log.warning(msg, *args)
    finally:
        log.removeHandler(handler)
    return out.getvalue().splitlines(), seen


def test_app_format_masks_secret_arguments_the_rendered_text_does_not_show():
    """The rendered message is scanned; arguments that can hide a secret the text does not give away
    (a ``(key, value)`` pair, a card number as an int glued to a word, a container) are judged as values."""
    with LogCapture(export=False):
        lines, _ = _app_lines(
            ("login %s %s", "password", "hunter22"),
            ("acct%s", 4111111111111111),
            ("payload %s", {"token": "tok_abcdefgh"}),
        )
    assert lines[0] == "APP login password ***"
    assert "4111111111111111" not in lines[1] and lines[1].endswith("1111")
    assert "tok_abcdefgh" not in lines[2] and "token" in lines[2]


def test_clean_record_keeps_its_template_and_arguments():
    """Handlers that group by template (error trackers) or re-render later see the record as logged."""
    with LogCapture(export=False):
        lines, (record,) = _app_lines(("order accepted %s qty %d", "ord-000123", 100))
    assert lines == ["APP order accepted ord-000123 qty 100"]
    assert (record.msg, record.args) == ("order accepted %s qty %d", ("ord-000123", 100))


def test_stdlib_records_are_exported_once_a_processor_is_added_after_install():
    """With only the redacting processor nothing is built per line; a processor added later gets every line."""
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    with LogCapture(export=False) as cap:
        log = logging.getLogger("late")
        log.warning("before")
        exporter = InMemoryLogRecordExporter()
        cap.provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        log.warning("after")
    assert [r.log_record.body for r in exporter.get_finished_logs()] == ["after"]


def _otlp_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, logs.TradingLoggingHandler)]


def test_otlp_handler_joins_the_root_logger_only_once_something_would_be_exported():
    """With nothing to export the OTLP handler is not on the root logger (it would be called for every line
    to do nothing); a processor added later puts it there, once, and it leaves again with ``uninstall()``."""
    from opentelemetry.sdk._logs.export import (
        InMemoryLogRecordExporter,
        SimpleLogRecordProcessor,
    )

    with LogCapture(export=False) as cap:
        assert _otlp_handlers() == []
        logging.getLogger("late").warning("before")
        exporter = InMemoryLogRecordExporter()
        cap.provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        cap.provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        assert len(_otlp_handlers()) == 1
        with cap.tracer.start_as_current_span("s") as span:
            logging.getLogger("late").warning("after")
    assert _otlp_handlers() == []
    assert [(r.log_record.body, r.log_record.trace_id) for r in exporter.get_finished_logs()] == [("after", span.get_span_context().trace_id)] * 2


def test_otlp_handler_is_not_attached_by_a_processor_added_after_uninstall():
    from opentelemetry.sdk._logs.export import (
        InMemoryLogRecordExporter,
        SimpleLogRecordProcessor,
    )

    with LogCapture(export=False) as cap:
        pass
    cap.provider.add_log_record_processor(SimpleLogRecordProcessor(InMemoryLogRecordExporter()))
    assert _otlp_handlers() == []


def test_late_processor_exports_with_the_logging_instrumentation_installed_after_us():
    """The upstream logging instrumentation's record factory wraps ours: records carry both sets of ids,
    and a processor added later still receives them through our handler."""
    from opentelemetry.instrumentation.logging import LoggingInstrumentor
    from opentelemetry.sdk._logs.export import (
        InMemoryLogRecordExporter,
        SimpleLogRecordProcessor,
    )

    with LogCapture(export=False) as cap:
        instrumentor = LoggingInstrumentor()
        instrumentor.instrument(tracer_provider=cap.tracer_provider, inject_trace_context=True, enable_log_auto_instrumentation=False)
        try:
            with _logger_writing("inst", "%(trace_id)s %(otelTraceID)s %(message)s") as (log, out):
                exporter = InMemoryLogRecordExporter()
                cap.provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
                with cap.tracer.start_as_current_span("s") as span:
                    log.warning("sent password=hunter22")
        finally:
            instrumentor.uninstrument()
    trace_id = span.get_span_context().trace_id
    assert out.getvalue() == f"{trace_id:032x} {trace_id:032x} sent password=***\n"
    assert [(r.log_record.body, r.log_record.trace_id) for r in exporter.get_finished_logs()] == [("sent password=***", trace_id)]
