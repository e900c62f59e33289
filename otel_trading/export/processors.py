"""Batch processors that count every drop and say so periodically.

The SDK's ``BatchSpanProcessor`` / ``BatchLogRecordProcessor`` drop the newest
item when their queue is full, count it in ``otel.sdk.processor.*.processed``
(``error.type=queue_full``; only with OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED,
which also costs a counter update per span) and log "Queue full, dropping ..."
through a duplicate filter: one line, no count.

These subclasses keep the SDK's queue and worker unchanged and wrap the
processor's metrics hook and its exporter, so the hot path (``on_end`` /
``on_emit``) costs nothing extra while nothing is dropped. Drops and failed
exports are counted exactly in :mod:`otel_trading.export.losses` (the
``otel_trading.export.dropped`` / ``.failed`` metrics); on a drop they also add one to a counter;
at most every ``report_interval`` seconds (``OTEL_TRADING_DROP_REPORT_INTERVAL``) a
warning says how many were dropped since the last one, and the rest at
shutdown:

    otel-trading: dropped 1234 spans in the last 10.0s (export queue full, OTEL_BSP_MAX_QUEUE_SIZE=8192; ...)

``shutdown`` is bounded by ``shutdown_timeout_millis`` (the configurator passes
``OTEL_TRADING_SHUTDOWN_TIMEOUT``): past it the exporter is
shut down, which closes its gRPC channel and aborts a call a hung collector
never answers.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_trading import forksafe
from otel_trading.export.losses import LOSSES, CountingExporter
from otel_trading.export.wire import EncodedLog, EncodedSpan, LogEncoder, SpanEncoder

_logger = logging.getLogger("otel_trading.export")

DEFAULT_REPORT_INTERVAL = 10.0
DEFAULT_SHUTDOWN_TIMEOUT_MILLIS = 5000.0


class DropCounter:
    """Wraps a BatchProcessor's metrics hook: counts drops, reports them periodically."""

    def __init__(self, inner, what: str, queue_env: str, queue_size: int, interval: float) -> None:
        self._inner = inner
        self._what = what
        self._signal = "spans" if what == "span" else "logs"
        self._hint = f"export queue full, {queue_env}={queue_size}"
        self._interval = interval
        self._lock = threading.Lock()
        self.total = 0  # spans / records dropped because the queue was full, since start
        self.submitted = 0  # handed to the exporter (on the worker thread, never the app's)
        self.after_shutdown = 0  # ended after shutdown (the SDK ignores them)
        self._pending = 0  # drops not yet reported
        self._since = time.monotonic()
        self._next = 0.0  # the first drop is reported at once
        forksafe.in_child(self._after_fork)

    def _after_fork(self) -> None:
        """A forked child starts its own count (the parent's queue is not the child's) with a fresh lock."""
        self._lock = threading.Lock()
        self.total = self._pending = self.after_shutdown = self.submitted = 0
        self._since = time.monotonic()
        self._next = 0.0

    # --- the ProcessorMetricsT protocol the SDK's BatchProcessor calls
    def register_queue_size(self, get_queue_size) -> None:
        self._inner.register_queue_size(get_queue_size)

    def finish_items(self, count: int) -> None:
        self._inner.finish_items(count)
        self.submitted += count
        if self._pending and time.monotonic() >= self._next:  # the worker reports while the app is busy
            self.report()

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        self._inner.drop_items(count, error_type)
        if error_type != "queue_full":  # ended after shutdown: counted by the SDK metric, not a queue problem
            self.after_shutdown += count
            return
        with self._lock:
            self.total += count
            self._pending += count
        LOSSES.drop(self._signal, count)
        if time.monotonic() >= self._next:
            self.report()

    def report(self, final: bool = False) -> int:
        """Log the drops not reported yet (if any); returns that count."""
        with self._lock:
            pending, self._pending = self._pending, 0
            now = time.monotonic()
            window = now - self._since
            self._since = now
            self._next = now + self._interval
        if pending:
            try:
                _logger.warning(
                    "otel-trading: dropped %d %s in the last %.1fs (%s%s; %d dropped since start). "
                    "Raise the queue size or lower the rate; see the metric otel_trading.export.dropped{signal=%s}.",
                    pending,
                    self._what + "s",
                    window,
                    self._hint,
                    ", at shutdown" if final else "",
                    self.total,
                    self._signal,
                )
            except Exception:  # noqa: BLE001 - reporting must never raise into the app
                pass
        return pending


class _Bounded:
    """Shared install / shutdown logic for both processors."""

    _batch_processor: Any  # the SDK's internal BatchProcessor

    def _install(self, what: str, queue_env: str, report_interval: float, shutdown_timeout_millis: float):
        bp = self._batch_processor
        self.drops = DropCounter(bp._metrics, what, queue_env, bp._max_queue_size, report_interval)
        bp._metrics = self.drops
        bp._exporter = CountingExporter(bp._exporter, self.drops._signal)
        self.shutdown_timeout_millis = shutdown_timeout_millis

    @property
    def dropped(self) -> int:
        """Items dropped since start because the export queue was full."""
        return self.drops.total

    def _bounded_shutdown(self, timeout_millis: float | None) -> None:
        timeout = self.shutdown_timeout_millis if timeout_millis is None else timeout_millis
        try:
            self._batch_processor.shutdown(timeout_millis=timeout)
        finally:
            self.drops.report(final=True)


