"""Shutdown and process life: exit, SIGTERM, fork, multiprocessing, configure()."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import grpc
import pytest
from support import BIN, otlp_env, run_python

SLOW_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_BLRP_SCHEDULE_DELAY": "60000", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}


def sigterm_when_ready(app: str, env: dict) -> subprocess.Popen:
    """Start ``app`` under the wrapper, wait for it to print "ready", send it SIGTERM."""
    process = subprocess.Popen(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "-c", app],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    return process


def test_buffered_spans_are_flushed_at_exit_and_the_exit_status_is_kept(otlp):
    app = """
import sys, logging
from opentelemetry import trace
with trace.get_tracer("bot").start_as_current_span("last-order"):
    logging.getLogger("bot").warning("bye")
sys.exit(3)
"""
    result = run_python(app, otlp_env(otlp, **SLOW_EXPORT))
    assert result.returncode == 3, result.stderr
    assert [s.name for s in otlp.spans()] == ["last-order"]  # arrived before the process ended
    assert [str(l.body) for l in otlp.logs()] == ["bye"]


def test_sigterm_flushes_and_the_process_still_dies_by_sigterm(otlp):
    app = """
import time
from opentelemetry import trace
with trace.get_tracer("bot").start_as_current_span("before-sigterm"):
    pass
print("ready", flush=True)
time.sleep(60)
"""
    process = sigterm_when_ready(app, otlp_env(otlp, **SLOW_EXPORT))
    assert process.wait(timeout=30) == -signal.SIGTERM
    assert [s.name for s in otlp.spans()] == ["before-sigterm"]


BLOCKED_IN_C = """
import signal, threading, time
from opentelemetry import trace
with trace.get_tracer("bot").start_as_current_span("before-sigterm"):
    pass
bystander = threading.Thread(target=time.sleep, args=(60,), daemon=True)
bystander.start()
blocked = threading.Lock()
blocked.acquire()
threading.Timer(0.3, signal.pthread_kill, (bystander.ident, signal.SIGTERM)).start()
print("ready", flush=True)
blocked.acquire()
"""
IN_A_FORKED_CHILD = """
import os, sys
pid = os.fork()
if pid == 0:
    exec(BLOCKED_IN_C)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status), flush=True)
"""


@pytest.mark.parametrize("where", ["process", "forked child"])
def test_sigterm_ends_a_process_whose_main_thread_is_blocked_in_c(otlp, where):
    # A SIGTERM that lands just before the main thread blocks in a lock (a pool worker going back to
    # its task queue while the pool terminates) only marks the signal: the Python handler runs in the
    # main thread, which stays blocked, and pool.terminate() then waited for that worker forever.
    # Sending the signal to another thread while the main thread is blocked makes that state on purpose.
    app = BLOCKED_IN_C if where == "process" else f"BLOCKED_IN_C = {BLOCKED_IN_C!r}\n{IN_A_FORKED_CHILD}"
    process = subprocess.Popen(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "-c", app],
        env=otlp_env(otlp, **SLOW_EXPORT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # the forked child too is stopped if it hangs
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        out, err = process.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    if where == "process":
        assert process.returncode == -signal.SIGTERM, err
    else:
        assert (process.returncode, out.strip()) == (0, f"child {-signal.SIGTERM}"), err
    assert [s.name for s in otlp.spans()] == ["before-sigterm"]


def test_an_asyncio_apps_own_sigterm_handling_keeps_working_when_it_configures_us_later(otlp):
    # asyncio's loop learns of a signal through the wake-up fd it set; configure() must not take it
    app = """
import asyncio, signal, sys
async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    import otel_trading
    otel_trading.configure()
    print("ready", flush=True)
    await stop.wait()
    print("stopped gracefully", flush=True)
asyncio.run(main())
"""
    process = subprocess.Popen(
        [sys.executable, "-c", app], env=otlp_env(otlp, **SLOW_EXPORT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.communicate()
    assert (process.returncode, out.strip()) == (0, "stopped gracefully"), err


def test_sigterm_still_ends_the_process_when_the_flush_itself_fails(otlp):
    # the handler runs wherever the main thread was; an error in its flush (here: no thread can be
    # started; in life also a reentrant write to a stderr the main thread was writing) must not
    # escape into the app's code and leave the process running
    app = """
import time
import otel_trading.bootstrap.configure as configure
from opentelemetry import trace
def broken(*args):
    raise RuntimeError("can't start new thread")
configure._bounded = broken
with trace.get_tracer("bot").start_as_current_span("before-sigterm"):
    pass
print("ready", flush=True)
time.sleep(60)
"""
    process = sigterm_when_ready(app, otlp_env(otlp, **SLOW_EXPORT))
    try:
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGTERM, err[-2000:]
    assert "Traceback" not in err  # nothing escaped into the app's code
    assert "the flush on SIGTERM failed (RuntimeError(\"can't start new thread\")): what was still buffered is lost" in err


def test_sigterm_runs_the_apps_own_handler_after_flushing(otlp):
    app = """
import signal, sys, time
from opentelemetry import trace
def stop(signum, frame):
    print("app handler", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)   # installed after ours: atexit still flushes
with trace.get_tracer("bot").start_as_current_span("graceful"):
    pass
print("ready", flush=True)
time.sleep(60)
"""
    process = sigterm_when_ready(app, otlp_env(otlp, **SLOW_EXPORT))
    assert process.wait(timeout=30) == 0
    assert "app handler" in process.stdout.read()
    assert [s.name for s in otlp.spans()] == ["graceful"]


def test_sigterm_during_the_exit_flush_lets_it_finish_and_report(otlp):
    # a multiprocessing pool sends SIGTERM to workers that are already running their exit flush;
    # the handler waited for that flush (in the same thread: for itself) until the timeout, then
    # killed the process: its spans were lost and no exit line said so
    otlp.status = grpc.StatusCode.UNAVAILABLE  # nothing is delivered: the exit line must say where the span went
    app = """
