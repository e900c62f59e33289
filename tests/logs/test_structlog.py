"""structlog: correlation, schema, levels, exceptions, app-configured chains (in-process, real SDK)."""

from __future__ import annotations

import io
import json
import logging

import jsonschema
import orjson
import pytest
import structlog
from opentelemetry import baggage, context
from opentelemetry._logs import SeverityNumber

from otel_trading import logs
from otel_trading.logs import AUDIT, BUSINESS, get_logger
from otel_trading.logs.schema import LOG_LINE_SCHEMA
from otel_trading.logs.testing import LogCapture

HEX = "0123456789abcdef"

pytestmark = pytest.mark.usefixtures("clean_logging")


def ids(span):
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def test_default_chain_renders_schema_with_ids_inside_span_and_without_outside():
    with LogCapture() as cap:
        log = get_logger("orders")
        with cap.tracer.start_as_current_span("order") as span:
            log.info("order placed", symbol="AAPL", qty=100)
        log.info("idle")
    inside, outside = cap.lines()
    for line in (inside, outside):
        jsonschema.validate(line, LOG_LINE_SCHEMA)
    assert (inside["trace_id"], inside["span_id"]) == ids(span)
    assert len(inside["trace_id"]) == 32 and set(inside["trace_id"]) <= set(HEX)
    assert len(inside["span_id"]) == 16 and set(inside["span_id"]) <= set(HEX)
    assert inside["logger"] == "orders" and inside["service"] == "test-svc" and inside["level"] == "info"
    assert inside["timestamp"].endswith("Z") and inside["symbol"] == "AAPL" and inside["qty"] == 100
    assert "trace_id" not in outside and "span_id" not in outside


def test_exported_record_carries_span_context_and_key_values():
    with LogCapture() as cap:
        with cap.tracer.start_as_current_span("order") as span:
            get_logger("orders").info("order placed", symbol="AAPL", qty=100, price=1.5)
    (record,) = cap.records()
    lr = record.log_record
    ctx = span.get_span_context()
    assert (lr.trace_id, lr.span_id) == (ctx.trace_id, ctx.span_id)
    assert lr.body == "order placed"
    assert dict(lr.attributes) == {"symbol": "AAPL", "qty": 100, "price": 1.5}
    assert record.instrumentation_scope.name == "orders"
    assert lr.severity_number == SeverityNumber.INFO


def test_structlog_get_logger_name_and_unnamed_logger():
    with LogCapture() as cap:
        structlog.get_logger("md.feed").info("tick")
        structlog.get_logger().info("anon")
    a, b = cap.lines()
    assert a["logger"] == "md.feed" and b["logger"] == "root"
    for line in (a, b):
        jsonschema.validate(line, LOG_LINE_SCHEMA)


def test_trading_context_from_active_span_and_bound_values_win():
    with LogCapture() as cap:
        log = get_logger("orders")
        attrs = {"trading.symbol": "MSFT", "trading.order.id": "o-1", "trading.strategy.id": "mom"}
        with cap.tracer.start_as_current_span("order", attributes=attrs) as span:
            log.info("a")
            span.set_attribute("trading.venue", "XNAS")  # added later: picked up
            log.bind(symbol="OVERRIDE").info("b")
    a, b = cap.lines()
    assert (a["symbol"], a["order_id"], a["strategy"]) == ("MSFT", "o-1", "mom")
    assert "venue" not in a
    assert b["symbol"] == "OVERRIDE" and b["venue"] == "XNAS"
    exported = [dict(r.log_record.attributes) for r in cap.records()]
    assert exported[0]["order_id"] == "o-1"


def test_correlation_id_from_baggage():
    with LogCapture() as cap:
        token = context.attach(baggage.set_baggage("trading.correlation_id", "corr-42"))
        try:
            get_logger("x").info("with id")
        finally:
            context.detach(token)
        get_logger("x").info("without")
    a, b = cap.lines()
    assert a["correlation_id"] == "corr-42" and "correlation_id" not in b
    jsonschema.validate(a, LOG_LINE_SCHEMA)


