"""The export helper process: ``python -m otel_trading.export.helper FD`` (started by the app, never by hand).

Reads batches from the app over the socket ``FD``
(:mod:`otel_trading.export.records` frames): spans arrive already encoded, as the
in-process path queues them (``wire.EncodedSpan``: OTLP bytes with their resource
and scope), and are only grouped and sent (an exporter that takes SDK spans only,
such as ``console``, gets them parsed back); log records are rebuilt as SDK records.
It exports them with the exporters the in-process path builds from the same
settings (``providers._exporters``: OTLP gRPC/HTTP with endpoint, headers, TLS,
compression, timeout, retries, the fast encoder; console; local files) and
acknowledges every batch with how many items were exported and how many failed,
once they are delivered or on disk: the spool's exporters send from a hand-off queue
of their own, so a batch is acknowledged when their tally has counted it (sent,
spooled, rejected or lost), never while it only sits in memory here (a ``kill -9`` of
the helper then loses nothing the app does not send again). Each acknowledgement
carries the helper's counts (:func:`otel_trading.export.records.state`): the app prints
the exit summary, the drop lines and the loss metrics from them, as in-process.

It ignores SIGINT and SIGTERM (a Ctrl-C or a process-group TERM must not kill it
before the app has flushed to it) and ends when the app closes its end of the
socket, or dies: it then exports what it holds, shuts its exporters down (in
parallel, each spooling what it cannot send), bounded by
``OTEL_TRADING_SHUTDOWN_TIMEOUT``, sends its final counts and exits.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import sys
import threading
import time
from collections import deque

from otel_trading.export.losses import LOSSES, CountingExporter
from otel_trading.export.records import (
    ACK,
    FINAL,
    HEADER,
    LOGS,
    SIGNALS,
    SPANS,
    Decoder,
    readable_span,
    state,
)

_SUCCESS = 0  # SpanExportResult.SUCCESS.value == LogRecordExportResult.SUCCESS.value


class Helper:
    """Export threads (one per signal) fed by the socket reader; acknowledgements written back."""

    def __init__(self, sock: socket.socket, exporters: dict[int, list], batch_sizes: dict[int, int]) -> None:
        self.sock = sock
        self.exporters = exporters
        self.batch_sizes = batch_sizes
        self.queues: dict[int, queue.Queue] = {kind: queue.Queue(maxsize=64) for kind in (SPANS, LOGS)}
        self._ack_lock = threading.Lock()
        self._decoder = Decoder()
        self._handed = {SPANS: 0, LOGS: 0}  # items handed to the exporters so far, per signal
        self._held: dict[int, deque] = {SPANS: deque(), LOGS: deque()}  # (handed mark, seq, exported, failed) not yet durable
        self._held_lock = threading.Lock()
        self._release_lock = threading.Lock()  # one releaser at a time: the final counts follow every ack taken
        self._stopped = threading.Event()

    def run(self, drain_timeout: float) -> None:
        threads = [threading.Thread(target=self._export_loop, args=(kind,), daemon=True) for kind in self.queues]
        for thread in threads:
            thread.start()
        threading.Thread(target=self._release_loop, daemon=True).start()
        self._read_frames()
        for q in self.queues.values():
            q.put(None)
        deadline = time.monotonic() + drain_timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))
        stopping = [threading.Thread(target=_shut_down, args=(e,), daemon=True) for group in self.exporters.values() for e in group]
        for thread in stopping:  # in parallel: each exporter's drain gets the whole share of the bound
            thread.start()
        for thread in stopping:
            thread.join(max(deadline - time.monotonic(), 0))
        self._stopped.set()
        self._release(everything=True)  # stopped exporters spooled what they could not send
        self._ack(FINAL, 0, 0, waiting={kind: _waiting(group) for kind, group in self.exporters.items()})

    def _read_frames(self) -> None:
        reader = self.sock.makefile("rb", buffering=1 << 20)
        while True:
            header = reader.read(HEADER.size)
            if len(header) < HEADER.size:
                return  # the app closed its end (exit, SIGTERM flush done) or died
            kind, seq, size = HEADER.unpack(header)
            payload = reader.read(size)
            if len(payload) < size:
                return
            self.queues[kind].put((seq, payload))

    def _export_loop(self, kind: int) -> None:
        q = self.queues[kind]
        decode = self._decoder.spans if kind == SPANS else self._decoder.logs
        batch_size = self.batch_sizes[kind]
        stop = False
        while not stop:
            frame = q.get()
            if frame is None:
                return
            frames = [frame]
            items: list = []
            ranges = []
            while True:  # take what else is queued, up to one export batch, so a backlog goes in big requests
                seq, payload = frame
                try:
                    decoded = decode(payload)
                except Exception as exc:  # noqa: BLE001 - a bad frame is counted as failed, never fatal
                    print(f"otel-trading: export helper could not decode a batch ({exc!r})", file=sys.stderr)
                    decoded = None
                ranges.append((seq, len(items), len(items) + len(decoded) if decoded is not None else -1))
                items += decoded or ()
                if len(items) >= batch_size:
                    break
                try:
                    frame = q.get_nowait()
                except queue.Empty:
                    break
                if frame is None:
                    stop = True
                    break
                frames.append(frame)
            failed_ranges = self._export(kind, items, batch_size)
            base = self._handed[kind]
            self._handed[kind] = base + len(items)
            for seq, start, end in ranges:
                if end < 0:
                    self._ack(seq, 0, 0)
                    continue
                failed = sum(max(0, min(end, f_end) - max(start, f_start)) for f_start, f_end in failed_ranges)
                with self._held_lock:
                    self._held[kind].append((base + end, seq, end - start - failed, failed))
            self._release()

    def _durable(self, kind: int) -> int | None:
        """Items the signal's spooling exporters have sent, spooled, rejected or lost (None: no such exporter,
        their ``export`` returning is the end of it)."""
        tallies = [e.tally for e in self.exporters[kind] if getattr(e, "tally", None) is not None]
        if not tallies:
            return None
        return min(t.delivered + t.spooled + t.rejected + t.lost for t in tallies)

    def _release(self, everything: bool = False) -> None:
        """Acknowledge the frames whose items are no longer only in this process's memory."""
        with self._release_lock:  # a frame taken off ``held`` is acknowledged before another release looks
            for kind, held in self._held.items():
                durable = None if everything else self._durable(kind)
                while True:
                    with self._held_lock:
                        if not held or (durable is not None and held[0][0] > durable):
                            break
                        _, seq, exported, failed = held.popleft()
                    self._ack(seq, exported, failed)

    def _release_loop(self) -> None:
        while not self._stopped.wait(0.005):
            self._release()

    def _export(self, kind: int, items: list, batch_size: int) -> list[tuple[int, int]]:
        """Export in batches of ``batch_size``; returns the (start, end) item ranges whose export failed."""
        failed = []
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            ok = bool(self.exporters[kind])  # none started (reported at start-up): the batch failed
            readable = None
            for exporter in self.exporters[kind]:
                try:
                    batch = chunk
                    if kind == SPANS and getattr(exporter, "takes_encoded_spans", False) is not True:
                        readable = batch = readable or [readable_span(span) for span in chunk]  # console, third-party
                    result = exporter.export(batch)
                    ok = ok and getattr(result, "value", result) == _SUCCESS
                except Exception as exc:  # noqa: BLE001 - an exporter bug must not stop the helper
                    print(f"otel-trading: export helper: {type(exporter).__name__} raised {exc!r}", file=sys.stderr)
                    ok = False
            if not ok:
                failed.append((start, start + len(chunk)))
        return failed

    def _ack(self, seq: int, exported: int, failed: int, waiting: dict[int, tuple[int, str | None]] | None = None) -> None:
        with self._ack_lock:
            try:
                counts = state(self.exporters, LOSSES, waiting)
                self.sock.sendall(ACK.pack(seq, exported, failed, len(counts)) + counts)
            except OSError:
                pass  # the app is gone; we still export what we hold


