"""End to end: opentelemetry-instrument in a subprocess, loopback OTLP receiver, real SDK and exporters.

Logs must carry the ids of the span they were written in, in the rendered line and in the OTLP record,
for structlog (configured by the app before instrumentation starts, after, and never) and stdlib logging.
"""

from __future__ import annotations

import json

import pytest

PRELUDE = """
import logging, sys, structlog
from opentelemetry import trace
tracer = trace.get_tracer("test")
"""

BODY = """
log = structlog.get_logger("app")
with tracer.start_as_current_span("order", attributes={"trading.symbol": "AAPL"}) as span:
    ctx = span.get_span_context()
    print("IDS", format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"), file=sys.stderr, flush=True)
    log.info("structlog inside", qty=5, password="hunter2")
    logging.getLogger("std").warning("stdlib inside %s", "x", extra={"venue": "XNAS"})
    try:
        raise ValueError("bad token=abc123secret")
    except ValueError:
        log.exception("structlog failed")
log.info("structlog outside")
"""

APP_CONFIG = """
structlog.configure(processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                                structlog.processors.JSONRenderer()])
"""


def _ids(proc):
    for line in proc.stderr.splitlines():
        if line.startswith("IDS "):
            return line.split()[1:]
    raise AssertionError(f"no ids in stderr: {proc.stderr}")


def _json_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _check_exported(otlp, trace_id, span_id):
    otlp.wait_for(lambda r: len(r.logs()) >= 4, timeout=15)
    bodies = sorted(rec.body for rec in otlp.logs())
    assert bodies == sorted(["structlog inside", "stdlib inside x", "structlog failed", "structlog outside"])  # each once
    logs = {rec.body: rec for rec in otlp.logs()}
    for body in ("structlog inside", "stdlib inside x", "structlog failed"):
        rec = logs[body]
        assert (rec.trace_id, rec.span_id) == (trace_id, span_id), body
        assert rec.resource["service.name"] == "test-bot"
    assert logs["structlog inside"].attributes["qty"] == 5
    assert logs["structlog inside"].attributes["password"] == "***"
    assert logs["structlog inside"].attributes["symbol"] == "AAPL"
    assert logs["stdlib inside x"].attributes["venue"] == "XNAS"
    failed = logs["structlog failed"].attributes
    assert failed["exception.type"] == "ValueError" and failed["exception.message"] == "bad token=***"
    assert "abc123secret" not in failed["exception.stacktrace"] and "Traceback" in failed["exception.stacktrace"]
    assert logs["structlog outside"].trace_id == ""
    return logs


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_structlog_never_configured(run_instrumented, otlp, protocol):
    proc = run_instrumented(PRELUDE + BODY, protocol=protocol)
    assert proc.returncode == 0, proc.stderr
    trace_id, span_id = _ids(proc)
    lines = {line["event"]: line for line in _json_lines(proc.stdout)}
    inside = lines["structlog inside"]
    assert (inside["trace_id"], inside["span_id"]) == (trace_id, span_id)
    assert inside["service"] == "test-bot" and inside["logger"] == "app" and inside["level"] == "info"
    assert inside["timestamp"].endswith("Z") and inside["password"] == "***" and inside["symbol"] == "AAPL"
    std = lines["stdlib inside x"]
    assert (std["trace_id"], std["span_id"], std["level"], std["logger"]) == (trace_id, span_id, "warning", "std")
    failed = lines["structlog failed"]
    assert failed["exc_type"] == "ValueError" and "Traceback" in failed["stack"] and "abc123secret" not in failed["stack"]
    assert "trace_id" not in lines["structlog outside"]
    _check_exported(otlp, trace_id, span_id)
    spans = otlp.wait_for(lambda r: r.spans())
    assert spans[0].trace_id == trace_id


def test_structlog_configured_before_instrumentation(run_instrumented, otlp):
    # the app configures structlog, then starts auto-instrumentation itself (what opentelemetry-instrument runs)
    start = "from opentelemetry.instrumentation.auto_instrumentation import initialize\ninitialize()\n"
    proc = run_instrumented("import structlog\n" + APP_CONFIG + start + PRELUDE + BODY, instrumented=False)
    assert proc.returncode == 0, proc.stderr
    _check_app_configured(proc, otlp)


def test_structlog_configured_after_instrumentation(run_instrumented, otlp):
    proc = run_instrumented(PRELUDE + APP_CONFIG + BODY)
    assert proc.returncode == 0, proc.stderr
    _check_app_configured(proc, otlp)