@pytest.mark.parametrize(
    "method,level,severity,text",
    [
        ("debug", "debug", SeverityNumber.DEBUG, "DEBUG"),
        ("info", "info", SeverityNumber.INFO, "INFO"),
        ("business", "business", SeverityNumber.INFO3, "BUSINESS"),
        ("audit", "audit", SeverityNumber.INFO4, "AUDIT"),
        ("warning", "warning", SeverityNumber.WARN, "WARN"),
        ("error", "error", SeverityNumber.ERROR, "ERROR"),
        ("critical", "critical", SeverityNumber.FATAL, "FATAL"),
    ],
)
def test_each_level_reaches_rendered_and_exported_output(method, level, severity, text):
    with LogCapture(log_level="debug") as cap:
        with cap.tracer.start_as_current_span("s"):
            getattr(get_logger("lv"), method)("msg %s", "x")
    (line,) = cap.lines()
    (record,) = cap.records()
    assert line["level"] == level and line["event"] == "msg x"
    jsonschema.validate(line, LOG_LINE_SCHEMA)
    assert record.log_record.severity_number == severity
    assert record.log_record.severity_text == text


def test_level_filtering_including_trading_levels():
    with LogCapture(log_level="audit") as cap:
        log = get_logger("f")
        log.debug("d")
        log.info("i")
        log.business("b")
        log.audit("a")
        log.warning("w")
        log.log(BUSINESS, "b2")
        log.log(AUDIT, "a2")
    assert [line["event"] for line in cap.lines()] == ["a", "w", "a2"]
    assert [r.log_record.body for r in cap.records()] == ["a", "w", "a2"]


def test_filtered_call_is_a_bare_return():
    with LogCapture(log_level="warning") as cap:
        log = get_logger("f")
        log.info("warm")  # caches the bound logger
        assert log.info("x", a=1) is None
        # after the first call the method is looked up on the proxy itself: no bind() per call
        assert "info" in log.__dict__
    assert cap.lines() == []


def test_exception_keeps_type_message_and_stack_in_both_outputs():
    with LogCapture() as cap:
        with cap.tracer.start_as_current_span("s"):
            try:
                raise ValueError("bad price 0")
            except ValueError:
                get_logger("e").exception("order failed", symbol="AAPL")
    (line,) = cap.lines()
    jsonschema.validate(line, LOG_LINE_SCHEMA)
    assert line["exc_type"] == "ValueError" and line["exc_message"] == "bad price 0"
    assert "Traceback" in line["stack"] and "raise ValueError" in line["stack"]
    attrs = dict(cap.records()[0].log_record.attributes)
    assert attrs["exception.type"] == "ValueError"
    assert attrs["exception.message"] == "bad price 0"
    assert "raise ValueError" in attrs["exception.stacktrace"]
    assert cap.records()[0].log_record.severity_number == SeverityNumber.ERROR


def _app_chain(stream):
    return dict(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(stream),
    )


def _check_app_mode(cap, app_out):
    log = structlog.get_logger("app")
    with cap.tracer.start_as_current_span("s") as span:
        log.info("hello", k=1)
        try:
            raise KeyError("missing")
        except KeyError:
            log.exception("failed")
    hello, failed = [json.loads(x) for x in app_out.getvalue().splitlines()]
    assert (hello["trace_id"], hello["span_id"]) == ids(span)
    assert hello["k"] == 1 and hello["level"] == "info" and "timestamp" in hello  # app's processors kept
    assert failed["exc_type"] == "KeyError" and "Traceback" in failed["exception"]
    recs = cap.records()
    assert [r.log_record.body for r in recs] == ["hello", "failed"]
    assert recs[0].log_record.trace_id == span.get_span_context().trace_id
    assert dict(recs[0].log_record.attributes) == {"k": 1}
    assert recs[1].log_record.attributes["exception.type"] == "KeyError"
    assert cap.lines() == []  # the app's renderer, not ours


def test_app_configures_structlog_before_install():
    app_out = io.StringIO()
    structlog.configure(**_app_chain(app_out))
    with LogCapture(reset_structlog=False) as cap:
        processors = structlog.get_config()["processors"]
        assert isinstance(processors[-1], structlog.processors.JSONRenderer)
        _check_app_mode(cap, app_out)
    # uninstall removes our processor and keeps the app's configuration
    assert len(structlog.get_config()["processors"]) == 4


def test_app_configures_structlog_after_install():
    app_out = io.StringIO()
    with LogCapture() as cap:
        structlog.configure(**_app_chain(app_out))
        assert structlog.get_config()["logger_factory"].__class__ is structlog.PrintLoggerFactory
        _check_app_mode(cap, app_out)


def test_app_configure_once_after_install_is_honoured():
    app_out = io.StringIO()
    with LogCapture() as cap:
        structlog.configure_once(**_app_chain(app_out))
        _check_app_mode(cap, app_out)


