"""Health checks against real sockets and failing dependencies, the probes over HTTP,
and the metrics agreeing with the HTTP answers."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from support import exported

from otel_trading import health
from otel_trading.trading import attributes as A
from otel_trading.trading import metrics as M


@pytest.fixture(autouse=True)
def fresh_health():
    health.stop()
    for name in list(health._state.components):
        health.unregister(name)
    yield
    health.stop()
    for name in list(health._state.components):
        health.unregister(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def status_of(name: str):
    return health._state.components[name].status


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def listener():
    """A TCP port something listens on (accepts, never answers: a hung HTTP server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held = []

    def accept():
        while True:
            try:
                held.append(sock.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield sock.getsockname()[1]
    sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    sock.close()
    for conn in held:
        conn.close()


@pytest.fixture
def http_server():
    """A real HTTP server whose answer code the test sets."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(state["code"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/health"
    yield state
    server.shutdown()
    server.server_close()


def test_tcp_check_open_and_closed_port(listener):
    health.register("open", health.tcp_check("127.0.0.1", listener), interval=0.1)
    health.register("closed", health.tcp_check("127.0.0.1", free_port()), interval=0.1)
    health.start(0.1)
    wait_until(lambda: status_of("open") and status_of("closed"))
    assert status_of("open") is health.Status.HEALTHY
    assert status_of("closed") is health.Status.UNHEALTHY
    assert "ConnectionRefused" in health._state.components["closed"].error


def test_http_check_answers_and_a_hung_server_times_out(http_server, listener):
    health.register("api", health.http_check(http_server["url"]), interval=0.1)
    health.register("hung", health.http_check(f"http://127.0.0.1:{listener}/"), timeout=0.3, interval=0.1)
    health.start(0.1)
    wait_until(lambda: status_of("api") is health.Status.HEALTHY)
    wait_until(lambda: status_of("hung") is health.Status.UNHEALTHY)
    assert health._state.components["hung"].error == "timed out after 0.3s"
    http_server["code"] = 503
    wait_until(lambda: status_of("api") is health.Status.UNHEALTHY)
    assert "answered 503" in health._state.components["api"].error


def test_feed_staleness_healthy_degraded_unhealthy():
    feed = f"feed-{time.monotonic_ns()}"
    health.register("quotes", health.feed_check(feed, stale_after=0.6, degraded_after=0.2), interval=0.05)
    M.record_tick(feed)
    health.start(0.05)
    wait_until(lambda: status_of("quotes") is health.Status.HEALTHY)
    wait_until(lambda: status_of("quotes") is health.Status.DEGRADED)
    wait_until(lambda: status_of("quotes") is health.Status.UNHEALTHY)
    assert "stale for" in health._state.components["quotes"].error
    M.record_tick(feed)
    wait_until(lambda: status_of("quotes") is health.Status.HEALTHY)


def test_stage_staleness_uses_record_stage():
    stage = f"stage-{time.monotonic_ns()}"
    health.register("risk", health.stage_check(stage, stale_after=0.3), interval=0.05)
    health.start(0.05)
    wait_until(lambda: status_of("risk") is health.Status.HEALTHY)  # starting: not stale yet
    wait_until(lambda: status_of("risk") is health.Status.UNHEALTHY)
    assert "nothing for" in health._state.components["risk"].error
    M.record_stage(stage)
    wait_until(lambda: status_of("risk") is health.Status.HEALTHY)


def test_a_hung_sync_check_is_timed_out_not_restarted_and_the_heartbeat_goes_on():
    release, calls = threading.Event(), []

    def hangs():
        calls.append(1)
        release.wait(30)

    health.register("db", hangs, timeout=0.2, interval=0.05)
    health.start(0.05)
    wait_until(lambda: status_of("db") is health.Status.UNHEALTHY)
    beat = health._state.last_beat
    time.sleep(0.5)
    assert health._state.last_beat > beat and health.alive()
    assert len(calls) == 1  # still hung: not started again
    release.set()
    wait_until(lambda: len(calls) >= 2)


def test_async_checks_and_outcomes():
    async def degraded():
        return health.Status.DEGRADED, "one venue of two"

    health.register("venues", degraded, interval=0.05, critical=False)
    health.register("boom", lambda: 1 / 0, interval=0.05, critical=False)
    health.register("odd", lambda: "yes", interval=0.05, critical=False)
    health.start(0.05)
    wait_until(lambda: all(status_of(n) for n in ("venues", "boom", "odd")))
    assert status_of("venues") is health.Status.DEGRADED
    assert health._state.components["venues"].error == "one venue of two"
    assert status_of("boom") is health.Status.UNHEALTHY and "ZeroDivisionError" in health._state.components["boom"].error
    assert status_of("odd") is health.Status.UNHEALTHY
    assert health.overall() is health.Status.DEGRADED and health.ready()  # no critical check failing


def test_errors_are_redacted():
    def leaks():
        raise RuntimeError("login failed: password=hunter2 token=abcd1234abcd1234abcd1234")

    health.register("broker", leaks, interval=0.05)
    health.start(0.05)
    wait_until(lambda: status_of("broker"))
    error = health._state.components["broker"].error
    assert "RuntimeError" in error and "hunter2" not in error and "abcd1234abcd" not in error


def test_status_changes_logged_once_each_and_counted(metric_reader, caplog):
    state = {"ok": True}
    health.register("gateway", lambda: state["ok"], interval=0.05)
    with caplog.at_level(logging.INFO, logger="otel_trading.health"):
        health.start(0.05)
        wait_until(lambda: status_of("gateway") is health.Status.HEALTHY)
        time.sleep(0.2)
        state["ok"] = False
        wait_until(lambda: status_of("gateway") is health.Status.UNHEALTHY)
        time.sleep(0.2)
        state["ok"] = True
        wait_until(lambda: status_of("gateway") is health.Status.HEALTHY)
        time.sleep(0.2)
    lines = [r.getMessage() for r in caplog.records if r.name == "otel_trading.health"]
    assert lines == ["health: gateway is unhealthy (was healthy): check returned False", "health: gateway is healthy (was unhealthy)"]
    changes = exported(metric_reader)["trading.health.status_changes"].data.data_points
    counted = {p.attributes[A.HEALTH_STATUS]: p.value for p in changes}
    assert counted == {"unhealthy": 1, "healthy": 1}


def test_probes_over_http_agree_with_the_metrics(metric_reader, listener):
    port = health.serve(0)
    assert port
    health.register("broker", health.tcp_check("127.0.0.1", listener), interval=0.05)
    health.register("archive", health.tcp_check("127.0.0.1", free_port()), interval=0.05, critical=False)
    feed = f"feed-{time.monotonic_ns()}"
    health.register("quotes", health.feed_check(feed, stale_after=0.3), interval=0.05)
    assert get(port, "/readyz")[0] == 503  # critical checks have not run yet
    health.start(0.05)
    wait_until(lambda: status_of("quotes") is health.Status.UNHEALTHY)  # the feed never ticked

    assert get(port, "/livez") == (200, "ok\n")
    assert get(port, "/readyz")[0] == 503
    code, body = get(port, "/healthz")
    doc = json.loads(body)
    assert code == 503 and doc["status"] == "unhealthy" and doc["ready"] is False
    assert doc["components"]["archive"]["status"] == "unhealthy" and doc["components"]["archive"]["critical"] is False
    assert "nothing for" in doc["components"]["quotes"]["error"]
    assert 0 <= doc["components"]["broker"]["age_seconds"] < 5

    metrics = exported(metric_reader)
    gauge = {p.attributes[A.COMPONENT]: (p.value, p.attributes[A.HEALTH_CRITICAL]) for p in metrics["trading.health.status"].data.data_points}
    by_label = {"healthy": 1.0, "degraded": 0.5, "unhealthy": 0.0}
    assert {n: by_label[c["status"]] for n, c in doc["components"].items()} == {n: v for n, (v, _) in gauge.items()}
    assert gauge["archive"][1] is False and gauge["broker"][1] is True
    beat = metrics["trading.heartbeat"].data.data_points[0].value
    assert abs(beat - time.time()) < 5
    assert metrics["trading.process.start_time"].data.data_points[0].value <= beat
    assert metrics["trading.health.check.duration"].data.data_points[0].count >= 1

    M.record_tick(feed)  # the feed recovers: the non-critical failure only degrades
    wait_until(lambda: status_of("quotes") is health.Status.HEALTHY)
    assert get(port, "/readyz") == (200, "ok\n")
    code, body = get(port, "/healthz")
    assert code == 200 and json.loads(body)["status"] == "degraded"
    assert get(port, "/nope")[0] == 404
    health.stop()
    assert get_refused(port)


def get_refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_livez_fails_when_the_health_thread_is_gone():
    port = health.serve(0)
    health.start(0.05)
    wait_until(health.alive)
    assert get(port, "/livez")[0] == 200
    thread = health._state.thread
    health._state.stopping = True
    health._wake()
    thread.join(5)
    assert get(port, "/livez")[0] == 503


def test_busy_port_is_reported_not_raised(capfd, listener):
    assert health.serve(listener) is None
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and f"127.0.0.1:{listener}" in err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_forked_child_beats_on_its_own_thread_without_the_parents_server():
    port = health.serve(0)
    health.register("always", lambda: True, interval=0.05)
    health.start(0.05)
    wait_until(lambda: status_of("always"))
    parent_thread = health._state.thread
    pid = os.fork()
    if pid == 0:  # child: a fresh thread of its own, no lock held, the checks kept, no server
        try:
            fresh = health._state.thread is not parent_thread and health._state.server is None
            end = time.monotonic() + 5
            while time.monotonic() < end and not (health.alive() and health._state.components["always"].status):
                time.sleep(0.02)
            os._exit(0 if fresh and health.alive() and health._state.components["always"].status else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert get(port, "/livez")[0] == 200  # the parent still serves


@pytest.mark.slow
def test_launched_app_serves_probes(run_instrumented):
    port = free_port()
    code = f"""
        import json, time, urllib.request
        from otel_trading import health, record_tick
        health.register("quotes", health.feed_check("itch", stale_after=30))
        record_tick("itch")
        time.sleep(0.5)
        with urllib.request.urlopen("http://127.0.0.1:{port}/healthz", timeout=5) as r:
            print(r.status, json.load(r)["components"]["quotes"]["status"])
        with urllib.request.urlopen("http://127.0.0.1:{port}/readyz", timeout=5) as r:
            print(r.status)
    """
    result = run_instrumented(code, OTEL_TRADING_HEALTH_PORT=str(port), OTEL_TRADING_HEALTH_INTERVAL="0.1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "healthy", "200"]
