"""Exact counts of the spans and log records the export path lost, for a metric that costs nothing per item.

The counts change only when something is lost: a full export queue (``queue_full``,
counted by the processors' drop hook) or a batch the exporter failed to deliver
(counted once per batch by :class:`CountingExporter`, or by the disk spool, which
counts what it rejects, evicts or cannot store, see :mod:`otel_trading.export.spool`). Two observable counters read
them when the metric reader collects, so a span or log record that is kept pays
nothing for them (the SDK's own self-metrics, ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``,
add a counter update per span and stay available as an opt-in):

* ``otel_trading.export.dropped`` {``signal``, ``error.type``: ``queue_full``, ``spool_full``}
* ``otel_trading.export.failed``  {``signal``, ``error.type``: ``export_failed`` or the exception class;
  from the spool ``rejected``, ``spool_unusable``, ``already_shutdown``}

``signal`` is ``spans`` or ``logs``; both report 0 until something is lost. A forked child starts from zero: its queue is its own.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.metrics import MeterProvider, Observation


class Losses:
    """Counts per (signal, error.type), one lock taken only when something is lost."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.dropped: dict[tuple[str, str], int] = {}
        self.failed: dict[tuple[str, str], int] = {}

    def drop(self, signal: str, count: int, error_type: str = "queue_full") -> None:
        with self._lock:
            self.dropped[signal, error_type] = self.dropped.get((signal, error_type), 0) + count

    def fail(self, signal: str, count: int, error_type: str) -> None:
        with self._lock:
            self.failed[signal, error_type] = self.failed.get((signal, error_type), 0) + count

    def reset(self) -> None:
        self._lock = threading.Lock()
        self.dropped, self.failed = {}, {}


LOSSES = Losses()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=LOSSES.reset)


def _observations(counts: dict[tuple[str, str], int], error_type: str) -> list[Observation]:
    """Every count, and 0 for ``error_type`` of each signal until it happens: "nothing lost" is a series, not a gap."""
    keys = {("spans", error_type), ("logs", error_type), *counts}
    return [Observation(counts.get(key, 0), {"signal": key[0], "error.type": key[1]}) for key in sorted(keys)]


def observe(meter_provider: MeterProvider) -> None:
    """Register the two observable counters on ``meter_provider`` (once per provider)."""
    meter = meter_provider.get_meter("otel_trading.export")
    meter.create_observable_counter(
        "otel_trading.export.dropped",
        callbacks=[lambda _options: _observations(LOSSES.dropped, "queue_full")],
        unit="{item}",
        description="Spans / log records dropped before export (error.type=queue_full: the export queue was full).",
    )
    meter.create_observable_counter(
        "otel_trading.export.failed",
        callbacks=[lambda _options: _observations(LOSSES.failed, "export_failed")],
        unit="{item}",
        description="Spans / log records in batches the exporter failed to deliver (after its retries).",
    )


class CountingExporter:
    """Wraps a batch processor's exporter: items of a batch whose export failed are counted, once per batch."""

    def __init__(self, inner: Any, signal: str) -> None:
        self.inner = inner
        self._signal = signal
        self._own_account = getattr(inner, "tally", None) is not None

    def export(self, batch: Sequence) -> Any:
        if self._own_account:  # the spool counts what it loses itself (rejected, evicted, unusable)
            return self.inner.export(batch)
        try:
            result = self.inner.export(batch)
        except Exception as exc:
            LOSSES.fail(self._signal, len(batch), type(exc).__name__)
            raise
        if getattr(result, "name", "SUCCESS") != "SUCCESS":
            LOSSES.fail(self._signal, len(batch), "export_failed")
        return result

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> Any:
        """The SDK passes ``timeout_millis`` when the exporter takes it; so does this, to the inner one."""
        if "timeout_millis" in inspect.getfullargspec(self.inner.shutdown).args:
            return self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
        return self.inner.shutdown(**kwargs)

    def __getattr__(self, name: str) -> Any:  # force_flush and whatever else callers reach for
        return getattr(self.inner, name)
