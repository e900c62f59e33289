"""Spans and log records exported by a helper process, so encoding and sending never take the app's GIL.

With the in-process path the SDK's export thread shares the interpreter lock
with the app: under a busy producer it gets too little time, its queue fills and
items are dropped whatever the queue size. Here the app's processors queue each
span as its OTLP bytes (encoded as it ends, as in-process) and each log record as
a tuple of primitives; a flusher thread writes each batch as one ``marshal``
string (:mod:`otel_trading.export.records`) to a socket pair, a syscall that
releases the GIL. The helper process (``python -m otel_trading.export.helper``,
one per app process) groups and sends the spans and rebuilds the log records,
with the exporters the in-process path would have built (``providers._exporters``,
same settings), then acknowledges each batch with the number exported and failed.

Nothing is lost silently:

* a batch stays in the app until the helper acknowledges it; if the helper dies
  (even ``kill -9``) a new one is started and unacknowledged batches are sent
  again (a batch in flight at the moment of death may be exported twice);
* the app holds at most ``OTEL_TRADING_EXPORT_BUFFER_SIZE`` items per signal
  (queued + unacknowledged); beyond it ``OTEL_TRADING_EXPORT_FULL_POLICY=block``
  waits up to ``OTEL_TRADING_EXPORT_BLOCK_TIMEOUT`` seconds for room, once per
  overflow, then drops and counts (``drop`` drops and counts at once); a
  drop is one counter increment, and a line on stderr says how many, periodically;
* at exit and on SIGTERM the queue is sent and the acknowledgements awaited,
  bounded by ``OTEL_TRADING_SHUTDOWN_TIMEOUT``; what is unconfirmed then is reported;
  the helper's counts come back with its acknowledgements, so the exit summary, the
  drop / rejection lines and the loss metrics are the in-process path's;
* if the helper cannot be kept running, the app switches to the in-process path
  (the same exporters, built in the app) and hands it everything it holds.

Forked children (gunicorn workers, multiprocessing fork) start empty and get
their own helper the first time they export; the parent's queue stays the parent's.
"""

from __future__ import annotations

import itertools
import marshal
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from typing import Any, Literal, cast

from opentelemetry.metrics import get_meter_provider
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._shared_internal._processor_metrics import (
    create_processor_metrics,
)
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.semconv._incubating.attributes.otel_attributes import (
    OtelComponentTypeValues,
)

from otel_trading import forksafe
from otel_trading.config.table import SETTINGS
from otel_trading.export.losses import LOSSES
from otel_trading.export.processors import exit_summary, summary_line
from otel_trading.export.records import (
    ACK,
    FINAL,
    HEADER,
    LOGS,
    SIGNALS,
    SPANS,
    TALLY_FIELDS,
    Decoder,
    LogRecorder,
    SpanRecorder,
    dumps,
    readable_span,
)
from otel_trading.export.spool import Tally
from otel_trading.export.wire import EncodedSpan
from otel_trading.report import report

FRAME_ITEMS = 4096  # items per frame at most: bounds one marshal call and one acknowledgement
_IDLE_WAIT = 0.2  # seconds the flusher sleeps with nothing announced (a safety net, items wake it)
_PASS_INTERVAL = 0.01  # at most ~100 flusher passes a second: each wake-up costs the app a GIL hand-over
_RESTARTS = 5  # helper starts in a row that die within _SHORT_LIFE before giving up
_SHORT_LIFE = 10.0


def _value(counter: itertools.count) -> int:
    """The next value of an ``itertools.count``, i.e. how many times ``next()`` was called on it."""
    return int(repr(counter)[6:-1])  # "count(N)"


