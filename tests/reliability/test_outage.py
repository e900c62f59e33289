"""Collector outages with the disk spool: real apps under ``opentelemetry-instrument`` against the
loopback receiver stopped and restarted on the same port, refusing, hung; exact counts per signal."""

from __future__ import annotations

import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import grpc
import pytest
from otlp_receiver import OtlpReceiver
from support import BIN, otlp_env, require_binary, run_python

# Spans and log records numbered 0..n-1 at a steady rate; prints "produced N" when done.
APP = """
import logging, sys, time
from opentelemetry import trace
tracer = trace.get_tracer("outage")
log = logging.getLogger("outage")
duration, rate = float(sys.argv[1]), float(sys.argv[2])
print("started", flush=True)
n, start = 0, time.monotonic()
while time.monotonic() - start < duration:
    for _ in range(10):
        with tracer.start_as_current_span("work", attributes={"i": n}):
            log.warning("record %d", n)
        n += 1
    time.sleep(max(0.0, start + n / rate - time.monotonic()))
print(f"produced {n}", flush=True)
"""
IDLE = "import time; time.sleep(float(__import__('sys').argv[1]))"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(port: int, spool: Path, **extra: str) -> dict[str, str]:
    fake = type("R", (), {"grpc_endpoint": f"http://127.0.0.1:{port}"})()
    return otlp_env(fake, OTEL_SERVICE_NAME="outage-bot", OTEL_TRADING_SPOOL_DIR=str(spool), OTEL_METRICS_EXPORTER="none", **extra)


class _App:
    """APP running in the background; its output goes to files (a pipe nobody reads would block its log lines)."""

    def __init__(self, env: dict[str, str], folder: Path, *args: str) -> None:
        self.out, self.err = folder / "app.out", folder / "app.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [str(BIN / "opentelemetry-instrument"), sys.executable, "-c", textwrap.dedent(APP), *args], env=env, stdout=out, stderr=err
            )
        deadline = time.monotonic() + 60
        while "started" not in self.out.read_text():
            assert time.monotonic() < deadline and self.process.poll() is None, self.err.read_text()[-3000:]
            time.sleep(0.05)

    def communicate(self, timeout: float) -> tuple[str, str]:
        self.process.wait(timeout)
        return self.out.read_text(), self.err.read_text()

    @property
    def returncode(self) -> int | None:
        return self.process.returncode


def _start(env: dict[str, str], *args: str) -> _App:
    folder = Path(tempfile.mkdtemp(prefix="outage-app-"))
    return _App(env, folder, *args)


def _produced(stdout: str) -> int:
    return int(re.search(r"produced (\d+)", stdout).group(1))


def _delivered(*receivers: OtlpReceiver) -> tuple[list[int], list[int]]:
    """Span indexes and log record indexes received, duplicates included."""
    spans = [s.attributes["i"] for r in receivers for s in r.spans() if s.name == "work"]
    logs = [int(str(r.body).split()[1]) for rec in receivers for r in rec.logs() if str(r.body).startswith("record ")]
    return spans, logs


def _spooled_items(spool: Path) -> dict[str, int]:
    (path,) = spool.glob("*.sqlite")
    db = sqlite3.connect(path)
    return dict(db.execute("SELECT signal, sum(items) FROM batches GROUP BY signal").fetchall())


@pytest.mark.slow
def test_collector_stopped_and_restarted_mid_run_loses_nothing(tmp_path):
    port = _free_port()
    first = OtlpReceiver(port).start()
    app = _start(_env(port, tmp_path), "4", "500")
    time.sleep(1.0)
    first.stop()  # the collector goes away mid-run ...
    time.sleep(1.5)
    spooled = _spooled_items(tmp_path)  # the outage really happened, and the spool took it
    assert spooled["traces"] > 0 and spooled["logs"] > 0
    second = OtlpReceiver(port).start()  # ... and comes back on the same address
    try:
        out, err = app.communicate(timeout=60)
        assert app.returncode == 0, err[-3000:]
        produced = _produced(out)
        expected = set(range(produced))
        spans, logs = second.wait_for(lambda _: (lambda d: d if set(d[0]) == expected and set(d[1]) == expected else None)(_delivered(first, second)), timeout=20)
        assert len(spans) - produced <= 2048 and len(logs) - produced <= 2048  # at least once: a batch cut by the stop may come twice
        assert "Traceback" not in err
    finally:
        second.stop()


