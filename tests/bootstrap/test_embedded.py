"""The embedded default: no collector configured and none running -> local OTLP/JSON files, said once, no delay."""

from __future__ import annotations

import socket
import time

import pytest
from support import clean_env, run_python

from otel_trading.export import localfiles

APP = """
import logging
from opentelemetry import trace
with trace.get_tracer("bot").start_as_current_span("order.submit", attributes={"trading.order.id": "O-1"}):
    logging.getLogger("bot").warning("sent")
"""
DEMO = "import sys; from otel_trading.demo import main; sys.exit(main(sys.argv[1:]))"
FALLBACK = "no OTLP endpoint configured and no collector at localhost:4317"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("localhost", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_no_endpoint_and_no_collector_writes_local_files_and_says_where(tmp_path):
    env = clean_env(OTEL_TRADING_LOCAL_DIR=str(tmp_path / "files"), OTEL_SERVICE_NAME="files-bot")
    started = time.monotonic()
    result = run_python(APP, env)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    if _listening(4317):  # a collector runs on this machine: OTLP, as configured by default
        assert FALLBACK not in result.stderr
        return
    assert result.stderr.count(FALLBACK) == 1 and "otel-trading traces" in result.stderr  # one line, how to look
    assert "Transient error" not in result.stderr + result.stdout  # no SDK retry noise
    assert elapsed < 10  # no retries, no exit delay (start-up included)
    spans = localfiles.read_spans(tmp_path / "files")
    assert [s["name"] for s in spans] == ["order.submit"] and spans[0]["service"] == "files-bot"
    assert [r["body"] for r in localfiles.read_logs(tmp_path / "files")] == ["sent"]


@pytest.mark.slow
def test_a_collector_answering_at_the_default_endpoint_gets_otlp(tmp_path):
    with socket.socket() as listener:  # something accepts connections on the default OTLP/HTTP port
        try:
            listener.bind(("127.0.0.1", 4318))
        except OSError:
            pass  # already taken: something answers there anyway
        else:
            listener.listen()
        env = clean_env(OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_TRADING_LOCAL_DIR=str(tmp_path / "files"), OTEL_TRADING_SHUTDOWN_TIMEOUT="1")
        result = run_python("pass", env)
    assert result.returncode == 0, result.stderr
    assert "no OTLP endpoint configured" not in result.stderr
    assert not (tmp_path / "files").exists()


def test_an_explicit_endpoint_is_used_even_when_nothing_answers(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}", OTEL_METRICS_EXPORTER="none", OTEL_TRADING_LOCAL_DIR=str(tmp_path / "files"), OTEL_TRADING_SPOOL_DIR=str(tmp_path / "spool"))
    result = run_python(APP, env)
    assert result.returncode == 0, result.stderr
    assert "no OTLP endpoint configured" not in result.stderr and not (tmp_path / "files").exists()
    assert list((tmp_path / "spool").glob("*.sqlite"))  # OTLP as asked; the spool keeps it for when the collector runs


@pytest.mark.slow
def test_fallback_can_be_turned_off(tmp_path):
    env = clean_env(OTEL_TRADING_LOCAL_FALLBACK="false", OTEL_TRADING_LOCAL_DIR=str(tmp_path / "files"), OTEL_TRADING_SHUTDOWN_TIMEOUT="1")
    result = run_python("pass", env)
    assert result.returncode == 0 and "no OTLP endpoint configured" not in result.stderr
    assert not (tmp_path / "files").exists()


@pytest.mark.slow
def test_the_demo_under_opentelemetry_instrument_without_a_collector_exits_promptly(tmp_path):
    env = clean_env(OTEL_TRADING_LOCAL_DIR=str(tmp_path / "files"))
    started = time.monotonic()
    result = run_python(DEMO, env, args=["--duration", "1"], cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert not ("unsent telemetry is dropped" in result.stderr and "telemetry went to the OTLP collector" in result.stdout)
    assert "did not finish within" not in result.stderr
    if _listening(4317):
        return
    assert elapsed < 1 + 10  # the run, start-up, and no exit delay (the shutdown bound is 5 s; it used to take ~25 s)
    assert "== Files" in result.stdout and "telemetry went to" not in result.stdout  # the local report, from the files
    assert localfiles.read_spans(tmp_path / "files")