class _Signal:
    """One signal's queue and counts (spans or log records)."""

    def __init__(self, kind: int, what: str, capacity: int, queue_env: str, metrics: Any) -> None:
        self.kind = kind
        self.what = what
        self.capacity = capacity
        self.queue_env = queue_env
        self.metrics = metrics  # the SDK's otel.sdk.processor.*.processed counters, fed off the hot path
        self.items: deque = deque()
        self.recorder = SpanRecorder() if kind == SPANS else LogRecorder()
        self.in_flight = 0  # sent to the helper, not acknowledged yet
        self.delivered = 0  # acknowledged as exported
        self.failed = 0  # acknowledged as failed (exporter gave up after its retries)
        self.full_drops = itertools.count()  # buffer full: next() is one atomic C call, no lock on the hot path
        self.other_drops = 0  # helper unavailable or not encodable (flusher side, under the lock)
        self.unconfirmed = 0  # sent or queued, not confirmed exported when shutdown timed out
        self.late = itertools.count()  # emitted after shutdown (the SDK ignores them too)
        self.reported = (0, 0)  # (dropped, failed) already reported
        self.counted = (0, 0)  # (delivered, dropped) already added to the metrics
        self.lost_counted = (0, 0)  # (full_drops, other_drops) already added to LOSSES
        self.in_process = 0  # handed to the in-process fallback processors
        self.fallback: list = []  # the in-process processors, once the helper could not be kept running
        self.dropping = False  # full means drop at once: policy drop, or a block timed out (until half is free)
        self.attached = False  # a processor feeds it: shutdown waits for its close
        self.closed = False

    @property
    def name(self) -> str:
        """``spans`` / ``logs``: the stats' and the loss metrics' name."""
        return SIGNALS[self.kind]

    @property
    def signal(self) -> Literal["traces", "logs"]:
        """``traces`` / ``logs``: the exporters' and the exit summary's name."""
        return "traces" if self.kind == SPANS else "logs"

    @property
    def dropped(self) -> int:
        return _value(self.full_drops) + self.other_drops

    @property
    def after_shutdown(self) -> int:
        return _value(self.late)

    def fresh(self) -> _Signal:
        """The same signal with nothing queued or counted (a forked child's)."""
        sig = _Signal(self.kind, self.what, self.capacity, self.queue_env, self.metrics)
        sig.attached = self.attached
        return sig