def _shut_down(exporter) -> None:
    try:
        exporter.shutdown()
    except Exception:  # noqa: BLE001 - exiting anyway
        pass


def _waiting(exporters: list) -> tuple[int, str | None]:
    """Items the spool keeps for a later start and its path (the exit summary's "N wait in PATH");
    0 when nothing was spooled, (0, None) without a spool."""
    for exporter in exporters:
        tally = getattr(exporter, "tally", None)
        if tally is not None:
            path = str(exporter.spool.path)
            if not tally.spooled:
                return 0, path
            try:
                return int(exporter.spool.pending(exporter.signal)[1]), path
            except Exception:  # noqa: BLE001 - an unreadable spool: the summary says 0 wait
                return 0, path
    return 0, None


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[1]))
    from otel_trading import config
    from otel_trading.bootstrap.providers import _exporters

    settings = config.load()
    # failures counted as in-process (the spool counts its own), and sent to the app with the acknowledgements
    exporters = {
        SPANS: [CountingExporter(e, SIGNALS[SPANS]) for e in _exporters("traces", settings)],
        LOGS: [CountingExporter(e, SIGNALS[LOGS]) for e in _exporters("logs", settings)],
    }
    batch_sizes = {
        SPANS: min(settings.bsp_max_export_batch_size, settings.bsp_max_queue_size),
        LOGS: min(settings.blrp_max_export_batch_size, settings.blrp_max_queue_size),
    }
    Helper(sock, exporters, batch_sizes).run(settings.shutdown_timeout)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # exporter threads (gRPC) must not hold the exit


if __name__ == "__main__":
    sys.exit(main(sys.argv))
