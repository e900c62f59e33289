"""The export helper process: what the app makes reaches the collector, exactly, even when the helper dies.

Real programs under ``opentelemetry-instrument`` with OTEL_TRADING_EXPORT_PROCESS=true against the loopback receiver; the app prints
the sidecar's counts so delivered is compared with produced per signal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from support import BIN, run_python
from support import otlp_env as _otlp_env

from otel_trading.export.records import Decoder, LogRecorder, SpanRecorder, dumps, readable_span
from otel_trading.export.wire import LogEncoder, SpanEncoder

try:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
except ImportError:  # pragma: no cover
    from opentelemetry.sdk._logs.export import (
        InMemoryLogExporter as InMemoryLogRecordExporter,
    )

def otlp_env(*args, **extra):
    """The loopback receiver's environment with the export helper process on."""
    return _otlp_env(*args, **{"OTEL_TRADING_EXPORT_PROCESS": "true", **extra})


STATS = """
import json, sys
from otel_trading.export import sidecar
def print_stats(helper_gone=False):
    import otel_trading, time
    otel_trading.current().shutdown()
    while helper_gone and sidecar.current()._proc.poll() is None:
        time.sleep(0.05)  # its acknowledgements after the exit bound have come in too
    print("STATS " + json.dumps(sidecar.current().stats()), file=sys.stderr, flush=True)
"""


def _stats(stderr: str) -> dict:
    lines = [line for line in stderr.splitlines() if line.startswith("STATS ")]
    assert lines, stderr[-3000:]
    return json.loads(lines[-1][6:])


# ---------------------------------------------------------------- record format