class Sidecar:
    """The app's side of the helper process: queues, flusher thread, acknowledgements, counts."""

    def __init__(
        self,
        span_capacity: int = 65536,
        log_capacity: int = 65536,
        full_policy: str = "block",
        block_timeout: float = 0.5,
        shutdown_timeout: float = 5.0,
        report_interval: float = 10.0,
        internal_metrics: bool = False,
        settings: Any = None,
    ) -> None:
        self.settings = settings  # passed on to the helper process, and the in-process fallback's exporters
        self._env = helper_environment(settings)  # the app's start-up environment and decisions, for every helper
        self.full_policy = full_policy
        self.block_timeout = block_timeout
        self.shutdown_timeout = shutdown_timeout
        self.report_interval = report_interval
        provider = get_meter_provider()
        self.signals = {
            SPANS: _Signal(SPANS, "span", span_capacity, "OTEL_BSP_MAX_QUEUE_SIZE", create_processor_metrics(
                "traces", OtelComponentTypeValues.BATCHING_SPAN_PROCESSOR, provider, capacity=span_capacity, enabled=internal_metrics)),
            LOGS: _Signal(LOGS, "log record", log_capacity, "OTEL_BLRP_MAX_QUEUE_SIZE", create_processor_metrics(
                "logs", OtelComponentTypeValues.BATCHING_LOG_PROCESSOR, provider, capacity=log_capacity, enabled=internal_metrics)),
        }
        for kind, sig in self.signals.items():
            sig.metrics.register_queue_size(lambda kind=kind: self.held(kind))
            sig.dropping = full_policy == "drop"
        self._reset(eager=True)
        forksafe.in_child(self._after_fork)

    def _reset(self, eager: bool = False) -> None:
        """Fresh state and flusher thread; ``eager`` starts the helper now, so it is ready when the app's
        first burst comes (and a previous process's spooled items are sent, as in-process), instead of
        with the first item (forked children: a pool worker that never exports starts none)."""
        self._eager = eager
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # notified on every acknowledgement
        self._wake = threading.Event()
        self._unacked: dict[int, tuple[_Signal, bytes, int]] = {}
        self._lives: list[_HelperCounts] = []  # the counts of each helper whose acknowledgements are read
        self._past = _HelperCounts()  # helpers gone: their last counts
        self._final = threading.Event()  # the helper's last word (its counts after its exporters stopped)
        self._final_waiting: dict[int, tuple[int, str | None]] = {}  # per signal: items the spool keeps, and where
        self._seq = 0
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen | None = None
        self._started_at = 0.0
        self._short_lives = 0
        self.restarts = 0
        self.unavailable = False  # the helper could not be kept running: in-process export (or dropped and counted)
        self._stopping = False
        self._counted = False  # the final counts are taken: nothing sent or counted after them
        self._deadline: float | None = None
        self._last_report = time.monotonic()
        self._next_report = self._last_report  # the first drop is reported at once
        self._flusher = threading.Thread(target=self._run, name="otel-trading-sidecar", daemon=True)
        self._flusher.start()

    def _after_fork(self) -> None:
        """A forked child keeps nothing of the parent's: own queues, own helper, own counts."""
        if self._sock is not None:
            try:
                self._sock.close()  # the child's copy only: the parent's helper sees EOF when the parent closes
            except OSError:
                pass
        self.signals = {kind: sig.fresh() for kind, sig in self.signals.items()}
        for sig in self.signals.values():
            sig.dropping = self.full_policy == "drop"
        self._reset()

    # ------------------------------------------------------------------ producer side

    def put(self, sig: _Signal, item: Any) -> None:
        """Queue ``item`` (the hot path: a length check and an append)."""
        items = sig.items
        if len(items) + sig.in_flight >= sig.capacity or sig.closed:
            if sig.dropping:  # policy drop, or a block already timed out in this overflow
                next(sig.full_drops)
                return
            if not self._room_for(sig):
                return
        if not items:
            self._wake.set()
        items.append(item)

    def _room_for(self, sig: _Signal) -> bool:
        """Buffer full: wait (policy ``block``, bounded, once per overflow) or drop and count."""
        if sig.closed:
            next(sig.late)
            return False
        if self.full_policy == "block" and not self._lost_cause() and threading.current_thread() is not self._flusher:
            deadline = time.monotonic() + self.block_timeout
            with self._room:
                while len(sig.items) + sig.in_flight >= sig.capacity:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._lost_cause():
                        sig.dropping = not sig.closed
                        break
                    self._wake.set()
                    self._room.wait(remaining)
                else:
                    return True
        next(sig.full_drops)
        return False

    def _lost_cause(self) -> bool:
        """No helper and no in-process fallback: what is queued can only be dropped."""
        return self.unavailable and not any(sig.fallback for sig in self.signals.values())

    def held(self, kind: int) -> int:
        """Items of ``kind`` the app holds: queued, or sent and not confirmed yet."""
        sig = self.signals[kind]
        return len(sig.items) + sig.in_flight

    def flush(self, kind: int, timeout: float) -> bool:
        """Wait until everything queued for ``kind`` is acknowledged (or ``timeout`` seconds pass)."""
        sig = self.signals[kind]
        deadline = time.monotonic() + timeout
        with self._room:
            while (sig.items or sig.in_flight) and not self._lost_cause():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._room.wait(min(remaining, 0.05))
        return all([p.force_flush(max(deadline - time.monotonic(), 0) * 1000) for p in sig.fallback])

    def close(self, kind: int) -> None:
        """Send what ``kind`` holds and stop taking it; when every signal is closed, stop the helper: it
        exports (or spools) what it holds while the app waits, and answers with its final counts."""
        if self._deadline is None:  # a little inside the bound the caller enforces, so the report gets out
            self._deadline = time.monotonic() + self.shutdown_timeout * 0.9
        deadline = self._deadline
        sig = self.signals[kind]
        if sig.closed:
            return
        if sig.fallback:
            self.flush(kind, max(deadline - time.monotonic(), 0))
            self._close_fallback(sig, deadline)
        else:
            self._wait_sent(sig, deadline)
        with self._lock:  # signals shut down in parallel: exactly one of them stops the helper
            sig.closed = True
            sig.dropping = False  # from now on a put is counted as late, not as a drop
            last = not self._stopping and all(s.closed for s in self.signals.values() if s.attached)
            self._stopping = self._stopping or last
        if last:
            self._stop()

    def _wait_sent(self, sig: _Signal, deadline: float) -> None:
        """Until the flusher has written everything queued to the helper (its acknowledgement may come later)."""
        with self._room:
            while sig.items and not self._lost_cause() and time.monotonic() < deadline:
                self._wake.set()
                self._room.wait(min(deadline - time.monotonic(), 0.01))

    def _stop(self) -> None:
        deadline = self._deadline or time.monotonic()
        self._wake.set()
        self._flusher.join(max(deadline - time.monotonic(), 0))
        sock, proc = self._sock, self._proc
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_WR)  # the helper exports what it holds, acknowledges, exits
            except OSError:
                pass
        if sock is not None and proc is not None and self._seq:  # nothing ever sent: nothing to wait for
            # its counts after its exporters stopped (spooled, rejected ...); else it finishes on its own, bounded there too
            self._final.wait(max(deadline - time.monotonic(), 0.01))
        with self._lock:
            for sig in self.signals.values():
                sig.unconfirmed += sig.in_flight + len(sig.items)
                sig.in_flight = 0
                sig.items.clear()
            self._unacked.clear()  # an acknowledgement after the bound must not count them delivered as well
            self._counted = True  # nor a frame the flusher is still building be sent and counted again
        self._count()
        self._report(final=True)

    # ------------------------------------------------------------------ counts

    def stats(self) -> dict[str, Any]:
        """Exact counts per signal: produced = delivered + failed + dropped + unconfirmed + pending."""
        out: dict[str, Any] = {"helper_pid": self._proc.pid if self._proc else None, "restarts": self.restarts}
        with self._lock:
            for sig in self.signals.values():
                pending = len(sig.items) + sig.in_flight
                out[sig.name] = {
                    "produced": sig.delivered + sig.failed + sig.dropped + sig.unconfirmed + pending + sig.in_process,
                    "delivered": sig.delivered,
                    "in_process": sig.in_process,
                    "failed": sig.failed,
                    "dropped": sig.dropped,
                    "unconfirmed": sig.unconfirmed,
                    "pending": pending,
                    "after_shutdown": sig.after_shutdown,
                }
        return out

    def tally(self, kind: int) -> Tally | None:
        """What the helpers' exporters did with this signal's items (the spool's ``Tally``, summed over
        every helper this process had), or None when they have no spool (console, local files, spool off)."""
        with self._lock:
            counts = [self._past, *self._lives]
            known = [t for t in (c.tallies.get(kind) for c in counts) if t is not None]
        if not known:
            return None
        return Tally(**{f: sum(t[i] for t in known) for i, f in enumerate(TALLY_FIELDS)})

    def exit_summary(self, kind: int) -> str | None:
        """The in-process path's exit line for this signal (``export.processors.exit_summary``), from the
        app's counts (produced, dropped) and the helpers' (delivered, spooled, rejected ...)."""
        sig = self.signals[kind]
        counts = self.stats()[sig.name]
        produced = counts["produced"] - sig.in_process  # what went in-process has the fallback processors' own line
        unsent = counts["unconfirmed"] + counts["pending"]
        tally = self.tally(kind)
        if tally is None:
            return summary_line(sig.signal, produced, sig.dropped, unsent, handed=sig.delivered + sig.failed)
        waiting, path = self._final_waiting.get(kind, (0, None))
        unsent = max(produced - tally.delivered - tally.spooled - sig.dropped - tally.rejected - tally.lost, 0)  # duplicates after a restart
        return summary_line(sig.signal, produced, sig.dropped, unsent, tally=tally, waiting=waiting, spool=path)

    def _apply_counts(self, life: _HelperCounts, body: bytes) -> None:
        """A helper's counts (cumulative for its life): tallies kept; its losses added to this process's metric."""
        tallies, waiting, dropped, failed = marshal.loads(body)
        with self._lock:
            life.tallies = tallies
            if waiting is not None:
                self._final_waiting = waiting
        for counts, seen, add in ((dropped, life.dropped, LOSSES.drop), (failed, life.failed, LOSSES.fail)):
            for key, n in counts.items():
                if n > seen.get(key, 0):
                    add(key[0], n - seen.get(key, 0), key[1])
                    seen[key] = n

    def _count(self) -> None:
        """Feed the SDK processor metrics (delivered, dropped) in one add each, off the hot path."""
        for sig in self.signals.values():
            delivered, dropped = sig.delivered, sig.dropped
            if (delivered, dropped) != sig.counted:
                if delivered > sig.counted[0]:
                    sig.metrics.finish_items(delivered - sig.counted[0])
                if dropped > sig.counted[1]:
                    sig.metrics.drop_items(dropped - sig.counted[1])
                sig.counted = (delivered, dropped)
            full, other = _value(sig.full_drops), sig.other_drops
            if (full, other) != sig.lost_counted:
                if full > sig.lost_counted[0]:
                    LOSSES.drop(sig.name, full - sig.lost_counted[0])
                if other > sig.lost_counted[1]:
                    LOSSES.fail(sig.name, other - sig.lost_counted[1], "export_helper_unavailable")
                sig.lost_counted = (full, other)

    def _report(self, final: bool = False) -> None:
        now = time.monotonic()
        window = now - self._last_report
        printed = False
        for sig in self.signals.values():
            with self._lock:
                dropped, failed = sig.dropped - sig.reported[0], sig.failed - sig.reported[1]
                sig.reported = (sig.dropped, sig.failed)
            if dropped:
                reason = "export helper unavailable" if self.unavailable else f"export queue full, {sig.queue_env}={sig.capacity}"
                report(f"dropped {dropped} {sig.what}s in the last {window:.1f}s ({reason}{', at shutdown' if final else ''}; {sig.dropped} dropped since start)")
                printed = True
            if failed:
                report(f"{failed} {sig.what}s failed to export (the exporter gave up after its retries; {sig.failed} since start)")
                printed = True
            if final and sig.unconfirmed:
                report(f"{sig.unconfirmed} {sig.what}s were not confirmed exported within OTEL_TRADING_SHUTDOWN_TIMEOUT={self.shutdown_timeout:g}s")
        if printed:
            self._last_report, self._next_report = now, now + self.report_interval

    # ------------------------------------------------------------------ flusher thread

    def _run(self) -> None:
        _leave_signals_to_the_main_thread()
        while True:
            self._wake.wait(_IDLE_WAIT)
            self._wake.clear()
            try:
                if self._eager or self._unacked or any(sig.items for sig in self.signals.values()):
                    self._ensure_helper()
                for sig in self.signals.values():
                    self._send_queued(sig)
                self._count()
                if time.monotonic() >= self._next_report:
                    self._report()
            except Exception as exc:  # noqa: BLE001 - the flusher must survive anything
                report(f"export helper link error: {exc!r}")
                time.sleep(0.1)
            if self._stopping and not any(sig.items for sig in self.signals.values()) and (self._sock is not None or not self._unacked or self.unavailable):
                return  # everything written to a live helper (a dead one's batches go to its successor first)
            if not self._stopping:
                time.sleep(_PASS_INTERVAL)  # let items gather: one big frame instead of many small ones

    def _send_queued(self, sig: _Signal) -> None:
        if sig.fallback:
            batch = self._take(sig, len(sig.items))
            if batch is not None:
                self._hand_over(sig, batch, held=len(batch))
            return
        while sig.items:
            batch = self._take(sig, FRAME_ITEMS)
            if batch is None:
                return
            take = len(batch)
            records = []
            record = sig.recorder.record
            for item in batch:
                if type(item) is tuple:  # already a record (emit_fields)
                    records.append(item)
                    continue
                try:
                    records.append(record(item))
                except Exception:  # noqa: BLE001 - a malformed item is counted, never fatal
                    pass
            payload = dumps(records) if records and not self.unavailable else None
            with self._lock:
                if self._counted:  # the bound passed while this frame was built: counted unconfirmed, not sent
                    return
                lost = take - len(records) if payload is not None else take  # not encodable, or no helper
                sig.in_flight -= lost
                sig.other_drops += lost
                if payload is None:
                    continue
                self._seq += 1
                seq = self._seq
                self._unacked[seq] = (sig, payload, len(records))
            self._send(seq, sig.kind, payload)

    def _take(self, sig: _Signal, most: int) -> list | None:
        """Up to ``most`` queued items, held in ``in_flight`` until sent or handed over (flush() and close() wait
        for them; counted before popping, so the producer's capacity check never undercounts); None once the
        exit bound has passed: ``_stop`` counted what is left as unconfirmed."""
        with self._lock:
            if self._counted:
                return None
            take = min(len(sig.items), most)
            sig.in_flight += take
            return [sig.items.popleft() for _ in range(take)]

    def _send(self, seq: int, kind: int, payload: bytes) -> None:
        sock = self._sock
        if sock is None:
            return  # resent when the helper is back
        try:
            sock.sendall(HEADER.pack(kind, seq, len(payload)) + payload)  # one syscall: each one costs a GIL hand-back
        except OSError:
            self._helper_gone(sock)

    # ------------------------------------------------------------------ helper process

    def _ensure_helper(self) -> None:
        if self._sock is not None or self.unavailable or self._counted:  # counted: exiting, nothing more to send
            return
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            lived = time.monotonic() - self._started_at
            self._short_lives = self._short_lives + 1 if lived < _SHORT_LIFE else 0
            if self._short_lives >= _RESTARTS:
                self._give_up(f"the export helper exited {_RESTARTS} times within {_SHORT_LIFE:g}s (last code {proc.returncode})")
                return
            self.restarts += 1
        ours, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "otel_trading.export.helper", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env=self._env,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            ours.close()
            self._give_up(f"the export helper could not start ({exc})")
            return
        finally:
            theirs.close()
        self._started_at = time.monotonic()
        self._sock = ours
        life = _HelperCounts()
        with self._lock:
            self._lives.append(life)
        threading.Thread(target=self._read_acks, args=(ours, life), name="otel-trading-sidecar-acks", daemon=True).start()
        with self._lock:
            resend = sorted(self._unacked.items())
        for seq, (sig, payload, _) in resend:
            self._send(seq, sig.kind, payload)

    def _give_up(self, why: str) -> None:
        """The helper cannot be kept running: export in the app's process from now on (the in-process
        path's processors and exporters, as with OTEL_TRADING_EXPORT_PROCESS=false), starting with
        what the helper did not confirm; if even that cannot be built, drop and count."""
        fallback = self._in_process()
        if fallback:
            report(f"{why}; exporting spans and log records in the app's process from now on, as with OTEL_TRADING_EXPORT_PROCESS=false")
        else:
            report(f"{why}; spans and log records are dropped and counted from now on (OTEL_TRADING_EXPORT_PROCESS=false exports in-process)")
        with self._room:
            self.unavailable = True
            unacked = sorted(self._unacked.items())
            self._unacked.clear()
            for sig in self.signals.values():
                sig.fallback = fallback.get(sig.kind, [])
                sig.in_flight = 0
                if not sig.fallback:
                    sig.dropping = not sig.closed
                    sig.other_drops += sum(count for _, (s, _, count) in unacked if s is sig)
            self._room.notify_all()
        decoder = Decoder()
        for _, (sig, payload, count) in unacked:
            if sig.fallback:
                try:
                    self._hand_over(sig, decoder.spans(payload) if sig.kind == SPANS else decoder.logs(payload))
                except Exception:  # noqa: BLE001 - our own bytes; counted if ever unreadable
                    with self._lock:
                        sig.other_drops += count

    def _in_process(self) -> dict[int, list]:
        """The in-process path's batch processors per attached signal (``providers.batch_processors``)."""
        from otel_trading.bootstrap.providers import batch_processors

        out: dict[int, list] = {}
        for sig in self.signals.values():
            if sig.attached and not sig.closed:
                try:
                    out[sig.kind] = batch_processors(sig.signal, self.settings)
                except Exception as exc:  # noqa: BLE001 - then drop and count, as before
                    report(f"{sig.name}: the in-process export path could not be built ({exc!r:.80})")
        return out

    def _hand_over(self, sig: _Signal, items: list, held: int = 0) -> None:
        """Items to the in-process processors: SDK spans / log records as they are, queued records decoded
        (encoded spans queued as they are where the processor takes them, else parsed back to SDK spans).
        ``held``: how many of them the flusher holds in ``in_flight``, released here in the same step that
        counts them handed over; if the exit bound passed meanwhile, ``_stop`` has counted them unconfirmed."""
        handed = 0
        try:
            if any(type(item) is tuple for item in items):
                records = [item for item in items if type(item) is tuple]
                decoder = Decoder()
                items = [item for item in items if type(item) is not tuple] + (decoder.spans if sig.kind == SPANS else decoder.logs)(dumps(records))
            for processor in sig.fallback:
                if sig.kind == LOGS:
                    for item in items:
                        processor.on_emit(item)
                    continue
                encoded = getattr(processor, "takes_encoded_spans", False) is True
                for item in items:
                    if type(item) is not EncodedSpan:
                        processor.on_end(item)
                    elif encoded:
                        processor.queue(item)
                    else:
                        processor.on_end(readable_span(item))
            handed = len(items)
        finally:
            with self._lock:
                if not self._counted:  # counted once: handed over, or (the bound passed) unconfirmed
                    sig.in_flight -= held
                    sig.in_process += handed
                    sig.other_drops += max(held - handed, 0)  # a processor raised: dropped and counted, not lost

    def _close_fallback(self, sig: _Signal, deadline: float) -> None:
        """Shut the in-process processors down within the bound; their exit summaries, as in-process."""
        for processor in sig.fallback:
            try:
                processor.shutdown(max(deadline - time.monotonic(), 0.01) * 1000)
            except Exception as exc:  # noqa: BLE001
                report(f"{sig.name} shutdown failed: {exc!r}")
            line = exit_summary(sig.signal, processor)
            if line:
                report(line)

    def _helper_gone(self, sock: socket.socket) -> None:
        with self._lock:
            if self._sock is sock:
                self._sock = None
        try:
            sock.close()
        except OSError:
            pass
        self._wake.set()

    def _read_acks(self, sock: socket.socket, life: _HelperCounts) -> None:
        _leave_signals_to_the_main_thread()
        while True:
            try:
                seq, exported, failed, size = ACK.unpack(_receive(sock, ACK.size))
                self._apply_counts(life, _receive(sock, size))
            except (OSError, EOFError, ValueError, TypeError):
                self._helper_gone(sock)
                with self._room:
                    self._lives.remove(life)
                    self._past.add(life)
                    self._room.notify_all()
                return
            if seq == FINAL:
                self._final.set()
                continue
            with self._room:
                entry = self._unacked.pop(seq, None)
                if entry is not None:
                    sig, _, count = entry
                    sig.in_flight -= count
                    sig.delivered += exported
                    sig.failed += count - exported  # what the helper did not export, whatever the reason
                    if sig.dropping and self.full_policy == "block" and len(sig.items) + sig.in_flight < sig.capacity // 2:
                        sig.dropping = False
                self._room.notify_all()


