"""SIGTERM and normal exit flush all three signals; a hung collector cannot hold the exit past the bound."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from support import BIN, otlp_env, run_python

SLOW = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_BLRP_SCHEDULE_DELAY": "60000", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}

APP = """
import logging, os, sys, time
from opentelemetry import metrics, trace
from otel_trading.trading.tracing import order_span
tracer = trace.get_tracer("bot")
for i in range(500):
    with order_span("submit", order_id=f"o-{i}", side="buy"):
        logging.getLogger("bot").warning("order %s", i)
metrics.get_meter("bot").create_counter("bot.exits").add(1, {"how": sys.argv[1]})
print("ready", flush=True)
if sys.argv[1] == "sigterm":
    time.sleep(60)
sys.exit(4)
"""


def _env(otlp, **extra):
    return {**otlp_env(otlp), **SLOW, **extra}


def _metric_names(receiver) -> set[str]:
    return {m.name for m in receiver.metrics()}


def test_sigterm_flushes_spans_logs_and_metrics(otlp):
    process = subprocess.Popen(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "-c", APP, "sigterm"],
        env=_env(otlp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for line in process.stdout:  # the app's log lines come first on stdout
        if line.strip() == "ready":
            break
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    stderr = process.stderr.read()
    assert "Traceback" not in stderr, stderr[-3000:]
    spans = otlp.wait_for(lambda r: r.spans() if len(r.spans()) >= 500 else None, timeout=10)
    assert sorted(s.attributes["trading.order.id"] for s in spans if s.name == "submit") == sorted(f"o-{i}" for i in range(500))
    logs = otlp.wait_for(lambda r: r.logs() if len(r.logs()) >= 500 else None, timeout=10)
    assert len([log for log in logs if str(log.body).startswith("order ")]) == 500
    assert "bot.exits" in otlp.wait_for(_metric_names, timeout=10)


def test_normal_exit_flushes_everything_and_keeps_the_exit_code(otlp):
    result = run_python(APP, _env(otlp), args=["exit"])
    assert result.returncode == 4, result.stderr[-3000:]
    assert len([s for s in otlp.spans() if s.name == "submit"]) == 500  # all there when the process ended
    assert len([log for log in otlp.logs() if str(log.body).startswith("order ")]) == 500
    assert "bot.exits" in _metric_names(otlp)


@pytest.mark.slow
def test_hung_collector_with_all_signals_buffered_cannot_hold_the_exit(otlp):
    otlp.delay = 30  # every export call hangs
    started = time.monotonic()
    result = run_python(APP, _env(otlp, OTEL_TRADING_SHUTDOWN_TIMEOUT="1"), args=["exit"], timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 4, result.stderr[-3000:]  # the app's own exit status survives
    assert elapsed < 20  # bounded by OTEL_TRADING_SHUTDOWN_TIMEOUT (1 s), not by the collector's 30 s per call
