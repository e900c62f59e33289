"""Store and forward: export requests the collector cannot take now wait on disk.

:class:`Spool` keeps encoded OTLP requests (the protobuf bytes the exporter
would send) in one SQLite database per service, ``<OTEL_TRADING_SPOOL_DIR>/
<service>.sqlite``, in WAL mode. SQLite gives what a home-made file format
would have to re-invent: a crash mid-write rolls back that one transaction and
never touches the committed rows; several processes (gunicorn workers,
multiprocessing children) write and replay the same file, and a replaying
process *claims* a row in a transaction, so no two processes send the same
row. The size cap is kept by triggers in the same transactions; when a new
batch would exceed it the oldest rows are evicted, and every evicted item is
counted and reported.

:class:`SpoolingExporter` wraps the span or log OTLP exporter. Its ``export``
(called on the batch processor's worker thread) encodes the batch and hands it
to a sender thread (started with the first batch, or at start when the spool holds rows: a process
that exports nothing starts none), never waiting on the network: while the collector answers
the sender sends it; when the hand-off is full, or the collector is down,
refusing or too slow, the batch goes to the spool through :class:`SpoolWriter`:
one thread per spool file writes what both signals queued in one transaction
(the batch processors' threads make no SQLite call). The sender probes a down
collector with an empty request, with backoff; once it answers, it sends the
spooled batches oldest first, one between each live batch. At shutdown whatever
was not sent is spooled; the next process of the service sends it. Delivery is
at least once: a batch whose send was cut by the exit bound is spooled and may
arrive twice.
"""

from __future__ import annotations

import enum
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, set_value

from otel_trading import forksafe
from otel_trading.export.losses import LOSSES
from otel_trading.report import report, report_once

if TYPE_CHECKING:
    import sqlite3

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
STALE_CLAIM_SECONDS = 120.0  # a claim older than this (its process hung or died) may be taken again
_PROBE_BACKOFF = (0.1, 0.25, 0.5, 1.0)  # seconds between probes of a collector that is down
_OPEN_ATTEMPTS = 50  # ~1 s of 20 ms waits while another connection creates the file
_HANDOFF = 8  # encoded batches waiting for the sender; more go to the spool
_WRITER_BYTES = 16 * 1024 * 1024  # encoded batches waiting for the spool writer; past it ``export`` waits for it
_ROW_BYTES = 1024 * 1024  # batches written together are joined into rows (requests) of up to this size
_GATHER_SECONDS = 0.25  # the spool writer waits this long for more batches (unless a row's worth is queued)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    signal TEXT NOT NULL,
    items INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL,
    owner INTEGER,
    claimed REAL
);
DROP INDEX IF EXISTS batches_by_signal;
-- covering: finding a row to claim reads no row (owner and claimed come after the body, in its overflow pages)
CREATE INDEX IF NOT EXISTS batches_claims ON batches (signal, id, items, owner, claimed);
CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO usage VALUES (0, 0);
CREATE TRIGGER IF NOT EXISTS batches_grow AFTER INSERT ON batches BEGIN
    UPDATE usage SET bytes = bytes + new.size WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS batches_shrink AFTER DELETE ON batches BEGIN
    UPDATE usage SET bytes = bytes - old.size WHERE id = 0;