class _HelperCounts:
    """One helper's cumulative counts, as its acknowledgements last said (summed over helpers for the exit line)."""

    def __init__(self) -> None:
        self.tallies: dict[int, tuple | None] = {}
        self.dropped: dict[tuple[str, str], int] = {}  # its LOSSES, already added to ours
        self.failed: dict[tuple[str, str], int] = {}

    def add(self, other: _HelperCounts) -> None:
        for kind, tally in other.tallies.items():
            if tally is not None:
                mine = self.tallies.get(kind) or (0,) * len(tally)
                self.tallies[kind] = tuple(a + b for a, b in zip(mine, tally))


def _receive(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes from ``sock`` (EOFError when it closes first)."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError
        got += n
    return bytes(buf)


def _leave_signals_to_the_main_thread() -> None:
    """Block SIGTERM / SIGINT in our threads: a signal the kernel hands to a thread blocked in ``recv``
    is seen by Python only when the main thread next runs bytecode, which an app in ``time.sleep``
    may not do for a long time; blocked here, the kernel delivers it to the main thread."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})


def helper_environment(settings: Any = None) -> dict[str, str]:
    """The app's environment for the helper, minus ``opentelemetry-instrument``'s start-up hook
    (the helper must not instrument itself), with otel_trading importable as in the app and the
    ``configure()`` keywords as variables (the helper reads the same settings the app runs with)."""
    env = dict(os.environ)
    if settings is not None:
        for setting in SETTINGS:
            if settings.sources.get(setting.name) == "argument":
                env[setting.env] = setting.parser.format(getattr(settings, setting.name))
        env.update(_embedded_decision(settings))
    hook_file = getattr(sys.modules.get("opentelemetry.instrumentation.auto_instrumentation"), "__file__", None)
    hook_dir = os.path.dirname(os.path.abspath(hook_file)) if hook_file else None
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.abspath(p) != hook_dir]
    env["PYTHONPATH"] = os.pathsep.join([package_root, *paths])
    return env


def _embedded_decision(settings: Any) -> dict[str, str]:
    """The app's embedded-default decision, made once at its start (and said once): the helper takes it
    as it is, neither probing the collector again nor repeating the notice."""
    from otel_trading.bootstrap import embedded
    from otel_trading.bootstrap.providers import exporter_names

    env = {"OTEL_TRADING_LOCAL_FALLBACK": "false", "OTEL_TRADING_LOCAL_DIR": os.path.abspath(settings.local_dir)}
    if embedded.use_local(settings):
        for signal in ("traces", "logs"):
            names = ["local" if n.startswith("otlp") else n for n in exporter_names(signal, settings)]
            env[f"OTEL_{signal.upper()}_EXPORTER"] = ",".join(dict.fromkeys(names)) or "none"
    return env


class SidecarSpanProcessor(SpanProcessor):
    """Queues sampled ended spans for the export helper (add it after the redacting processor)."""

    def __init__(self, sidecar: Sidecar) -> None:
        self.sidecar = sidecar
        self._put = sidecar.put
        sidecar.signals[SPANS].attached = True

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def exit_summary(self) -> str | None:
        return self.sidecar.exit_summary(SPANS)

    def on_end(self, span: Any) -> None:
        """Encode the span as it ends (as the in-process path does): its objects are freed at once and
        the queue holds one small tuple of bytes, which the flusher writes out as it is."""
        if span.context.trace_flags.sampled:
            sig = self.sidecar.signals[SPANS]
            try:
                item = sig.recorder.record(span)
            except Exception:  # noqa: BLE001 - queued as it is: the flusher tries again and counts it if it fails
                item = span
            self._put(sig, item)

    def shutdown(self) -> None:
        self.sidecar.close(SPANS)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.sidecar.flush(SPANS, timeout_millis / 1000)


class SidecarLogRecordProcessor(LogRecordProcessor):
    """Queues emitted log records for the export helper."""

    def __init__(self, sidecar: Sidecar) -> None:
        self.sidecar = sidecar
        self._put = sidecar.put
        sidecar.signals[LOGS].attached = True

    def on_emit(self, log_record: Any) -> None:
        self._put(self.sidecar.signals[LOGS], log_record)

    def emit_fields(self, logger: Any, timestamp: int, trace_id: int, span_id: int, flags: int, severity_text: str, severity: Any, body: Any, attributes: dict) -> None:
        """otel-trading's own log emitters queue the record's fields directly (``logs.otlp``, when this is
        the provider's only processor): no SDK record is built, and the flusher has nothing to convert."""
        sig = self.sidecar.signals[LOGS]
        origin = cast(LogRecorder, sig.recorder).origin(logger)
        self._put(sig, (timestamp, timestamp, trace_id, span_id, int(flags), severity_text, severity.value, body, attributes or None, 0, None, *origin))

    def enabled(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def exit_summary(self) -> str | None:
        return self.sidecar.exit_summary(LOGS)

    def shutdown(self) -> None:
        self.sidecar.close(LOGS)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.sidecar.flush(LOGS, timeout_millis / 1000)


_current: Sidecar | None = None


def current() -> Sidecar | None:
    """This process's sidecar, when ``OTEL_TRADING_EXPORT_PROCESS`` is on (for counts: ``current().stats()``)."""
    return _current


def start(settings: Any) -> Sidecar:
    global _current
    _current = Sidecar(
        span_capacity=settings.bsp_max_queue_size,
        log_capacity=settings.blrp_max_queue_size,
        internal_metrics=settings.sdk_internal_metrics,
        full_policy=settings.export_full_policy,
        block_timeout=settings.export_block_timeout,
        shutdown_timeout=settings.shutdown_timeout,
        report_interval=settings.drop_report_interval,
        settings=settings,
    )
    return _current