def test_structlog_is_wired_when_the_app_first_imports_it(run_instrumented, otlp):
    # not loaded at start-up (an app logging through stdlib only never pays for it); the app's first
    # structlog import, here of a submodule, wires it before the app's configure() runs
    check = "import sys\nprint('STRUCTLOG LOADED AT START', 'structlog' in sys.modules, file=sys.stderr)\n"
    first_import = "from structlog.processors import JSONRenderer\n"
    proc = run_instrumented(check + first_import + PRELUDE + APP_CONFIG + BODY)
    assert proc.returncode == 0, proc.stderr
    assert "STRUCTLOG LOADED AT START False" in proc.stderr
    _check_app_configured(proc, otlp)


def _check_app_configured(proc, otlp):
    trace_id, span_id = _ids(proc)
    lines = {line["event"]: line for line in _json_lines(proc.stdout)}
    inside = lines["structlog inside"]
    assert (inside["trace_id"], inside["span_id"]) == (trace_id, span_id)
    assert set(inside) >= {"level", "timestamp", "qty"} and inside["password"] == "***"
    assert "service" not in inside  # the app's chain: we only add correlation fields
    failed = lines["structlog failed"]
    assert failed["exc_type"] == "ValueError" and "Traceback" in failed["exception"]
    _check_exported(otlp, trace_id, span_id)


def test_stdlib_app_logging_config_with_ids_in_its_own_format(run_instrumented, otlp):
    code = """
import logging, sys
from opentelemetry import trace
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(levelname)s [%(trace_id)s/%(span_id)s] %(message)s")
with trace.get_tracer("t").start_as_current_span("s") as span:
    ctx = span.get_span_context()
    print("IDS", format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"), file=sys.stderr, flush=True)
    logging.getLogger("app").info("hello")
    logging.getLogger("app").log(23, "audited")
"""
    proc = run_instrumented(code)
    assert proc.returncode == 0, proc.stderr
    trace_id, span_id = _ids(proc)
    assert f"INFO [{trace_id}/{span_id}] hello" in proc.stdout
    assert f"AUDIT [{trace_id}/{span_id}] audited" in proc.stdout
    otlp.wait_for(lambda r: len(r.logs()) >= 2)
    recs = {r.body: r for r in otlp.logs()}
    assert (recs["hello"].trace_id, recs["hello"].span_id) == (trace_id, span_id)
    assert (recs["audited"].severity_number, recs["audited"].severity_text) == (12, "AUDIT")


def test_levels_and_format_by_env(run_instrumented, otlp):
    code = """
from otel_trading.logs import get_logger
log = get_logger("lv")
log.info("info hidden")
log.business("biz hidden")
log.audit("audit shown")
log.error("error shown")
"""
    proc = run_instrumented(code, OTEL_TRADING_LOG_LEVEL="audit", OTEL_TRADING_LOG_FORMAT="json")
    assert proc.returncode == 0, proc.stderr
    assert [line["event"] for line in _json_lines(proc.stdout)] == ["audit shown", "error shown"]
    otlp.wait_for(lambda r: len(r.logs()) >= 2)
    assert sorted((r.body, r.severity_number) for r in otlp.logs()) == [("audit shown", 12), ("error shown", 17)]


def test_logs_exporter_none_still_renders_ids(run_instrumented, otlp):
    proc = run_instrumented(PRELUDE + BODY, OTEL_LOGS_EXPORTER="none")
    assert proc.returncode == 0, proc.stderr
    trace_id, _ = _ids(proc)
    assert {line["event"]: line for line in _json_lines(proc.stdout)}["structlog inside"]["trace_id"] == trace_id
    otlp.wait_for(lambda r: r.spans())
    assert otlp.logs() == []


def test_audit_file_channel_by_env(run_instrumented, otlp, tmp_path):
    code = """
import logging, structlog
from opentelemetry import trace
from otel_trading.logs import get_logger, AUDIT
with trace.get_tracer("t").start_as_current_span("s"):
    get_logger("desk").audit("limit raised", user="jdoe", api_key="k")
    logging.getLogger("risk").log(AUDIT, "std audit")
    get_logger("desk").info("not audited")
"""
    proc = run_instrumented(code, OTEL_TRADING_LOG_DIR=str(tmp_path), OTEL_TRADING_LOG_FILES="audit=audit")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [line["event"] for line in lines] == ["limit raised", "std audit"]
    assert lines[0]["api_key"] == "***" and len(lines[0]["trace_id"]) == 32 and lines[0]["service"] == "test-bot"
    assert lines[1]["level"] == "audit" and lines[1]["trace_id"] == lines[0]["trace_id"]