def test_spans_cross_the_process_boundary_unchanged():
    """Decoded spans encode to the very bytes the originals do: nothing is lost or altered on the way."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bot", "trading.desk": "fx"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bot", "1.2", schema_url="https://opentelemetry.io/schemas/1.21.0")
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v")]))
    from opentelemetry.trace import NonRecordingSpan, set_span_in_context

    with tracer.start_as_current_span("root", context=set_span_in_context(NonRecordingSpan(remote)), kind=SpanKind.SERVER):
        for i in range(50):
            with tracer.start_as_current_span(
                "order.submit",
                kind=SpanKind.CLIENT,
                attributes={"i": i, "px": 1.5, "ok": True, "tags": ("a", "b"), "big": 2**62, "n": None if i else "x"} if i else {},
                links=[Link(remote, {"why": "fill"})] if i % 7 == 0 else (),
            ) as span:
                if i % 3 == 0:
                    span.add_event("ack", {"venue": "XNAS"})
                if i % 5 == 0:
                    span.set_status(Status(StatusCode.ERROR, "rejected"))
    spans = exporter.get_finished_spans()
    recorder = SpanRecorder()
    decoded = Decoder().spans(dumps([recorder.record(s) for s in spans]))
    assert SpanEncoder().encode(decoded) == SpanEncoder().encode(spans)
    # what an exporter that takes only SDK spans (console, third-party) gets: the same spans, parsed back
    readable = [readable_span(s) for s in decoded]
    assert SpanEncoder().encode(readable) == SpanEncoder().encode(spans)
    assert [(s.name, s.kind, s.parent, dict(s.attributes), s.status.status_code, s.status.description) for s in readable] == [
        (s.name, s.kind, s.parent, dict(s.attributes), s.status.status_code, s.status.description) for s in spans
    ]
    assert [[(e.name, e.timestamp, dict(e.attributes)) for e in s.events] for s in readable] == [[(e.name, e.timestamp, dict(e.attributes)) for e in s.events] for s in spans]
    def links(span):  # OTLP carries no trace state for a link (neither encoder writes it)
        return [(k.context.trace_id, k.context.span_id, k.context.is_remote, dict(k.attributes)) for k in span.links]

    assert [links(s) for s in readable] == [links(s) for s in spans]
    assert [list(s.context.trace_state.items()) for s in readable] == [list(s.context.trace_state.items()) for s in spans]
    assert len({id(s.resource) for s in decoded}) == 1 and readable[0].resource == spans[0].resource
    assert readable[0].instrumentation_scope == spans[0].instrumentation_scope


def test_log_records_cross_the_process_boundary_unchanged():
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "bot"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("bot.logs", "1.0")
    from opentelemetry._logs import LogRecord

    for i in range(30):
        logger.emit(LogRecord(
            timestamp=1_700_000_000_000_000_000 + i,
            severity_number=SeverityNumber.WARN if i % 2 else SeverityNumber.INFO,
            severity_text="WARN" if i % 2 else "INFO",
            body={"event": "fill", "qty": i, "legs": [1, 2.5, "x"]} if i % 3 == 0 else f"line {i}",
            attributes={"symbol": "EURUSD", "i": i, "ok": bool(i % 2)},
            event_name="trade.fill" if i == 4 else None,
        ))
    records = exporter.get_finished_logs()
    recorder = LogRecorder()
    decoded = Decoder().logs(dumps([recorder.record(r) for r in records]))
    assert LogEncoder().encode(decoded) == LogEncoder().encode(records)


def test_our_log_emitters_hand_the_helper_the_same_record_the_in_process_path_exports():
    """With the redacting processor installed (the default), otel-trading's emitters queue the fields
    directly for the helper (no SDK record); decoded there they encode to the in-process path's bytes."""
    import types

    from opentelemetry import context as otel_context

    from otel_trading.export.sidecar import SidecarLogRecordProcessor, _Signal
    from otel_trading.export.records import LOGS
    from otel_trading.logs.otlp import OtlpEmitter
    from otel_trading.redaction import RedactingLogRecordProcessor

    resource = Resource.create({"service.name": "bot"})
    in_process, exporter = LoggerProvider(resource=resource), InMemoryLogRecordExporter()
    in_process.add_log_record_processor(RedactingLogRecordProcessor())
    in_process.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    queued: list = []
    helper_side = LoggerProvider(resource=resource, shutdown_on_exit=False)
    helper_side.add_log_record_processor(RedactingLogRecordProcessor())
    processor = SidecarLogRecordProcessor.__new__(SidecarLogRecordProcessor)
    processor.sidecar = types.SimpleNamespace(signals={LOGS: _Signal(LOGS, "log record", 10, "OTEL_BLRP_MAX_QUEUE_SIZE", None)})
    processor._put = lambda sig, item: queued.append(item)
    helper_side.add_log_record_processor(processor)
    for provider in (in_process, helper_side):
        emitter = OtlpEmitter(provider)
        for i in range(20):
            body = {"event": "fill", "legs": (1, 2.5)} if i % 4 == 0 else f"tick {i}"
            emitter.emit("bot.logs", "warning" if i % 2 else "info", body, {"symbol": "EURUSD", "i": i, "big": 2**70}, otel_context.get_current(), 1_700_000_000_000_000_000 + i)
    assert len(queued) == 20 and all(type(item) is tuple for item in queued)  # the fields path was taken
    assert LogEncoder().encode(Decoder().logs(dumps(queued))) == LogEncoder().encode(exporter.get_finished_logs())


def test_a_value_marshal_cannot_write_is_sent_as_text_not_lost():
    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    recorder = LogRecorder()
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    from opentelemetry._logs import LogRecord

    provider.get_logger("x").emit(LogRecord(timestamp=1, body=Odd(), attributes={"k": "v"}))
    provider.get_logger("x").emit(LogRecord(timestamp=2, body="plain"))
    decoded = Decoder().logs(dumps([recorder.record(r) for r in exporter.get_finished_logs()]))
    assert [d.log_record.body for d in decoded] == ["<odd>", "plain"]


# ---------------------------------------------------------------- through the helper process

