"""Pre-fork servers: gunicorn workers with and without --preload, and multiprocessing pools.

Every worker exports its own telemetry, none re-sends what the parent had
queued before the fork, and the Prometheus endpoint is bound once (no worker
fights the master for the port). A fork while an OTLP/gRPC export is in flight still
leaves the child an exporter that works.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import textwrap
import time
import urllib.request

import pytest
from support import BIN, otlp_env, run_python

SLOW = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_BLRP_SCHEDULE_DELAY": "60000", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}

APP = """
import os
from opentelemetry import trace

from opentelemetry import metrics

tracer = trace.get_tracer("web")
requests_counter = metrics.get_meter("web").create_counter("web.requests")
with tracer.start_as_current_span("module-import", attributes={"pid": os.getpid()}):
    pass  # with --preload: made in the master, queued there before the fork

def app(environ, start_response):
    with tracer.start_as_current_span("request", attributes={"pid": os.getpid()}):
        body = str(os.getpid()).encode()
    requests_counter.add(1, {"pid": os.getpid()})
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""

CONFIG = """
import os
from opentelemetry import trace

def post_worker_init(worker):
    with trace.get_tracer("web").start_as_current_span("worker-boot", attributes={"pid": os.getpid()}):
        pass
"""


def _env(otlp, **extra: str) -> dict[str, str]:
    return {**otlp_env(otlp), **{k: str(v) for k, v in extra.items()}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 1.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except OSError:
        return None


@pytest.mark.slow
@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_gunicorn_workers_each_export_without_duplicates_and_one_prometheus_port(otlp, tmp_path, preload):
    (tmp_path / "webapp.py").write_text(textwrap.dedent(APP))
    (tmp_path / "gconf.py").write_text(textwrap.dedent(CONFIG))
    port, prom = _free_port(), _free_port()
    env = _env(
        otlp,
        OTEL_METRICS_EXPORTER="otlp,prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(prom),
        OTEL_SERVICE_NAME="web",
        PYTHONPATH=str(tmp_path),
        **SLOW,
    )
    command = [str(BIN / "opentelemetry-instrument"), str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}",
               "-c", str(tmp_path / "gconf.py"), "--graceful-timeout", "5", "--chdir", str(tmp_path)]
    command += ["--preload"] if preload else []
    server = subprocess.Popen([*command, "webapp:app"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pids = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(pids) < 2:
            body = _get(f"http://127.0.0.1:{port}/")
            if body:
                pids.add(int(body))
            else:
                time.sleep(0.1)
        metrics_page = _get(f"http://127.0.0.1:{prom}/metrics", timeout=5)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, stderr = server.communicate()
    assert pids, stderr[-3000:]
    assert "Address already in use" not in stderr and "could not start" not in stderr, stderr[-3000:]
    assert metrics_page is not None  # the Prometheus endpoint answered, bound once by the master

    spans = otlp.wait_for(lambda r: r.spans() if sum(s.name == "worker-boot" for s in r.spans()) >= 2 else None, timeout=20)
    boots = [s.attributes["pid"] for s in spans if s.name == "worker-boot"]
    assert len(boots) == len(set(boots)) == 2  # every worker exported its own span, once
    requests = {s.attributes["pid"] for s in spans if s.name == "request"}
    assert requests == pids  # every worker that served a request exported it
    imports = [s for s in spans if s.name == "module-import"]
    if preload:
        assert len(imports) == 1  # queued in the master before fork: sent once, not once per worker
        assert imports[0].attributes["pid"] not in boots
    else:
        assert sorted(s.attributes["pid"] for s in imports) == sorted(boots)  # each worker imported the app itself
    ids = [s.span_id for s in spans]
    assert len(ids) == len(set(ids))  # no span arrived twice

    def metric_pids(receiver) -> set:
        found = set()
        for metric in receiver.metrics():
            if metric.name == "web.requests":
                for point in metric.points:
                    found |= {kv.value.int_value for kv in point.attributes if kv.key == "pid"}
        return found if found >= pids else None

    assert otlp.wait_for(metric_pids, timeout=10) >= pids  # each worker's metrics are pushed over OTLP too


@pytest.mark.slow
def test_multiprocessing_pool_workers_export_and_parent_queue_is_not_duplicated(otlp):
    app = """
import multiprocessing, os
from opentelemetry import trace
tracer = trace.get_tracer("pool")

def work(n):
    with tracer.start_as_current_span("task", attributes={"n": n, "pid": os.getpid()}):
        pass
    return os.getpid()

with tracer.start_as_current_span("queued-in-parent"):
    pass  # still in the parent's queue when the pool forks
if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(3) as pool:
        pids = set(pool.map(work, range(30), chunksize=1))
    print(len(pids), flush=True)
"""
    result = run_python(app, _env(otlp, **SLOW))
    assert result.returncode == 0, result.stderr[-3000:]
    spans = otlp.wait_for(lambda r: r.spans() if len(r.spans()) >= 31 else None, timeout=20)
    tasks = sorted(s.attributes["n"] for s in spans if s.name == "task")
    assert tasks == list(range(30))  # pool workers leave through os._exit: flushed by the lifecycle hook
    assert sum(s.name == "queued-in-parent" for s in spans) == 1


SPAN_EXPORT = """
with tracer.start_as_current_span("before-fork"):
    pass
time.sleep(0.3)  # exported after 100 ms, answered after 600 ms
"""
IN_FLIGHT = {  # what is in flight at the fork, and the settings
    "span export": (SPAN_EXPORT, {}),
    "span export, stock exporter": (SPAN_EXPORT, {"OTEL_TRADING_FAST_EXPORT": "false", "OTEL_TRADING_SPOOL": "false"}),
    "metric export": ("""
metrics.get_meter("fork").create_counter("orders").add(1)
threading.Thread(target=metrics.get_meter_provider().force_flush).start()  # answered after 500 ms
time.sleep(0.2)
""", {}),
}


@pytest.mark.slow
@pytest.mark.parametrize("in_flight", list(IN_FLIGHT))
def test_a_fork_while_an_export_is_in_flight_leaves_the_child_a_working_exporter(otlp, in_flight):
    # gRPC skips its fork handlers when a call is in flight at the fork; the child's first export
    # then failed ("Closed on fork") and a short-lived worker left its span spooled, not delivered
    otlp.delay = 0.5  # a slow collector: the parent's export is still in flight when it forks
    app = f"""
import multiprocessing, threading, time
from opentelemetry import metrics, trace
tracer = trace.get_tracer("fork")
{IN_FLIGHT[in_flight][0]}
def child():
    with tracer.start_as_current_span("in-child"):
        pass

worker = multiprocessing.get_context("fork").Process(target=child)
worker.start()
worker.join()
"""
    result = run_python(app, _env(otlp, OTEL_LOGS_EXPORTER="none", OTEL_METRIC_EXPORT_INTERVAL="60000", **IN_FLIGHT[in_flight][1]))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipping fork() handlers" not in result.stderr
    assert otlp.wait_for(lambda r: "in-child" in [s.name for s in r.spans()], timeout=10)
    assert "spooled" not in result.stderr