@pytest.mark.slow
def test_process_exiting_during_an_outage_leaves_its_spool_and_the_next_process_sends_it(tmp_path):
    port = _free_port()  # nothing listens: the collector is down for the whole run
    started = time.monotonic()
    result = run_python(APP, _env(port, tmp_path), args=["1", "1000"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started < 15  # never waits on the collector; the exit bound is 5 s
    produced = _produced(result.stdout)
    assert _spooled_items(tmp_path) == {"traces": produced, "logs": produced}
    # the exit summary says so, per signal
    assert re.search(rf"traces at exit: {produced} spans produced, 0 delivered, {produced} spooled", result.stderr), result.stderr[-2000:]
    assert re.search(rf"logs at exit: \d+ log records produced, 0 delivered, {produced} spooled", result.stderr), result.stderr[-2000:]

    receiver = OtlpReceiver(port).start()  # the collector is back; the next process of the service starts
    try:
        later = run_python(IDLE, _env(port, tmp_path), args=["1.5"])
        assert later.returncode == 0, later.stderr[-3000:]
        spans, logs = receiver.wait_for(lambda r: (lambda d: d if len(d[0]) >= produced and len(d[1]) >= produced else None)(_delivered(r)))
        assert sorted(spans) == sorted(logs) == list(range(produced))  # exactly once, in full
        assert _spooled_items(tmp_path) == {}
        assert "at exit" not in later.stderr  # everything delivered: no summary line
    finally:
        receiver.stop()


@pytest.mark.slow
def test_http_protobuf_exporters_spool_too(tmp_path):
    port = _free_port()
    env = _env(port, tmp_path, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")
    result = run_python(APP, env, args=["0.5", "1000"])
    assert result.returncode == 0, result.stderr[-3000:]
    produced = _produced(result.stdout)
    assert _spooled_items(tmp_path) == {"traces": produced, "logs": produced}
    receiver = OtlpReceiver(http_port=port).start()
    try:
        run_python(IDLE, env, args=["1.5"])
        spans, logs = receiver.wait_for(lambda r: (lambda d: d if len(d[0]) >= produced and len(d[1]) >= produced else None)(_delivered(r)))
        assert sorted(spans) == sorted(logs) == list(range(produced))
    finally:
        receiver.stop()


@pytest.mark.slow
def test_kill_9_while_spooling_then_a_restart_replays_what_was_spooled(tmp_path):
    port = _free_port()
    app = _start(_env(port, tmp_path), "30", "1000")
    time.sleep(2.0)
    app.process.kill()  # SIGKILL while batches are being written to the spool
    app.communicate(timeout=30)
    db = sqlite3.connect(next(tmp_path.glob("*.sqlite")))
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    spooled = _spooled_items(tmp_path)
    assert spooled["traces"] > 0 and spooled["logs"] > 0

    receiver = OtlpReceiver(port).start()
    try:
        later = run_python(IDLE, _env(port, tmp_path), args=["1.5"])
        assert later.returncode == 0, later.stderr[-3000:]
        spans, logs = receiver.wait_for(lambda r: (lambda d: d if len(d[0]) >= spooled["traces"] and len(d[1]) >= spooled["logs"] else None)(_delivered(r)))
        assert (len(spans), len(logs)) == (spooled["traces"], spooled["logs"])  # every spooled item, once
        assert sorted(spans) == list(range(len(spans)))  # the oldest first: no gap before the kill point
        assert _spooled_items(tmp_path) == {}
    finally:
        receiver.stop()


@pytest.mark.slow
def test_refusing_collector_then_accepting_again_within_one_run(tmp_path, otlp):
    otlp.status = grpc.StatusCode.UNAVAILABLE  # refusing: e.g. a collector shedding load
    env = otlp_env(otlp, OTEL_SERVICE_NAME="refused-bot", OTEL_TRADING_SPOOL_DIR=str(tmp_path), OTEL_METRICS_EXPORTER="none")
    app = _start(env, "3", "500")
    time.sleep(1.5)
    assert _spooled_items(tmp_path)["traces"] > 0  # refused batches are kept
    otlp.status = None  # accepting again while the app keeps producing
    out, err = app.communicate(timeout=60)
    assert app.returncode == 0, err[-3000:]
    produced = _produced(out)
    spans, logs = otlp.wait_for(lambda r: (lambda d: d if len(set(d[0])) >= produced and len(set(d[1])) >= produced else None)(_delivered(r)))
    assert set(spans) == set(logs) == set(range(produced))
    assert len(spans) == produced and len(logs) == produced  # refused requests were never received: no duplicate
    assert "at exit" not in err  # the spool was drained before the end of the run


@pytest.mark.slow
def test_hung_collector_at_exit_each_signal_spools_and_says_so_within_the_bound(tmp_path, otlp):
    otlp.delay = 30  # accepts calls, never answers in time
    env = otlp_env(
        otlp, OTEL_SERVICE_NAME="hung-bot", OTEL_TRADING_SPOOL_DIR=str(tmp_path), OTEL_TRADING_SHUTDOWN_TIMEOUT="2",
        OTEL_BSP_SCHEDULE_DELAY="60000", OTEL_BLRP_SCHEDULE_DELAY="60000", OTEL_METRIC_EXPORT_INTERVAL="60000",
    )
    started = time.monotonic()
    result = run_python(APP, env, args=["0.5", "4000"])
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert elapsed < 20  # bound (2 s) plus start-up; the receiver would hold each call 30 s
    produced = _produced(result.stdout)
    for signal_name, noun in (("traces", "spans"), ("logs", "log records")):
        line = re.search(rf"otel-trading: {signal_name} at exit: (\d+) {noun} produced, (\d+) delivered, (\d+) spooled .*?(\d+) dropped \(queue full\), (\d+) rejected by the collector, (\d+) unsent", result.stderr)
        assert line, result.stderr[-3000:]
        made, delivered, spooled, dropped, rejected, unsent = map(int, line.groups())
        assert made >= produced and made == delivered + spooled + dropped + rejected + unsent
        assert dropped == rejected == unsent == 0 and spooled >= produced - delivered  # nothing lost, even the logs
    assert _spooled_items(tmp_path)["traces"] >= produced


@pytest.mark.slow
def test_an_oversized_span_is_dropped_alone_without_holding_back_the_rest(otlp, tmp_path):
    app = """
from opentelemetry import trace
tracer = trace.get_tracer("big")
for i in range(300):
    with tracer.start_as_current_span("work", attributes={"i": i}):
        pass
    if i == 100:
        with tracer.start_as_current_span("huge", attributes={"blob": "x" * 5_000_000}):
            pass
"""
    env = otlp_env(otlp, OTEL_TRADING_SPOOL_DIR=str(tmp_path), OTEL_BSP_SCHEDULE_DELAY="60000", OTEL_TRADING_SHUTDOWN_TIMEOUT="5")
    started = time.monotonic()
    result = run_python(app, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started < 20
    assert sorted(s.attributes["i"] for s in otlp.spans() if s.name == "work") == list(range(300))  # the rest, all of it
    assert not [s for s in otlp.spans() if s.name == "huge"]
    assert len(re.findall(r"dropped 1 span\(s\): the collector rejected the request \(RESOURCE_EXHAUSTED, request of \d+ bytes too large", result.stderr)) == 1
    line = re.search(r"traces at exit: 301 spans produced, (\d+) delivered, (\d+) spooled \((\d+) sent from the spool, 0 wait .* 1 rejected by the collector, 0 unsent", result.stderr)
    assert line, result.stderr[-2000:]
    delivered, spooled, replayed = map(int, line.groups())
    assert delivered + spooled == 300 and replayed == spooled  # the rejected one was never spooled: it would be refused again


WSGI = """
from opentelemetry import trace
tracer = trace.get_tracer("web")
def app(environ, start_response):
    i = int(environ["QUERY_STRING"] or 0)
    with tracer.start_as_current_span("request", attributes={"i": i}):
        pass
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def _get(port: int, i: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET /?{i} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        assert s.recv(64).startswith(b"HTTP/1.")
        while s.recv(4096):
            pass


@pytest.mark.slow
def test_gunicorn_workers_during_an_outage_spool_and_the_next_start_sends_everything(tmp_path):
    gunicorn = require_binary(str(BIN / "gunicorn")) if (BIN / "gunicorn").exists() else require_binary("gunicorn")
    (tmp_path / "web.py").write_text(textwrap.dedent(WSGI))
    collector, http_port = _free_port(), _free_port()
    env = _env(collector, tmp_path / "spool", OTEL_BSP_SCHEDULE_DELAY="200", PYTHONPATH=str(tmp_path))
    server = subprocess.Popen(
        [str(BIN / "opentelemetry-instrument"), gunicorn, "-w", "2", "-b", f"127.0.0.1:{http_port}", "web:app"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(http_port, 0)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()[-3000:] if server.poll() is not None else "gunicorn did not start"
                time.sleep(0.2)
        for i in range(1, 400):
            _get(http_port, i)
    finally:
        server.send_signal(signal.SIGTERM)  # the master stops its workers; each spools what it holds
        _, err = server.communicate(timeout=60)
    assert "Traceback" not in err, err[-3000:]
    assert _spooled_items(tmp_path / "spool")["traces"] >= 400  # both workers' spans, in the one spool of the service

    receiver = OtlpReceiver(collector).start()
    try:
        later = run_python(IDLE, _env(collector, tmp_path / "spool"), args=["1.5"])
        assert later.returncode == 0, later.stderr[-3000:]
        spans = receiver.wait_for(lambda r: (lambda s: s if len(s) >= 400 else None)([x.attributes["i"] for x in r.spans() if x.name == "request"]))
        assert sorted(set(spans)) == list(range(400)) and len(spans) == len(set(spans))  # every request once; no two workers replayed one row
    finally:
        receiver.stop()


@pytest.mark.slow
def test_a_long_outage_loses_nothing(tmp_path):
    port = _free_port()
    first = OtlpReceiver(port).start()
    app = _start(_env(port, tmp_path), "40", "1000")
    time.sleep(2)
    first.stop()
    time.sleep(30)  # 30 s without a collector at 1,000 spans/s + 1,000 log records/s
    assert _spooled_items(tmp_path)["traces"] >= 20_000
    second = OtlpReceiver(port).start()
    try:
        out, err = app.communicate(timeout=120)
        assert app.returncode == 0, err[-3000:]
        produced = _produced(out)
        expected = set(range(produced))
        spans, logs = second.wait_for(lambda _: (lambda d: d if set(d[0]) == expected and set(d[1]) == expected else None)(_delivered(first, second)), timeout=60)
        assert len(spans) - produced <= 2048 and len(logs) - produced <= 2048
    finally:
        second.stop()
    assert _spooled_items(tmp_path) == {}  # drained; the file stays, empty, for the next outage