def test_audit_on_app_wrapper_class_without_trading_levels():
    app_out = io.StringIO()
    with LogCapture() as cap:
        structlog.configure(**_app_chain(app_out), wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
        log = get_logger("app")
        log.audit("who did it", user="u1")
        log.debug("hidden")
    (line,) = [json.loads(x) for x in app_out.getvalue().splitlines()]
    assert line["level"] == "audit" and line["user"] == "u1"
    assert cap.records()[0].log_record.severity_number == SeverityNumber.INFO4


def test_console_format_is_readable_and_has_ids():
    with LogCapture(log_format="console") as cap:
        with cap.tracer.start_as_current_span("s") as span:
            get_logger("c").audit("human line", qty=3)
    text = cap.text()
    assert "human line" in text and "audit" in text and ids(span)[0] in text
    assert not text.lstrip().startswith("{")


def test_auto_format_is_json_when_not_a_tty():
    with LogCapture(log_format="auto") as cap:
        get_logger("c").info("x")
    assert cap.lines()[0]["event"] == "x"


def test_no_export_when_provider_has_no_processors_but_rendering_still_works():
    with LogCapture(export=False) as cap:
        proc = [p for p in structlog.get_config()["processors"] if hasattr(p, "emitter")][0]
        assert proc.emitter.active is False
        with cap.tracer.start_as_current_span("s"):
            get_logger("n").info("x")
    assert cap.lines()[0]["trace_id"]


def test_install_is_idempotent():
    with LogCapture() as cap:
        before = list(structlog.get_config()["processors"])
        handlers = list(logging.getLogger().handlers)
        logs.install(cap.settings, cap.provider, stream=cap.stream, stdlib_output=True)
        assert structlog.get_config()["processors"] == before
        assert logging.getLogger().handlers == handlers


def test_big_ints_and_odd_values_do_not_raise():
    with LogCapture() as cap:
        get_logger("x").info("fill", qty=2**70, obj=object(), nested={1: {2, 3}})
    (line,) = cap.lines()
    assert line["qty"] == str(2**70)
    assert orjson.loads(orjson.dumps(line))


def test_contextvars_flow_into_asyncio_tasks_and_helper_threads():
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from otel_trading.logs import start_thread, submit

    with LogCapture() as cap:
        log = get_logger("ctx")
        structlog.contextvars.bind_contextvars(strategy="mom", request="r1")
        with cap.tracer.start_as_current_span("s") as span:

            async def main():
                await asyncio.create_task(asyncio.sleep(0, result=log.info("in task")))

            asyncio.run(main())
            start_thread(log.info, "in thread").join()
            with ThreadPoolExecutor(1) as pool:
                submit(pool, log.info, "in pool").result()
    lines = cap.lines()
    assert [line["event"] for line in lines] == ["in task", "in thread", "in pool"]
    for line in lines:
        assert line["strategy"] == "mom" and line["request"] == "r1"
        assert line["trace_id"] == ids(span)[0]


def test_get_logger_used_before_app_configures_follows_the_new_config():
    app_out = io.StringIO()
    with LogCapture() as cap:
        log = get_logger("early")
        log.info("ours")
        structlog.configure(**_app_chain(app_out))
        log.info("app's")
    assert [line["event"] for line in cap.lines()] == ["ours"]
    assert json.loads(app_out.getvalue())["event"] == "app's"


def test_correlation_id_set_with_trading_propagation_helper():
    from otel_trading.trading import propagation

    assert propagation.CORRELATION_BAGGAGE_KEY == logs.CORRELATION_BAGGAGE_KEY
    with LogCapture() as cap:
        with propagation.correlation("trade-7"):
            get_logger("x").info("in")
    assert cap.lines()[0]["correlation_id"] == "trade-7"


def test_a_failing_processor_step_never_breaks_the_app(monkeypatch, capsys):
    from otel_trading.logs import structlog_setup

    def broken(span):
        raise RuntimeError("bug")

    with LogCapture() as cap:
        monkeypatch.setattr(structlog_setup, "_span_entry", broken)
        with cap.tracer.start_as_current_span("s"):
            get_logger("x").info("still logged")
    assert cap.lines()[0]["event"] == "still logged"
    assert "log processor failed" in capsys.readouterr().err


def test_app_configure_without_processors_still_gets_correlation():
    with LogCapture() as cap:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        procs = structlog.get_config()["processors"]
        assert isinstance(procs[-1], structlog.dev.ConsoleRenderer)  # structlog's default chain, not ours
        assert any(isinstance(p, logs.structlog_setup.TradingProcessor) for p in procs)
        with cap.tracer.start_as_current_span("s"):
            structlog.get_logger("x").info("hi")
    assert cap.records()[0].log_record.trace_id


def test_auto_format_is_console_on_a_tty():
    from otel_trading.logs.rendering import resolve_format

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert resolve_format("auto", Tty()) == "console"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", Tty()) == "json"
    with LogCapture(log_format="auto") as cap:
        pass
    tty = Tty()
    logs.install(cap.settings, cap.provider, stream=tty, stdlib_output=True)
    try:
        get_logger("t").info("on a tty")
        logging.getLogger("t.std").warning("std on a tty")
    finally:
        logs.uninstall()
    text = tty.getvalue()
    assert "on a tty" in text and "std on a tty" in text and "{" not in text


def test_structlog_get_logger_is_patched_only_while_installed():
    original = structlog.get_logger
    with LogCapture(log_level="info") as cap:
        log = structlog.get_logger("fast")
        assert isinstance(log, structlog._config.BoundLoggerLazyProxy)
        log.info("warm")
        log.debug("filtered")
        assert "debug" in log.__dict__  # method looked up once
    assert structlog.get_logger is original
    assert [line["event"] for line in cap.lines()] == ["warm"]


def test_app_chain_with_redaction_off_keeps_exc_info_for_its_renderer():
    app_out = io.StringIO()
    with LogCapture(redact=False) as cap:
        structlog.configure(
            processors=[structlog.processors.add_log_level, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
            logger_factory=structlog.PrintLoggerFactory(app_out),
        )
        try:
            raise OSError("disk token=abc123secret")
        except OSError:
            structlog.get_logger("a").exception("io failed")
    line = json.loads(app_out.getvalue())
    assert "abc123secret" in line["exception"] and line["exc_type"] == "OSError"  # the app's format_exc_info ran
    attrs = cap.records()[0].log_record.attributes
    assert attrs["exception.type"] == "OSError" and "Traceback" in attrs["exception.stacktrace"]


def test_async_methods_including_trading_levels():
    import asyncio

    with LogCapture() as cap:
        log = get_logger("async")
        structlog.contextvars.bind_contextvars(desk="d1")

        async def main():
            with cap.tracer.start_as_current_span("s"):
                await log.ainfo("a-info")
                await log.aaudit("a-audit", who="me")
                await log.abusiness("a-biz")

        asyncio.run(main())
    lines = cap.lines()
    assert [(line["event"], line["level"]) for line in lines] == [("a-info", "info"), ("a-audit", "audit"), ("a-biz", "business")]
    assert all(line["desk"] == "d1" and line["trace_id"] for line in lines)


class _PassingProcessor:
    """Like the redacting processor with OTEL_LOGS_EXPORTER=none: passes otel-trading's records untouched."""

    skips_redacted = True

    def __init__(self) -> None:
        self.seen = 0

    def on_emit(self, log_record) -> None:
        self.seen += 1

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@pytest.mark.parametrize("chain", ["default", "app"])
def test_no_otel_record_is_built_while_only_passing_processors_would_see_it_then_exported_once_one_is_added(chain):
    from opentelemetry.sdk._logs.export import (
        InMemoryLogRecordExporter,
        SimpleLogRecordProcessor,
    )

    app_out = io.StringIO()
    with LogCapture(export=False) as cap:
        if chain == "app":
            structlog.configure(**_app_chain(app_out))
        passing = _PassingProcessor()
        cap.provider.add_log_record_processor(passing)
        log = get_logger("late")
        log.info("before")
        exporter = InMemoryLogRecordExporter()
        cap.provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        with cap.tracer.start_as_current_span("s") as span:
            log.info("after", qty=1)
    assert passing.seen == 1
    (record,) = [r.log_record for r in exporter.get_finished_logs()]
    assert (record.body, record.trace_id, dict(record.attributes).get("qty")) == ("after", span.get_span_context().trace_id, 1)
    lines = [json.loads(x) for x in app_out.getvalue().splitlines()] if chain == "app" else cap.lines()
    assert [line["event"] for line in lines] == ["before", "after"] and lines[1]["trace_id"] == ids(span)[0]