class ReportingBatchSpanProcessor(_Bounded, BatchSpanProcessor):
    """``BatchSpanProcessor`` + drop counter with periodic warning + bounded shutdown.

    When the exporter encodes with otel-trading's :class:`~otel_trading.export.wire.SpanEncoder`
    (it says so with ``takes_encoded_spans = True``: the fast OTLP exporters and the spool),
    a span is encoded as it ends and the queue holds its bytes
    (:class:`~otel_trading.export.wire.EncodedSpan`): the same request bytes reach the
    collector, the span's objects are freed at once instead of aging through the garbage
    collector's generations while queued, and the export thread only frames and sends.
    """

    def __init__(
        self,
        span_exporter,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        *,
        meter_provider=None,
        report_interval: float = DEFAULT_REPORT_INTERVAL,
        shutdown_timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
    ) -> None:
        super().__init__(
            span_exporter,
            max_queue_size,
            schedule_delay_millis,
            max_export_batch_size,
            export_timeout_millis,
            meter_provider=meter_provider,
        )
        self._install("span", "OTEL_BSP_MAX_QUEUE_SIZE", report_interval, shutdown_timeout_millis)
        self._encoder = SpanEncoder() if getattr(span_exporter, "takes_encoded_spans", False) is True else None
        self._emit = self._batch_processor.emit

    def on_end(self, span) -> None:
        encoder = self._encoder
        if encoder is None:
            return super().on_end(span)
        context = span.context
        if not (context and context.trace_flags.sampled):
            return None
        try:
            item = EncodedSpan(span.resource, span.instrumentation_scope, encoder.encode_item(span))
        except Exception:  # noqa: BLE001 - queued as it is: the export's encoder skips it and says why
            item = span
        return self.queue(item)

    @property
    def takes_encoded_spans(self) -> bool:
        """Whether :meth:`queue` takes :class:`~otel_trading.export.wire.EncodedSpan` items (its exporter encodes with ``SpanEncoder``)."""
        return self._encoder is not None

    def queue(self, item) -> None:
        """Queue an ended, sampled span or its :class:`~otel_trading.export.wire.EncodedSpan` (when
        :attr:`takes_encoded_spans`; the export helper's fallback hands over what the helper did not confirm)."""
        # The SDK's BatchProcessor.emit without its per-item os.getpid() system call (a third of a
        # busy producer's queueing cost): its fork handler (os.register_at_fork) already resets the
        # queue and worker in a forked child. Shut down or full: the SDK's own emit ignores / drops and counts.
        bp = self._batch_processor
        queue = bp._queue
        if bp._shutdown or len(queue) >= bp._max_queue_size:
            return self._emit(item)
        queue.appendleft(item)
        if len(queue) >= bp._max_export_batch_size and not bp._worker_awaken.is_set():
            bp._worker_awaken.set()
        return None

    def shutdown(self, timeout_millis: float | None = None) -> None:
        self._bounded_shutdown(timeout_millis)


_plain_copy: dict[type, bool] = {}


def _is_plain(cls: type) -> bool:
    """True when ``copy.copy`` of a ``cls`` instance is just "same class, same __dict__"."""
    plain = _plain_copy.get(cls)
    if plain is None:
        plain = (
            all(not klass.__dict__.get("__slots__") for klass in cls.__mro__ if klass is not object)
            and all(name not in klass.__dict__ for klass in cls.__mro__ if klass is not object for name in ("__copy__", "__reduce__", "__reduce_ex__", "__getstate__", "__new__"))
        )
        _plain_copy[cls] = plain
    return plain


def _shallow_copy(record):
    cls = type(record)
    if _is_plain(cls):
        new = object.__new__(cls)
        new.__dict__.update(record.__dict__)
        return new
    return copy.copy(record)


_new_readable = object.__new__
_EMPTY_RESOURCE: list = []


