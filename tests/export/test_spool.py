"""The disk spool's store: oldest first, each row to one sender, bounded with counted evictions, crash-safe."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from otel_trading.export.spool import Spool, spool_path


def _body(i: int, size: int = 100) -> bytes:
    return (f"{i:08d}".encode() * (size // 8 + 1))[:size]


def test_rows_come_back_oldest_first_and_each_to_one_sender(tmp_path):
    spool = Spool(tmp_path / "s.sqlite")
    for i in range(3):
        spool.put("traces", _body(i), items=i + 1)
    spool.put("logs", _body(9), items=5)
    first, second = spool.claim("traces"), spool.claim("traces")
    assert (first.body, first.items, second.body) == (_body(0), 1, _body(1))  # a claimed row is not handed out again
    spool.release(first)  # the send failed: back in its place, still first
    assert spool.claim("traces").body == _body(0)
    spool.done(second)
    assert spool.pending("traces") == (2, 4) and spool.pending("logs") == (1, 5)


def test_nothing_on_disk_until_something_is_spooled(tmp_path):
    spool = Spool(spool_path(str(tmp_path / "dir"), "my bot/1"))
    assert spool.path == tmp_path / "dir" / "my_bot_1.sqlite"
    assert spool.pending("traces") == (0, 0) and not spool.path.exists()
    spool.put("traces", b"x", 1)
    assert oct(spool.path.stat().st_mode & 0o777) == "0o600"


def test_full_spool_evicts_the_oldest_and_says_how_many(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10_000)
    evicted = {}
    for i in range(30):
        for signal_name, n in spool.put("traces" if i % 2 else "logs", _body(i, 1000), items=10).items():
            evicted[signal_name] = evicted.get(signal_name, 0) + n
    kept = []
    while (row := spool.claim("traces") or spool.claim("logs")) is not None:
        kept.append(int(row.body[:8]))
    assert sorted(kept) == list(range(20, 30))  # the newest 10 KB stay
    assert evicted == {"logs": 100, "traces": 100}  # every evicted item counted, by signal


def _claim_all(path: str, out) -> None:
    spool = Spool(__import__("pathlib").Path(path))
    got = []
    while (row := spool.claim("traces")) is not None:
        got.append(row.id)
        spool.done(row)
    out.put(got)


def test_processes_replaying_one_spool_never_send_the_same_row(tmp_path):
    path = tmp_path / "s.sqlite"
    spool = Spool(path)
    for i in range(400):
        spool.put("traces", _body(i), 1)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_claim_all, args=(str(path), out)) for _ in range(4)]
    for worker in workers:
        worker.start()
    claimed = [row_id for _ in workers for row_id in out.get(timeout=60)]
    for worker in workers:
        worker.join(30)
    assert len(claimed) == 400 and len(set(claimed)) == 400


def test_a_dead_processes_claim_is_taken_over(tmp_path):
    path = tmp_path / "s.sqlite"
    Spool(path).put("traces", b"orphan", 1)
    code = f"from pathlib import Path; from otel_trading.export.spool import Spool; Spool(Path({str(path)!r})).claim('traces')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)  # claims, then exits without sending
    row = Spool(path).claim("traces")
    assert row is not None and row.body == b"orphan"


WRITER = """
import sys
from pathlib import Path
from otel_trading.export.spool import Spool
spool = Spool(Path(sys.argv[1]))
i = 0
while True:
    spool.put("traces", (f"{i:08d}".encode() * 4096)[: 20000 + i % 5000], 1)
    i += 1
    if i == 50:
        print("writing", flush=True)