import os, signal, threading, time
from opentelemetry import trace
with trace.get_tracer("bot").start_as_current_span("last-order"):
    pass

def sigterm_once_the_exit_flush_runs():
    while not any(t.name.startswith("otel-trading-shutdown") for t in threading.enumerate()):
        time.sleep(0.001)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=sigterm_once_the_exit_flush_runs, daemon=True).start()
"""
    result = run_python(app, otlp_env(otlp, OTEL_TRADING_SHUTDOWN_TIMEOUT="1", **SLOW_EXPORT))
    assert result.returncode == 0, result.stderr
    assert "traces at exit: 1 spans produced, 0 delivered, 1 spooled" in result.stderr


@pytest.mark.slow
def test_hung_collector_cannot_hold_the_exit_past_the_bound(otlp):
    otlp.delay = 30  # accepts the connection, never answers in time
    app = """
from opentelemetry import trace
with trace.get_tracer("bot").start_as_current_span("stuck"):
    pass
"""
    started = time.monotonic()
    result = run_python(app, otlp_env(otlp, OTEL_TRADING_SHUTDOWN_TIMEOUT="1", **SLOW_EXPORT))
    elapsed = time.monotonic() - started
    assert result.returncode == 0
    assert "flush did not finish within 1s (OTEL_TRADING_SHUTDOWN_TIMEOUT)" in result.stderr
    assert elapsed < 25  # far below the 30 s the receiver would hold it; the bound itself is 1 s


def test_fork_and_multiprocessing_children_export_their_own_spans(otlp):
    app = """
import multiprocessing, os
from opentelemetry import trace
tracer = trace.get_tracer("bot")

def work(n):
    with tracer.start_as_current_span(f"mp-child-{n}"):
        pass

with tracer.start_as_current_span("parent"):
    pass
pid = os.fork()
if pid == 0:
    with tracer.start_as_current_span("forked-child"):
        pass
    import sys; sys.exit(0)
os.waitpid(pid, 0)
ctx = multiprocessing.get_context("fork")
procs = [ctx.Process(target=work, args=(i,)) for i in range(2)]
[p.start() for p in procs]
[p.join() for p in procs]
"""
    result = run_python(app, otlp_env(otlp, **SLOW_EXPORT))
    assert result.returncode == 0, result.stderr
    names = otlp.wait_for(lambda r: sorted(s.name for s in r.spans()) if len(r.spans()) >= 4 else None)
    assert names == ["forked-child", "mp-child-0", "mp-child-1", "parent"]  # each once: no duplicated queue


@pytest.mark.slow
def test_multiprocessing_imported_before_configure_children_and_grandchildren_flush_once(otlp):
    """otel-trading does not import multiprocessing itself (every LogRecord would ask it for the process
    name); an app that imported it first, and the children those children start, still flush on exit."""
    app = """
import multiprocessing.util
import otel_trading
from opentelemetry import trace
otel_trading.configure(service_name="mp-bot")
tracer = trace.get_tracer("bot")

def grandchild():
    with tracer.start_as_current_span("grandchild"):
        pass

def child():
    with tracer.start_as_current_span("child"):
        pass
    p = multiprocessing.get_context("fork").Process(target=grandchild)
    p.start()
    p.join()

p = multiprocessing.get_context("fork").Process(target=child)
p.start()
p.join()
"""
    result = run_python(app, otlp_env(otlp, **SLOW_EXPORT), instrumented=False)
    assert result.returncode == 0, result.stderr
    names = otlp.wait_for(lambda r: sorted(s.name for s in r.spans()) if len(r.spans()) >= 2 else None)
    assert names == ["child", "grandchild"]


def test_configure_without_the_wrapper_is_idempotent_and_flushes(otlp):
    app = """
import otel_trading, structlog
from opentelemetry import trace
first = otel_trading.configure(service_name="configured-bot", desk="rates")
second = otel_trading.configure(service_name="ignored")
assert first is second and first.settings.service_name == "configured-bot"
with trace.get_tracer("bot").start_as_current_span("manual"):
    structlog.get_logger("bot").info("inside")
assert first.force_flush()
print("flushed")
"""
    result = run_python(app, otlp_env(otlp, OTEL_SERVICE_NAME="env-name", **SLOW_EXPORT), instrumented=False)
    assert result.returncode == 0, result.stderr
    assert "flushed" in result.stdout and "already configured; ignoring configure(service_name=...)" in result.stderr
    span = otlp.spans()[0]  # there before exit: force_flush() sent it
    assert span.resource["service.name"] == "configured-bot" and span.resource["trading.desk"] == "rates"
    log = otlp.wait_for(lambda r: r.logs())[0]
    assert (log.trace_id, log.span_id) == (span.trace_id, span.span_id)


@pytest.mark.slow
def test_collector_down_the_app_runs_and_exits_promptly():
    import socket

    from support import clean_env

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    app = """
import logging
from opentelemetry import trace
tracer = trace.get_tracer("bot")
for i in range(2000):
    with tracer.start_as_current_span("order"):
        logging.getLogger("bot").warning("sent %d", i)
print("done", flush=True)
"""
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed}", OTEL_TRADING_SHUTDOWN_TIMEOUT="2", OTEL_BSP_SCHEDULE_DELAY="50")
    started = time.monotonic()
    result = run_python(app, env)
    assert result.returncode == 0 and "done" in result.stdout, result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30