APP = STATS + """
import os, structlog
from opentelemetry import trace
tracer = trace.get_tracer("bot")
log = structlog.get_logger("bot")
n = int(sys.argv[1])
for i in range(n):
    with tracer.start_as_current_span("tick", attributes={"i": i, "api_key": "sk-live-123456789"}):
        log.info("tick", i=i, password="hunter2")
from opentelemetry._logs import LogRecord, get_logger
get_logger("api").emit(LogRecord(body="through the Logs API", attributes={"token": "abc"}))  # the SDK record path
print_stats()
"""


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_every_span_and_log_line_is_delivered_through_the_helper_redacted(otlp, protocol):
    result = run_python(APP, otlp_env(otlp, protocol), args=["2000"])
    assert result.returncode == 0, result.stderr[-3000:]
    stats = _stats(result.stderr)
    assert isinstance(stats["helper_pid"], int)
    assert stats["spans"]["produced"] == stats["spans"]["delivered"] == 2000, stats
    assert stats["logs"]["produced"] == stats["logs"]["delivered"] == 2001, stats
    spans = [s for s in otlp.spans() if s.name == "tick"]
    logs = [r for r in otlp.logs() if r.body == "tick"]
    assert sorted(s.attributes["i"] for s in spans) == list(range(2000))
    assert sorted(r.attributes["i"] for r in logs) == list(range(2000))
    assert "sk-live-123456789" not in str([s.attributes for s in spans])  # redacted before leaving the app
    assert "hunter2" not in str([r.attributes for r in logs])
    assert {s.resource["service.name"] for s in spans} == {"test-bot"}
    assert [r.body for r in otlp.logs() if r.scope == "api"] == ["through the Logs API"]