"""


def test_kill_9_while_writing_loses_at_most_the_batch_being_written(tmp_path):
    path = tmp_path / "s.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(30)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = db.execute("SELECT id, body FROM batches ORDER BY id").fetchall()
    assert len(rows) >= 50
    for row_id, body in rows:  # every committed row is whole: no torn write, no gap
        i = int(body[:8])
        assert row_id == i + 1 and body == (f"{i:08d}".encode() * 4096)[: 20000 + i % 5000]
    assert db.execute("SELECT bytes FROM usage").fetchone()[0] == sum(len(b) for _, b in rows)  # the size cap's count too


def test_the_exporter_spools_while_the_collector_is_down_and_counts_every_eviction(tmp_path, capsys):
    from otel_trading.export.spool import Outcome, SpoolingExporter

    spool = Spool(tmp_path / "s.sqlite", max_bytes=5_000)
    exporter = SpoolingExporter(
        "traces", "span", lambda batch: [(b"x" * 1000, len(batch))], lambda body, items: (Outcome.RETRY, "UNAVAILABLE"),
        spool, lambda: None, "success", "failure",
    )
    for _ in range(20):
        assert exporter.export([1, 2]) == "success"  # never an error to the batch processor: the batch is kept
    exporter.shutdown(1000)
    left = spool.pending("traces")[1]
    assert exporter.tally.spooled == 40 and exporter.tally.delivered == 0
    assert exporter.tally.evicted == 40 - left and 0 < left <= 10  # the cap holds; what it pushed out is counted
    assert "OTEL_TRADING_SPOOL_MAX_BYTES=5000): evicted the oldest" in capsys.readouterr().err


def _senders() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "otel-trading-traces-sender"]


def test_a_process_that_exports_nothing_starts_no_sender_but_leftovers_are_sent_at_start(tmp_path):
    from otel_trading.export.spool import Outcome, SpoolingExporter

    sent: list[bytes] = []

    def exporter(spool: Spool) -> SpoolingExporter:
        return SpoolingExporter(
            "traces", "span", lambda batch: [(b"live", len(batch))], lambda body, items: (sent.append(body), (Outcome.SENT, ""))[1],
            spool, lambda: None, "success", "failure",
        )

    idle = exporter(Spool(tmp_path / "idle.sqlite"))
    assert not _senders()  # a short script or CLI call pays for no thread, at start or at exit
    idle.shutdown(1000)
    assert not _senders() and not (tmp_path / "idle.sqlite").exists()

    busy = exporter(Spool(tmp_path / "busy.sqlite"))
    assert busy.export([1, 2]) == "success" and len(_senders()) == 1  # the first batch starts it
    busy.shutdown(1000)
    assert busy.tally.delivered == 2 and sent == [b"live"]

    sent.clear()
    left = Spool(tmp_path / "left.sqlite")
    left.put("traces", b"from before", 3)  # an earlier process's rows: sent without waiting for a batch
    replaying = exporter(Spool(tmp_path / "left.sqlite"))
    deadline = time.monotonic() + 30
    while not sent and time.monotonic() < deadline:
        time.sleep(0.01)
    replaying.shutdown(1000)
    assert sent == [b"from before"] and replaying.tally.replayed == 3


def test_two_signals_spooling_at_once_into_a_new_file_both_store(tmp_path):
    """At exit during an outage the span and log exporters spool at the same moment; creating the same new
    file from two connections answered "database is locked" to one of them, and its batch counted as lost."""
    import threading

    for i in range(40):
        path = tmp_path / f"race-{i}.sqlite"
        stores = {"traces": Spool(path), "logs": Spool(path)}
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def put(signal: str) -> None:
            start.wait()
            try:
                stores[signal].put(signal, b"x" * 1000, 1)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=put, args=(signal,)) for signal in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert stores["traces"].pending("traces") == (1, 1) and stores["traces"].pending("logs") == (1, 1)
        for store in stores.values():
            store.close()


def test_during_an_outage_the_batch_thread_never_waits_on_sqlite_and_both_signals_share_one_write(tmp_path):
    """The batch processors' threads only queue for the spool's writer thread: a slow disk (here a write held
    until released) never holds up ``export``; the writer then stores both signals' batches in one transaction."""
    import threading

    from otel_trading.export.spool import Outcome, SpoolingExporter, shared

    release, writes = threading.Event(), []

    class SlowDisk(Spool):
        def put_many(self, rows):
            release.wait(60)
            writes.append([(signal, items) for signal, _, items in rows])
            return super().put_many(rows)

    spool = SlowDisk(tmp_path / "s.sqlite")
    down = lambda body, items: (Outcome.RETRY, "UNAVAILABLE")  # noqa: E731
    spans = SpoolingExporter("traces", "span", lambda batch: [(b"s" * 100, len(batch))], down, spool, lambda: None, "success", "failure")
    logs = SpoolingExporter("logs", "log record", lambda batch: [(b"l" * 100, len(batch))], down, spool, lambda: None, "success", "failure")
    exported = threading.Thread(target=lambda: [e.export([1, 2, 3]) for _ in range(50) for e in (spans, logs)])
    exported.start()
    exported.join(30)
    assert not exported.is_alive()  # 100 batches handed over while the first write is still held
    release.set()
    spans.shutdown(1000)
    logs.shutdown(1000)
    assert spans.tally.spooled == logs.tally.spooled == 150 and spans.tally.lost == logs.tally.lost == 0
    assert len(writes) < 100  # batches queued meanwhile went in together, not one transaction each
    assert any({signal for signal, _ in write} == {"traces", "logs"} for write in writes)
    assert spool.pending("traces") == (sum(1 for w in writes for s, _ in w if s == "traces"), 150)
    assert shared(tmp_path / "t.sqlite") is shared(tmp_path / "t.sqlite")  # the span and log exporters of a process share one


def test_batches_joined_into_one_row_are_one_request_holding_all_their_spans(tmp_path):
    """Spooled batches written together are concatenated into one row: two OTLP requests one after the other
    parse as one request with the spans of both, so the replayed row sends every span."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_trading.export.spool import _joined
    from otel_trading.export.wire import SpanEncoder

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(30):
        with provider.get_tracer("t").start_as_current_span(f"s{i}"):
            pass
    spans = memory.get_finished_spans()
    requests = [(SpanEncoder().encode(spans[i : i + 10]), 10) for i in range(0, 30, 10)]
    rows = _joined(requests, limit=len(requests[0][0]) + len(requests[1][0]))
    assert [items for _, items in rows] == [20, 10]  # up to the limit per row, in order
    names = []
    for body, _ in rows:
        request = ExportTraceServiceRequest.FromString(body)
        names += [span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert names == [f"s{i}" for i in range(30)]