END;
"""

_WAKE: tuple[bytes, int] = (b"", -1)  # identity-compared; put in the hand-off at shutdown so the sender stops waiting for a batch


def spool_path(directory: str, service: str) -> Path:
    """``<directory>/<service>.sqlite``: one spool per service, shared by its processes."""
    folder = Path(directory) if directory else Path.home() / ".cache" / "otel-trading" / "spool"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", service or "unknown_service")[:100]
    return folder / f"{safe}.sqlite"


class Row(NamedTuple):
    id: int
    items: int
    body: bytes


class Spool:
    """Encoded export requests in SQLite, oldest first, bounded by ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._writer: SpoolWriter | None = None
        forksafe.owned(self, "_lock")  # a lock held by another thread at fork would block the child

    @property
    def writer(self) -> SpoolWriter:
        """The one thread writing to this file for every exporter of this process (made on first use)."""
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = SpoolWriter(self)
        return self._writer

    def _connection(self) -> sqlite3.Connection:
        """Opened on first use (nothing on disk until something is spooled), again in a forked child."""
        if self._db is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = _sqlite3().connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            for attempt in range(_OPEN_ATTEMPTS):
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a process crash loses no committed row
                    db.executescript(_SCHEMA)
                    break
                except _sqlite3().OperationalError:
                    # another connection (the other signal's thread, another worker) is creating the same
                    # new file: switching it to WAL answers "database is locked" at once, without the
                    # busy timeout; the batch must not count as lost for that
                    if attempt == _OPEN_ATTEMPTS - 1:
                        db.close()
                        raise
                    time.sleep(0.02)
            try:
                os.chmod(self.path, 0o600)
            except OSError:
                pass
            self._db, self._pid = db, os.getpid()
        return self._db

    def exists(self) -> bool:
        return self.path.exists()

    def put(self, signal: str, body: bytes, items: int) -> dict[str, int]:
        """Store one request; returns the items evicted to stay under the cap, by signal."""
        return self.put_many([(signal, body, items)])

    def put_many(self, rows: Sequence[tuple[str, bytes, int]]) -> dict[str, int]:
        """Store ``(signal, request, items)`` rows in one transaction, in order; returns the items evicted to
        stay under the cap, by signal. (Each SQLite call hands the interpreter lock back, and beside a busy
        app thread taking it again can wait a switch interval: the calls per row are what costs.)"""
        evicted: dict[str, int] = {}
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO batches (signal, items, size, body) VALUES (?, ?, ?, ?)", [(signal, items, len(body), body) for signal, body, items in rows])
                while db.execute("SELECT bytes FROM usage WHERE id = 0").fetchone()[0] > self.max_bytes:
                    oldest = db.execute("SELECT id, signal, items FROM batches WHERE owner IS NULL ORDER BY id LIMIT 1").fetchone()
                    if oldest is None:
                        break
                    db.execute("DELETE FROM batches WHERE id = ?", (oldest[0],))
                    evicted[oldest[1]] = evicted.get(oldest[1], 0) + oldest[2]
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return evicted

    def claim(self, signal: str) -> Row | None:
        """Take the oldest row of ``signal`` no live process is sending; None when there is none."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                found = None
                for row_id, items, owner, claimed in db.execute(
                    "SELECT id, items, owner, claimed FROM batches WHERE signal = ? ORDER BY id LIMIT 64", (signal,)
                ).fetchall():
                    if owner is None or claimed < now - STALE_CLAIM_SECONDS or (owner != os.getpid() and not _alive(owner)):
                        found = (row_id, items)
                        break
                if found is None:
                    db.execute("COMMIT")
                    return None
                db.execute("UPDATE batches SET owner = ?, claimed = ? WHERE id = ?", (os.getpid(), now, found[0]))
                body = db.execute("SELECT body FROM batches WHERE id = ?", (found[0],)).fetchone()[0]
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return Row(found[0], found[1], body)

    def done(self, row: Row) -> None:
        """The row was delivered (or rejected for good): remove it."""
        with self._lock:
            self._connection().execute("DELETE FROM batches WHERE id = ?", (row.id,))

    def release(self, row: Row) -> None:
        """The send failed: the row is anyone's again, still in its place."""
        with self._lock:
            self._connection().execute("UPDATE batches SET owner = NULL, claimed = NULL WHERE id = ? AND owner = ?", (row.id, os.getpid()))

    def pending(self, signal: str) -> tuple[int, int]:
        """(batches, items) of ``signal`` in the spool, any process's."""
        if not self.exists():
            return 0, 0
        with self._lock:
            batches, items = self._connection().execute(
                "SELECT count(*), coalesce(sum(items), 0) FROM batches WHERE signal = ?", (signal,)
            ).fetchone()
        return batches, items

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None


_SHARED: dict[Path, Spool] = {}


