"""Forks under a busy writer never hang the child (issue 11, section 3).

An app that knows nothing of otel_trading, launched by ``opentelemetry-instrument`` with
per-channel log files, keeps two threads logging (structlog and stdlib: stdout, the
channel file, OTLP) while the main thread forks 200 times. A fork can land while a
writer holds any of the locks on that path (ours, structlog's per-file lock, the stdout
buffer's); every child must still log, make a span and exit within 10 s.
"""

from __future__ import annotations

import json
import time

import pytest
from support import otlp_env, run_python

APP = """
import logging, os, signal, sys, threading, time
import structlog
from opentelemetry import trace

log = structlog.get_logger("trading")
std = logging.getLogger("trading.std")
tracer = trace.get_tracer("storm")
stop = threading.Event()

def writer():
    n = 0
    while not stop.is_set():
        log.info("busy", n=n)
        std.warning("busy std %d", n)
        n += 1

threads = [threading.Thread(target=writer, daemon=True) for _ in range(2)]
for t in threads:
    t.start()
time.sleep(0.2)
hung = exited = 0
for i in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        with tracer.start_as_current_span("child"):
            log.info("child", i=i)
            std.warning("child std %d", i)
        os._exit(0)
    deadline = time.monotonic() + 10
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            exited += 1
            break
        if time.monotonic() > deadline:
            hung += 1
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.001)
stop.set()
for t in threads:
    t.join(5)
print(f"RESULT exited={exited} hung={hung}", file=sys.stderr, flush=True)
"""


@pytest.mark.slow
def test_200_forks_under_busy_writers_all_children_exit(otlp, tmp_path):
    env = otlp_env(otlp, OTEL_TRADING_LOG_FILES="trading=info", OTEL_TRADING_LOG_DIR=str(tmp_path / "logs"))
    started = time.monotonic()
    result = run_python(APP, env, args=("200",), timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RESULT exited=200 hung=0" in result.stderr, (result.stderr[-3000:], time.monotonic() - started)
    lines = [json.loads(line) for line in (tmp_path / "logs" / "trading.log").read_text().splitlines()]
    children = {e["i"] for e in lines if e["event"] == "child"}
    assert children == set(range(200))  # every child's line reached the channel file, whole
    assert "Traceback" not in result.stderr
