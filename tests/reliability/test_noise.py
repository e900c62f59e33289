"""The SDK's own complaints never reach the app's stdout (issue 11, section 1): one
``otel-trading: ...`` line on stderr per problem, no traceback; ``doctor`` shows no secret."""

from __future__ import annotations

import json
import socket
import subprocess

from support import BIN, clean_env, run_python

APP = """
import structlog
from opentelemetry import trace
with trace.get_tracer("t").start_as_current_span("s") as span:
    span.set_attribute("bad", object())  # the SDK warns (opentelemetry.attributes) and drops it
    structlog.get_logger("app").info("app line")
print('{"app": "own output"}', flush=True)
"""


PLAIN_APP = """
from opentelemetry import trace
with trace.get_tracer("t").start_as_current_span("s"):
    pass
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sdk_warnings_and_export_failures_go_to_stderr_as_single_lines_never_stdout():
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://user:hunter2@127.0.0.1:{_closed_port()}",
        OTEL_EXPORTER_OTLP_TIMEOUT="1000",
        OTEL_TRADING_SHUTDOWN_TIMEOUT="3",
        OTEL_BSP_SCHEDULE_DELAY="50",
        OTEL_METRICS_EXPORTER="none",
    )
    result = run_python(APP, env)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():  # only the app's own output and its JSON log lines
        assert "app" in json.loads(line) or json.loads(line)["event"] == "app line"
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("otel-trading: ") for line in lines), result.stderr
    assert any(line.startswith("otel-trading: opentelemetry.attributes: Invalid type") for line in lines), result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_an_unknown_resource_detector_is_one_line_not_a_traceback():
    env = clean_env(OTEL_EXPERIMENTAL_RESOURCE_DETECTORS="otel,nope", OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    result = run_python(PLAIN_APP, env)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "otel-trading: OTEL_EXPERIMENTAL_RESOURCE_DETECTORS='otel,nope' is invalid: accepted a comma-separated list of: "
        "host, os, otel, process, service_instance; using default host,os,process,otel"
    ]


def test_an_unknown_propagator_does_not_stop_opentelemetry_instrument():
    env = clean_env(OTEL_PROPAGATORS="tracecontext,nope", OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    result = run_python(PLAIN_APP, env)
    assert result.returncode == 0, result.stderr  # opentelemetry.propagate raises at import on an unknown name
    assert result.stderr.startswith("otel-trading: OTEL_PROPAGATORS='tracecontext,nope' is invalid")
    assert "Traceback" not in result.stderr


def test_doctor_masks_endpoint_passwords_and_resource_tokens():
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://bot:hunter2@127.0.0.1:{_closed_port()}/?sig=abcdef123",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=prod,api_token=tok-Zq8secret",
        OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer hdr-Zq8secret",
    )
    result = subprocess.run([str(BIN / "otel-trading"), "doctor"], env=env, capture_output=True, text=True, timeout=60)
    out = result.stdout + result.stderr
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in out and "bot:***@127.0.0.1" in out
    assert "hunter2" not in out and "abcdef123" not in out and "tok-Zq8secret" not in out and "hdr-Zq8secret" not in out