class ReportingBatchLogRecordProcessor(_Bounded, BatchLogRecordProcessor):
    """``BatchLogRecordProcessor`` + drop counter with periodic warning + bounded shutdown.

    When the exporter encodes with :class:`~otel_trading.export.wire.LogEncoder`
    (``takes_encoded_logs = True``), a record is encoded as it is emitted, as spans are as they
    end, and otel-trading's own structlog/stdlib emitters hand it the record's fields
    (``emit_fields``) without building an SDK record at all: the export thread, which shares the
    interpreter lock with the app, then only frames and sends.
    """

    def __init__(
        self,
        exporter,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        max_queue_size: int | None = None,
        *,
        meter_provider=None,
        report_interval: float = DEFAULT_REPORT_INTERVAL,
        shutdown_timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
    ) -> None:
        super().__init__(
            exporter,
            schedule_delay_millis,
            max_export_batch_size,
            export_timeout_millis,
            max_queue_size,
            meter_provider=meter_provider,
        )
        self._install("log record", "OTEL_BLRP_MAX_QUEUE_SIZE", report_interval, shutdown_timeout_millis)
        self._emit = self._batch_processor.emit
        if getattr(exporter, "takes_encoded_logs", False) is True:
            self._encoder = LogEncoder()
            self.on_emit = self._emit_encoded  # type: ignore[method-assign]  # chosen once, not tested per record
            self.emit_fields = self._emit_fields

    def _emit_encoded(self, log_record) -> None:
        try:
            item: Any = EncodedLog(log_record.resource, log_record.instrumentation_scope, self._encoder.encode_item(log_record))
        except Exception:  # noqa: BLE001 - queued as the SDK would: the export's encoder skips it and says why
            return ReportingBatchLogRecordProcessor.on_emit(self, log_record)
        return self._emit(item)

    def _emit_fields(self, logger, timestamp: int, trace_id: int, span_id: int, flags: int, severity_text: str, severity, body, attributes: dict) -> None:
        """otel-trading's own emitters (``logs.otlp``, when this is the only processor that acts on their
        already-redacted records): the record's fields encoded straight to its OTLP message."""
        body_bytes = self._encoder.encode_fields(timestamp, timestamp, severity.value, severity_text, body, attributes, 0, int(flags), trace_id, span_id)
        return self._emit(EncodedLog(logger._resource, logger._instrumentation_scope, body_bytes))

    def on_emit(self, log_record) -> None:
        """The SDK's ``on_emit`` (copy the API record, drop its context, wrap it read-only) at a third
        of its cost: a plain ``__dict__`` copy instead of ``copy.copy`` and the frozen dataclass filled
        directly; the queued object is the same ``ReadableLogRecord`` with the same field values."""
        resource = log_record.resource
        if resource is None:
            if not _EMPTY_RESOURCE:
                _EMPTY_RESOURCE.append(Resource.create({}))
            resource = _EMPTY_RESOURCE[0]
        api_record = _shallow_copy(log_record.log_record)
        api_record.context = Context()
        readable = _new_readable(ReadableLogRecord)
        readable.__dict__.update(
            log_record=api_record,
            resource=resource,
            instrumentation_scope=log_record.instrumentation_scope,
            limits=log_record.limits,
        )
        return self._emit(readable)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        self._bounded_shutdown(timeout_millis)


_NOUNS = {"traces": "spans", "logs": "log records"}


def exit_summary(signal: str, processor) -> str | None:
    """One line saying where this signal's items went, when some were not delivered (yet); else None.

    produced = delivered + spooled + dropped (queue full) + rejected + unsent, where unsent
    is what was still queued (or being sent) when the exit bound ran out. A processor with
    its own ``exit_summary()`` (the export helper's) says it itself, in the same words.
    """
    own = getattr(processor, "exit_summary", None)
    if own is not None:
        return own()
    drops = getattr(processor, "drops", None)
    if drops is None:
        return None
    bp = processor._batch_processor
    queued = len(bp._queue)
    produced = drops.submitted + drops.total + queued
    tally = getattr(bp._exporter, "tally", None)
    if tally is None:
        return summary_line(signal, produced, drops.total, queued, handed=drops.submitted)
    unsent = produced - tally.delivered - tally.spooled - drops.total - tally.rejected - tally.lost
    waiting = bp._exporter.spool.pending(signal)[1] if tally.spooled else 0
    return summary_line(signal, produced, drops.total, unsent, tally=tally, waiting=waiting, spool=bp._exporter.spool.path)


def summary_line(signal: str, produced: int, dropped: int, unsent: int, tally=None, handed: int = 0, waiting: int = 0, spool=None) -> str | None:
    """The exit summary's words, from the counts (``tally``: the spool's, else only ``handed`` to the exporter is known)."""
    noun = _NOUNS.get(signal, "items")
    if tally is None:
        if not (dropped or unsent):
            return None
        return f"{signal} at exit: {produced} {noun} produced, {handed} handed to the exporter, {dropped} dropped (queue full), {unsent} unsent"
    if not (waiting or dropped or tally.rejected or tally.lost or unsent or tally.evicted):
        return None  # delivered, directly or from the spool
    parts = [
        f"{produced} {noun} produced",
        f"{tally.delivered} delivered",
        f"{tally.spooled} spooled ({tally.replayed} sent from the spool, {waiting} wait in {spool} for the next start)",
        f"{dropped} dropped (queue full)",
        f"{tally.rejected} rejected by the collector",
        f"{unsent} unsent",
    ]
    if tally.evicted:
        parts.append(f"{tally.evicted} evicted from the full spool")
    if tally.lost:
        parts.append(f"{tally.lost} lost (spool unusable)")
    return f"{signal} at exit: " + ", ".join(parts)