def shared(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Spool:
    """This process's one :class:`Spool` for ``path``. The span and log exporters share its connection
    and lock, so their writes and claims wait on that lock, which hands over at once, instead of on
    SQLite's busy handler, which sleeps 1 to 100 ms between tries."""
    spool = _SHARED.get(path)
    if spool is None:
        spool = _SHARED[path] = Spool(path, max_bytes)
    spool.max_bytes = max_bytes
    return spool


def _sqlite3() -> ModuleType:
    """The ``sqlite3`` module, imported when the spool is first opened (or an error is matched): a process
    whose collector never fails does not load it."""
    import sqlite3

    return sqlite3


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, not ours
        return True
    return True


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"  # collector down, refusing for now, or too slow: keep the batch
    TOO_LARGE = "too large"  # RESOURCE_EXHAUSTED for a request over the size limit / HTTP 413: drop
    REJECTED = "rejected"  # the collector will never take it (bad request): drop


_LOSS_SIGNAL = {"traces": "spans", "logs": "logs"}  # the spool's signal names -> the otel_trading.export.* metrics


class Tally:
    """What happened to the items handed to the exporter, for the exit summary (a plain class: a
    dataclass costs more to define at every start than it saves here)."""

    def __init__(self, delivered: int = 0, spooled: int = 0, replayed: int = 0, evicted: int = 0, rejected: int = 0, lost: int = 0) -> None:
        self.delivered = delivered  # sent directly
        self.spooled = spooled  # written to the spool by this process
        self.replayed = replayed  # sent from the spool by this process (any process's rows)
        self.evicted = evicted  # removed from the spool by this process to stay under the cap
        self.rejected = rejected  # refused by the collector for good (too large, bad request)
        self.lost = lost  # could not be sent nor spooled (disk full, spool unusable)


Sender = Callable[[bytes, int], tuple[Outcome, str]]


class SpoolingExporter:
    """A span or log exporter that never waits on the collector and never drops for an outage.

    ``encode`` turns a batch into a list of ``(request bytes, item count)``
    (split to fit the request size limit); ``send`` makes one attempt and says
    what happened.
    """

    drain_seconds = 2.5  # at shutdown, time left to send what the hand-off holds before it is spooled
    takes_encoded_spans = False  # True for spans: the batch may hold wire.EncodedSpan items (set by wrap)
    takes_encoded_logs = False  # True for logs: the batch may hold wire.EncodedLog items (set by wrap)

    def __init__(
        self, signal: str, what: str, encode: Callable[[Sequence], list[tuple[bytes, int]]], send: Sender, spool: Spool, close: Callable[[], None], success, failure,
        row_bytes: int = _ROW_BYTES,
    ) -> None:
        self.signal, self._what = signal, what
        self.row_bytes = row_bytes
        self._encode, self._send, self._close = encode, send, close
        self.spool = spool
        self._success, self._failure = success, failure
        self.tally = Tally()
        self._state = threading.Lock()
        self._stopping = False
        self._drain_until = 0.0
        self._healthy = True
        self._probe_at = 0.0
        self._failures = 0
        self._in_flight: tuple[bytes, int] | None = None
        self._spool_has_rows = spool.exists()  # a previous process's leftovers are sent first
        self._evictions_said_at = 0.0
        self._pid = os.getpid()
        self._writer = spool.writer
        self._start()
        forksafe.in_child(self._after_fork)

    def _start(self) -> None:
        self._handoff: queue.Queue[tuple[bytes, int]] = queue.Queue(_HANDOFF)
        self._state = threading.Lock()
        self._starting = threading.Lock()
        self._sender: threading.Thread | None = None
        if self._spool_has_rows:  # leftovers to send: at once, not with the first batch
            self._ensure_sender()

    def _ensure_sender(self) -> None:
        """Start the sender thread, once: with the first batch, or at start when the spool holds rows.
        A process that exports nothing (a short script, a CLI call) starts none and has none to join at exit;
        none starts once shutdown has begun (``export`` then spools)."""
        with self._starting:
            if self._sender is None and not self._stopping:
                sender = threading.Thread(target=self._run, name=f"otel-trading-{self.signal}-sender", daemon=True)
                sender.start()
                self._sender = sender

    def _after_fork(self) -> None:
        """A forked child (gunicorn worker, multiprocessing) gets its own sender, hand-off, locks and counts."""
        self._pid = os.getpid()
        self.tally = Tally()
        self._in_flight = None
        self._start()

    # --- the exporter interface (called on the batch processor's worker thread)
    def export(self, batch: Sequence):
        if self._stopping:
            LOSSES.fail(_LOSS_SIGNAL.get(self.signal, self.signal), len(batch), "already_shutdown")
            return self._failure
        try:
            requests = self._encode(batch)
        except Exception as exc:  # noqa: BLE001 - a batch that cannot be encoded is counted, never raised
            self._count_rejected(len(batch), f"could not be encoded ({exc!r:.80})")
            return self._failure
        if self._sender is None:
            self._ensure_sender()
        for request in requests:
            if not self._healthy or self._sender is None:  # collector down, or shutting down before any sender started
                self._store(request)
                continue
            try:
                self._handoff.put_nowait(request)
            except queue.Full:  # the sender is busy (slow collector): keep it on disk
                self._store(request)
        return self._success

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        """Wait until the hand-off and the spool writer are empty (sent or spooled), bounded by ``timeout_millis``."""
        deadline = time.monotonic() + timeout_millis / 1000
        while (self._handoff.unfinished_tasks or self._writer.queued_bytes) and time.monotonic() < deadline:
            time.sleep(0.01)
        return not (self._handoff.unfinished_tasks or self._writer.queued_bytes)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        """Send what the hand-off holds, then spooled rows, while time allows; spool the rest (and a send cut short)."""
        drain = max(min(timeout_millis / 1000, self.drain_seconds), 0.0)
        self._drain_until = time.monotonic() + drain
        self._writer.flush()  # before _stopping: the sender sees these rows and sends them in the drain below
        self._stopping = True
        self._writer.wake()  # an export waiting for the writer sees _stopping
        with self._starting:  # no sender starts from here on
            sender = self._sender
        if sender is not None:
            try:
                self._handoff.put_nowait(_WAKE)  # the sender may be waiting for a batch: it need not wait out its poll
            except queue.Full:  # busy sending: it sees _stopping after this batch
                pass
            sender.join(drain)
        with self._state:
            leftovers = []
            if sender is not None and sender.is_alive() and self._in_flight is not None:
                leftovers.append(self._in_flight)  # cut short by the exit bound: may arrive twice
                self._in_flight = None
            while True:
                try:
                    request = self._handoff.get_nowait()
                except queue.Empty:
                    break
                if request is not _WAKE:
                    leftovers.append(request)
        for request in leftovers:
            self._store(request)
        self._writer.flush()  # what waits for the writer: on disk before the exit line counts it
        try:
            self._close()
        except Exception:  # noqa: BLE001
            pass

    # --- the sender thread
    def _run(self) -> None:
        # what this thread sends is telemetry: instrumented HTTP clients (requests, urllib3) must not trace it
        attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        last_check = time.monotonic()
        while True:
            replaying = self._spool_has_rows and self._healthy
            try:  # live batches first; with a backlog to send, never wait for one
                if replaying:
                    request = self._handoff.get_nowait()
                elif self._healthy:
                    request = self._handoff.get(timeout=0.05 if self._spool_has_rows else 0.5)
                else:  # down: export() spools, nothing comes here but shutdown's wake-up until the next probe
                    request = self._handoff.get(timeout=min(max(self._probe_at - time.monotonic(), 0.01), 1.0))
            except queue.Empty:
                request = None
            if request is _WAKE:
                self._handoff.task_done()
                request = None
            if request is not None:
                try:
                    if self._stopping and not self._healthy:
                        self._store(request)
                    else:
                        self._deliver(request)
                finally:
                    self._handoff.task_done()
            elif self._stopping and not (self._healthy and self._spool_has_rows and time.monotonic() < self._drain_until):
                return
            if self._stopping and not self._healthy:
                continue  # exiting during an outage: no more probes, the rows wait for the next start
            if not self._healthy:
                if time.monotonic() >= self._probe_at:
                    # an empty request (no items) asks whether the collector answers; it reads nothing from the
                    # spool, whose writer has the file to itself for as long as the outage lasts
                    self._attempt(b"", 0)
            elif self._spool_has_rows:
                self._replay_one()
            if time.monotonic() - last_check > 5.0:  # another process may have left rows (a worker that exited)
                last_check = time.monotonic()
                self._spool_has_rows = self._spool_has_rows or self.spool.pending(self.signal)[0] > 0

    def _deliver(self, request: tuple[bytes, int]) -> None:
        with self._state:
            self._in_flight = request
        outcome, reason = self._attempt(request[0], request[1])
        with self._state:
            if self._in_flight is not request:  # shutdown spooled it meanwhile
                return
            self._in_flight = None
        if outcome is Outcome.SENT:
            self.tally.delivered += request[1]
        elif outcome is Outcome.RETRY:
            self._store(request)
        else:
            self._count_rejected(request[1], reason)

    def _replay_one(self) -> None:
        try:
            row = self.spool.claim(self.signal)
        except _sqlite3().Error as exc:
            self._spool_has_rows = False
            report(f"spool {self.spool.path} cannot be read ({exc}); its {self._what}s wait for the next start")
            return
        if row is None:
            self._spool_has_rows = False
            return
        outcome, reason = self._attempt(row.body, row.items)
        if outcome is Outcome.RETRY:
            self.spool.release(row)
            return
        self.spool.done(row)
        if outcome is Outcome.SENT:
            self.tally.replayed += row.items
        else:
            self._count_rejected(row.items, reason)

    def _attempt(self, body: bytes, items: int) -> tuple[Outcome, str]:
        try:
            outcome, reason = self._send(body, items)
        except Exception as exc:  # noqa: BLE001 - a transport surprise is an outage, not a crash
            outcome, reason = Outcome.RETRY, repr(exc)[:80]
        if outcome is Outcome.RETRY:
            self._failures += 1
            self._healthy = False
            self._probe_at = time.monotonic() + _PROBE_BACKOFF[min(self._failures - 1, len(_PROBE_BACKOFF) - 1)]
        elif outcome is Outcome.SENT:
            self._failures = 0
            self._healthy = True
        return outcome, reason

    def _store(self, request: tuple[bytes, int]) -> None:
        """Queue ``request`` for the spool's writer thread; from shutdown on, write it now on this thread."""
        self._writer.add(self, request)
        if self._stopping:
            self._writer.flush()

    def _stored(self, items: int) -> None:
        """The writer committed ``items`` of this exporter's to the spool."""
        self.tally.spooled += items
        self._spool_has_rows = True

    def _not_stored(self, items: int, exc: BaseException) -> None:
        self.tally.lost += items
        LOSSES.fail(_LOSS_SIGNAL.get(self.signal, self.signal), items, "spool_unusable")
        report_once(f"{self._what}s lost: the collector cannot take them and the spool {self.spool.path} cannot store them ({exc}); counted in the exit line", key=("spool-lost", self.spool.path))

    def _evicted(self, evicted: dict[str, int]) -> None:
        self.tally.evicted += sum(evicted.values())
        for signal, items in evicted.items():
            LOSSES.drop(_LOSS_SIGNAL.get(signal, signal), items, "spool_full")
        if time.monotonic() >= self._evictions_said_at + 10.0:  # at most one line per 10 s; the exit line has the total
            self._evictions_said_at = time.monotonic()
            report(
                f"spool {self.spool.path} is full (OTEL_TRADING_SPOOL_MAX_BYTES={self.spool.max_bytes}): evicted the oldest "
                + ", ".join(f"{n} {signal}" for signal, n in sorted(evicted.items()))
                + f" ({self.tally.evicted} evicted by this process so far)"
            )

    def _count_rejected(self, items: int, reason: str) -> None:
        self.tally.rejected += items
        LOSSES.fail(_LOSS_SIGNAL.get(self.signal, self.signal), items, "rejected")
        report(f"dropped {items} {self._what}(s): the collector rejected the request ({reason}); the rest is sent")


class SpoolWriter:
    """The one thread that writes what a process's exporters could not send to their spool file: the
    batches of both signals queued since its last write, in one transaction, joined into rows.

    The batch processors' threads only queue here. Every SQLite call hands the interpreter lock back,
    and beside a busy app thread taking it again waits out a switch interval (5 ms) or longer: writing
    each batch on those threads (five such calls per batch) let their queues overflow during an outage.
    Past ``_WRITER_BYTES`` queued, ``add`` waits for the writer (the batch processor's queue then
    fills and counts its drops, as with any slow exporter).
    """

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self._reset()
        forksafe.in_child(self._reset)  # a forked child writes none of its parent's batches

    def _reset(self) -> None:
        self._queued: list[tuple[SpoolingExporter, tuple[bytes, int]]] = []
        self.queued_bytes = 0  # including what is being written
        self._changed = threading.Condition(threading.Lock())
        self._writing = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, exporter: SpoolingExporter, request: tuple[bytes, int]) -> None:
        with self._changed:
            self._queued.append((exporter, request))
            self.queued_bytes += len(request[0])
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="otel-trading-spool-writer", daemon=True)
                self._thread.start()
            if len(self._queued) == 1 or self.queued_bytes >= _ROW_BYTES:  # else the writer is gathering: let it sleep
                self._changed.notify_all()
            while self.queued_bytes > _WRITER_BYTES and not exporter._stopping:
                self._changed.wait(0.5)

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def flush(self) -> None:
        """Write what is queued now, on the calling thread (after a write in progress)."""
        with self._writing:
            with self._changed:
                queued, self._queued = self._queued, []
            if not queued:
                return
            try:
                self._write(queued)
            finally:
                with self._changed:
                    self.queued_bytes -= sum(len(request[0]) for _, request in queued)
                    self._changed.notify_all()

    def _run(self) -> None:
        attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))  # an instrumented sqlite3 must not trace the spool
        while True:
            with self._changed:
                while not self._queued:
                    self._changed.wait()
                # gather for a moment: fewer, larger transactions and rows (each SQLite call and each row replayed
                # later costs interpreter-lock hand-overs); a batch waits here at most _GATHER_SECONDS
                until = time.monotonic() + _GATHER_SECONDS
                while self.queued_bytes < _ROW_BYTES and (left := until - time.monotonic()) > 0:
                    self._changed.wait(left)
            self.flush()

    def _write(self, queued: list[tuple[SpoolingExporter, tuple[bytes, int]]]) -> None:
        by_exporter: dict[SpoolingExporter, list[tuple[bytes, int]]] = {}
        for exporter, request in queued:  # each signal's batches keep their order
            by_exporter.setdefault(exporter, []).append(request)
        rows = [
            (exporter.signal, body, items)
            for exporter, requests in by_exporter.items()
            for body, items in _joined(requests, min(exporter.row_bytes, self.spool.max_bytes // 8))
        ]
        try:
            evicted = self.spool.put_many(rows)
        except Exception as exc:  # noqa: BLE001 - disk full, spool unusable, a surprise: counted, and the writer carries on
            for exporter, requests in by_exporter.items():
                exporter._not_stored(sum(n for _, n in requests), exc)
            return
        for exporter, requests in by_exporter.items():
            exporter._stored(sum(n for _, n in requests))
        if evicted:  # counted by the exporter of the evicted signal when it wrote here, else by the first
            first = next(iter(by_exporter))
            shares: dict[SpoolingExporter, dict[str, int]] = {}
            for signal, items in evicted.items():
                owner = next((e for e in by_exporter if e.signal == signal), first)
                shares.setdefault(owner, {})[signal] = items
            for exporter, share in shares.items():
                exporter._evicted(share)


def _joined(requests: list[tuple[bytes, int]], limit: int) -> list[tuple[bytes, int]]:
    """Consecutive requests concatenated into rows of up to ``limit`` bytes (a larger one stays alone).

    Two serialized OTLP export requests one after the other parse as one request holding the resource
    spans / logs of both (protobuf appends repeated fields), so a row is still one request to send, and
    fewer rows are fewer SQLite calls to write and to replay."""
    rows: list[tuple[bytes, int]] = []
    parts: list[bytes] = []
    size = items = 0
    for body, n in requests:
        if parts and size + len(body) > limit:
            rows.append((b"".join(parts), items))
            parts, size, items = [], 0, 0
        parts.append(body)
        size += len(body)
        items += n
    if parts:
        rows.append((b"".join(parts), items))
    return rows


def _splitting(encoder, max_bytes: int) -> Callable[[Sequence], list[tuple[bytes, int]]]:
    """Encode a batch; one over ``max_bytes`` is cut in halves until each fits (a single item is sent as it is)."""

    def encode(items: Sequence) -> list[tuple[bytes, int]]:
        body = encoder.encode(items)
        if len(body) <= max_bytes or len(items) <= 1:
            return [(body, len(items))]
        items = list(items)
        middle = len(items) // 2
        return encode(items[:middle]) + encode(items[middle:])

    return encode


def wrap(signal: str, exporter, spool: Spool, drain_seconds: float = SpoolingExporter.drain_seconds):
    """``exporter`` behind a spool when it is an OTLP span or log exporter (gRPC or HTTP); else unchanged.

    ``drain_seconds``: at shutdown, how long the sender may still send before the rest is spooled
    (a share of OTEL_TRADING_SHUTDOWN_TIMEOUT, so spooling happens within the exit bound).
    """
    from opentelemetry.sdk._logs.export import LogRecordExportResult
    from opentelemetry.sdk.trace.export import SpanExportResult

    from otel_trading.export.wire import LogEncoder, SpanEncoder

    grpc_spans = _loaded("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter")
    grpc_logs = _loaded("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter")
    http = tuple(filter(None, (
        _loaded("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
        _loaded("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"),
    )))
    if signal == "traces" and grpc_spans is not None and isinstance(exporter, grpc_spans):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        from otel_trading.export import otlp_grpc

        send = otlp_grpc.single_attempt(exporter, otlp_grpc.TRACE_EXPORT_METHOD, ExportTraceServiceResponse.FromString)
    elif signal == "logs" and grpc_logs is not None and isinstance(exporter, grpc_logs):
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceResponse,
        )

        from otel_trading.export import otlp_grpc

        send = otlp_grpc.single_attempt(exporter, otlp_grpc.LOGS_EXPORT_METHOD, ExportLogsServiceResponse.FromString)
    elif signal in ("traces", "logs") and http and isinstance(exporter, http):
        from otel_trading.export import otlp_http

        send = otlp_http.single_attempt(exporter)
    else:
        return exporter
    max_bytes = getattr(exporter, "_max_request_size", None)
    if not max_bytes:  # the gRPC exporters keep none: the collector's default message limit
        from otel_trading.export import otlp_grpc

        max_bytes = otlp_grpc.DEFAULT_MAX_REQUEST_BYTES
    what, encoder, result = ("span", SpanEncoder(), SpanExportResult) if signal == "traces" else ("log record", LogEncoder(), LogRecordExportResult)
    wrapper = SpoolingExporter(
        signal, what, _splitting(encoder, max_bytes), send, spool, exporter.shutdown, result.SUCCESS, result.FAILURE,
        row_bytes=min(_ROW_BYTES, max_bytes),
    )
    wrapper.takes_encoded_spans = signal == "traces"
    wrapper.takes_encoded_logs = signal == "logs"
    wrapper.drain_seconds = drain_seconds
    return wrapper


def _loaded(module: str, name: str) -> type[Any] | None:
    """A stock exporter class when its module is already imported, else None: an exporter cannot be an
    instance of a class never imported, so the other transport's stack is not loaded to find out."""
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else None