def test_the_in_process_path_stays_available(otlp):
    app = APP.replace("\nprint_stats()", "\nassert sidecar.current() is None")
    result = run_python(app, otlp_env(otlp, OTEL_TRADING_EXPORT_PROCESS="false"), args=["300"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert len([s for s in otlp.spans() if s.name == "tick"]) == 300
    assert len([r for r in otlp.logs() if r.body == "tick"]) == 300


KILL = STATS + """
import os, signal, structlog
from opentelemetry import trace
tracer = trace.get_tracer("bot")
log = structlog.get_logger("bot")
for i in range(6000):
    with tracer.start_as_current_span("tick", attributes={"i": i}):
        log.info("tick", i=i)
    if i == 3000:
        os.kill(sidecar.current().stats()["helper_pid"], signal.SIGKILL)
print_stats()
"""


@pytest.mark.slow
def test_a_helper_killed_mid_run_is_restarted_and_nothing_is_lost(otlp):
    result = run_python(KILL, otlp_env(otlp))
    assert result.returncode == 0, result.stderr[-3000:]
    stats = _stats(result.stderr)
    assert stats["restarts"] == 1, stats
    for signal_name in ("spans", "logs"):
        counts = stats[signal_name]
        assert counts["produced"] == counts["delivered"] == 6000 and counts["dropped"] == counts["unconfirmed"] == 0, stats
    spans = [s.attributes["i"] for s in otlp.spans() if s.name == "tick"]
    logs = [r.attributes["i"] for r in otlp.logs() if r.body == "tick"]
    for received in (spans, logs):
        assert set(received) == set(range(6000))  # re-sent: a batch in flight at the kill may arrive twice
        assert len(received) - 6000 <= 4096  # duplicates: at most the frames unconfirmed at the kill
    assert "at exit" not in result.stderr  # the exit summary agrees: everything delivered


FALLBACK = STATS + """
import os, signal, structlog, time
from opentelemetry import trace
tracer = trace.get_tracer("bot")
log = structlog.get_logger("bot")
for i in range(3000):
    with tracer.start_as_current_span("tick", attributes={"i": i}):
        log.info("tick", i=i)
    if i == 1000:  # the first 1001 confirmed by the helper; from now on every helper started exits at once
        import otel_trading
        otel_trading.current().force_flush()
        sys.executable = "/bin/false"
        os.kill(sidecar.current().stats()["helper_pid"], signal.SIGKILL)
    if i % 100 == 0:
        time.sleep(0.01)
print_stats()
"""


@pytest.mark.slow
def test_a_helper_that_cannot_be_kept_running_hands_over_to_the_in_process_path_nothing_lost(otlp):
    result = run_python(FALLBACK, otlp_env(otlp))
    assert result.returncode == 0, result.stderr[-3000:]
    stats = _stats(result.stderr)
    assert result.stderr.count("exporting spans and log records in the app's process from now on") == 1, result.stderr[-3000:]
    assert "exited 5 times within 10s" in result.stderr
    for signal_name, produced in (("spans", 3000), ("logs", 3000)):
        counts = stats[signal_name]
        assert counts["produced"] == produced and counts["dropped"] == counts["failed"] == counts["unconfirmed"] == 0, stats
        assert counts["delivered"] >= 1001 and counts["in_process"] > 0 and counts["delivered"] + counts["in_process"] >= produced, stats
    spans = [s.attributes["i"] for s in otlp.spans() if s.name == "tick"]
    logs = [r.attributes["i"] for r in otlp.logs() if r.body == "tick"]
    assert set(spans) == set(logs) == set(range(3000))  # what the dead helpers held was exported in-process
    assert "at exit" not in result.stderr  # everything delivered: no summary line


@pytest.mark.slow
def test_full_buffer_drops_are_counted_exactly_and_warned(otlp):
    otlp.delay = 0.5  # a collector much slower than the app
    env = otlp_env(
        otlp,
        OTEL_BSP_MAX_QUEUE_SIZE="100",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="50",
        OTEL_TRADING_EXPORT_FULL_POLICY="drop",
        OTEL_TRADING_SHUTDOWN_TIMEOUT="1",
        OTEL_LOGS_EXPORTER="none",
        OTEL_TRADING_SPOOL="false",  # "delivered" then means received, not "received or kept on disk"
    )
    result = run_python(KILL.replace("    if i == 3000:\n        os.kill(sidecar.current().stats()[\"helper_pid\"], signal.SIGKILL)\n", ""), env)
    assert result.returncode == 0, result.stderr[-3000:]
    everything = _stats(result.stderr)
    stats = everything["spans"]
    assert stats["dropped"] > 0
    assert stats["produced"] == 6000
    assert stats["delivered"] + stats["dropped"] + stats["failed"] + stats["unconfirmed"] == 6000, stats
    assert "dropped" in result.stderr and "OTEL_BSP_MAX_QUEUE_SIZE=100" in result.stderr
    _wait_exit(everything["helper_pid"])  # it drains what it holds after the app has gone, bounded
    received = len({s.attributes["i"] for s in otlp.spans()})
    assert stats["delivered"] <= received <= stats["delivered"] + stats["unconfirmed"], (received, everything)  # sent, not confirmed before the exit bound


LATE = STATS + """
from opentelemetry import trace
tracer = trace.get_tracer("bot")
for i in range(10):
    with tracer.start_as_current_span("tick", attributes={"i": i}):
        pass
print_stats(helper_gone=True)
"""


@pytest.mark.slow
def test_spans_confirmed_after_the_exit_bound_are_counted_once(otlp):
    """The app stops waiting at 0.9x the bound, the helper a little later: its acknowledgement in between
    must not make the spans both unconfirmed and delivered (the counts and exit line add up)."""
    otlp.delay = 2.85  # answered after the app's 2.7 s, before the helper's 3 s
    env = otlp_env(otlp, OTEL_TRADING_SHUTDOWN_TIMEOUT="3", OTEL_LOGS_EXPORTER="none", OTEL_TRADING_SPOOL="false")
    result = run_python(LATE, env)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = _stats(result.stderr)["spans"]
    assert stats["produced"] == stats["delivered"] + stats["unconfirmed"] == 10 and stats["pending"] == 0, stats
    assert stats["delivered"] <= len(otlp.spans()) <= 10


def _wait_exit(pid: int, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and not _zombie(pid):
        assert time.monotonic() < deadline, f"helper {pid} still running"
        time.sleep(0.05)


SIGTERM_APP = """
import sys, time
from opentelemetry import trace
tracer = trace.get_tracer("bot")
i = 0
while True:
    with tracer.start_as_current_span("tick", attributes={"i": i}):
        pass
    i += 1
    if i == 2000:
        print("busy", flush=True)
"""


@pytest.mark.slow
def test_sigterm_mid_burst_delivers_every_span_the_app_ended(otlp):
    process = subprocess.Popen(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "-c", SIGTERM_APP],
        env=otlp_env(otlp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().strip() == "busy"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    stderr = process.stderr.read()
    assert process.returncode == -signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr and "not confirmed" not in stderr, stderr[-3000:]
    received = sorted({s.attributes["i"] for s in otlp.spans() if s.name == "tick"})
    assert len(received) >= 2000
    assert received == list(range(len(received)))  # every span ended before the signal, none missing


FORK = STATS + """
import multiprocessing, os
from opentelemetry import trace
tracer = trace.get_tracer("bot")
for i in range(100):
    with tracer.start_as_current_span("parent-before-fork", attributes={"i": i}):
        pass

fork = multiprocessing.get_context("fork")
reports = fork.Queue()

def child(n):
    for i in range(n):
        with tracer.start_as_current_span("child", attributes={"i": i, "pid": os.getpid()}):
            pass
    from otel_trading.export import sidecar
    trace.get_tracer_provider().force_flush()  # confirmed by its helper (started by the flusher with the first span)
    reports.put(sidecar.current().stats())

# two processes for certain (a Pool may hand both tasks to one worker)
workers = [fork.Process(target=child, args=(500,)) for _ in range(2)]
for worker in workers:
    worker.start()
children = [reports.get(timeout=60) for _ in workers]
for worker in workers:
    worker.join()
for i in range(100):
    with tracer.start_as_current_span("parent-after-fork", attributes={"i": i}):
        pass
print("CHILDREN " + json.dumps(children), file=sys.stderr)
print_stats()
"""


@pytest.mark.slow
def test_forked_children_export_through_their_own_helper_nothing_duplicated(otlp):
    result = run_python(FORK, otlp_env(otlp), timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    parent = _stats(result.stderr)
    assert parent["spans"]["delivered"] == 200, parent
    children = json.loads([line for line in result.stderr.splitlines() if line.startswith("CHILDREN ")][0][9:])
    helpers = {c["helper_pid"] for c in children} | {parent["helper_pid"]}
    assert len(helpers) == 3 and None not in helpers  # one helper per process
    names = [s.name for s in otlp.wait_for(lambda r: r.spans() if len([s for s in r.spans() if s.name == "child"]) >= 1000 else None)]
    assert names.count("parent-before-fork") == 100  # queued before the fork, sent once, by the parent
    assert names.count("parent-after-fork") == 100
    assert names.count("child") == 1000


@pytest.mark.slow
def test_the_helper_does_not_instrument_itself_and_exits_with_the_app(otlp):
    app = STATS + """
from opentelemetry import trace
with trace.get_tracer("bot").start_as_current_span("one"):
    pass
print_stats()
"""
    result = run_python(app, otlp_env(otlp))
    assert result.returncode == 0, result.stderr[-3000:]
    helper = _stats(result.stderr)["helper_pid"]
    assert [s.name for s in otlp.spans()] == ["one"]  # the helper's own start-up made no spans
    _wait_exit(helper)  # the app's end of the socket closed: the helper ends on its own


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True



def test_configure_keywords_reach_the_helpers_exporters(tmp_path):
    """A ``configure()`` keyword the helper cannot read from the environment (the local-files folder) is passed on."""
    from support import clean_env

    app = f"""
import otel_trading
from opentelemetry import trace
telemetry = otel_trading.configure(traces_exporter="local", logs_exporter="none", metrics_exporter="none", local_dir={str(tmp_path / "here")!r})
with trace.get_tracer("bot").start_as_current_span("kept-locally"):
    pass
telemetry.shutdown()
"""
    result = run_python(app, clean_env(OTEL_TRADING_EXPORT_PROCESS="true"), instrumented=False)
    assert result.returncode == 0, result.stderr[-3000:]
    written = "".join(p.read_text() for p in (tmp_path / "here").rglob("*") if p.is_file())
    assert "kept-locally" in written


@pytest.mark.slow
def test_exporters_that_take_sdk_spans_get_them_from_the_helper_parsed_back(otlp):
    """Spans cross already encoded; the stock OTLP exporter (fast encoder and spool off) and ``console``
    take SDK spans only: the helper parses the bytes back, and they export the span the app ended."""
    app = STATS + """
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
tracer = trace.get_tracer("bot", "2.0")
with tracer.start_as_current_span("parent"):
    for i in range(300):
        with tracer.start_as_current_span("tick", attributes={"i": i, "symbol": "BTC-USD", "legs": (1.5, 2.5)}) as span:
            if i == 7:
                span.add_event("fill", {"qty": 3})
                span.set_status(Status(StatusCode.ERROR, "rejected"))
print_stats()
"""
    env = otlp_env(otlp, OTEL_TRACES_EXPORTER="otlp,console", OTEL_LOGS_EXPORTER="none", OTEL_TRADING_FAST_EXPORT="false", OTEL_TRADING_SPOOL="false")
    result = run_python(app, env)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = _stats(result.stderr)["spans"]
    assert stats["produced"] == stats["delivered"] == 301, stats
    ticks = {s.attributes["i"]: s for s in otlp.spans() if s.name == "tick"}
    assert sorted(ticks) == list(range(300))
    assert ticks[7].attributes["legs"] == [1.5, 2.5] and ticks[7].attributes["symbol"] == "BTC-USD"
    assert ticks[7].status_code == 2 and ticks[7].proto.status.message == "rejected" and [e.name for e in ticks[7].events] == ["fill"]
    parent = next(s for s in otlp.spans() if s.name == "parent")
    assert {s.parent_span_id for s in ticks.values()} == {parent.span_id}
    printed = [json.loads(block) for block in result.stdout.replace("}\n{", "}\x00{").split("\x00") if block.strip()]
    console_ticks = {s["attributes"]["i"]: s for s in printed if s["name"] == "tick"}
    assert sorted(console_ticks) == list(range(300))
    assert console_ticks[7]["status"] == {"status_code": "ERROR", "description": "rejected"}
    assert console_ticks[7]["events"][0]["name"] == "fill" and console_ticks[7]["events"][0]["attributes"] == {"qty": 3}
    assert console_ticks[7]["parent_id"] == "0x" + parent.span_id
    assert console_ticks[7]["context"]["trace_id"] == "0x" + parent.trace_id
    assert console_ticks[7]["attributes"] == {"i": 7, "symbol": "BTC-USD", "legs": [1.5, 2.5]}
    assert console_ticks[7]["resource"]["attributes"]["service.name"] == "test-bot"


def test_the_helpers_final_counts_follow_every_acknowledgement_already_taken():
    """A frame released by the helper's release thread as its exporters stop is acknowledged before the
    final counts: the app stops reading at the final word and would count that frame unconfirmed."""
    import socket
    import threading
    import time

    from otel_trading.export.helper import Helper
    from otel_trading.export.records import FINAL, LOGS, SPANS

    ours, theirs = socket.socketpair()
    helper = Helper(theirs, {SPANS: [], LOGS: []}, {SPANS: 512, LOGS: 512})
    sent, acking = [], threading.Event()
    real_ack = helper._ack

    def slow_ack(seq, exported, failed, waiting=None):
        if seq != FINAL:
            acking.set()
            time.sleep(0.3)  # building the counts takes a while
        sent.append(seq)
        real_ack(seq, exported, failed, waiting)

    helper._ack = slow_ack
    helper._held[SPANS].append((10, 7, 10, 0))
    releasing = threading.Thread(target=helper._release)
    releasing.start()
    assert acking.wait(5)
    helper._release(everything=True)  # what run() does once the exporters have stopped
    helper._ack(FINAL, 0, 0)
    releasing.join()
    assert sent == [7, FINAL]
    ours.close()
    theirs.close()


def test_items_handed_in_process_as_the_exit_bound_passes_are_counted_once(monkeypatch):
    """After the helper could not be kept running, the flusher hands items to the in-process processors; if
    the exit bound passes mid-hand-over they were counted unconfirmed and then handed over as well (and
    ``pending`` went negative): the counts and the exit line must add up."""
    import threading
    import time

    from otel_trading.export import sidecar
    from otel_trading.export.records import SPANS

    monkeypatch.setattr(sidecar.Sidecar, "_run", lambda self: None)  # this test is the flusher
    car = sidecar.Sidecar(shutdown_timeout=0.3)
    car.unavailable = True
    spans = car.signals[SPANS]
    handing = threading.Event()

    class SlowProcessor:
        def on_end(self, span: object) -> None:
            handing.set()
            time.sleep(0.05)

    spans.fallback = [SlowProcessor()]
    spans.items.extend(object() for _ in range(10))
    flusher = threading.Thread(target=car._send_queued, args=(spans,))
    flusher.start()
    assert handing.wait(5)
    car._deadline = time.monotonic()  # the bound has passed
    car._stop()
    flusher.join()
    stats = car.stats()["spans"]
    assert stats["produced"] == stats["in_process"] + stats["unconfirmed"] == 10 and stats["pending"] == 0, stats
