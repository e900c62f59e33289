"""Metric views the stock SDK configuration path cannot express.

* Duration histograms (unit ``s``) get buckets that fit trading latencies,
  tens of microseconds to seconds, instead of the SDK's 0..10000 defaults.
* A cardinality limit per metric stream: once a metric holds ``limit - 1``
  attribute sets, new ones fold into one ``otel.metric.overflow=true`` series
  (as the OpenTelemetry metrics spec describes), so a symbol label can never
  grow memory without bound. The SDK 1.45 has no such limit, so it is added to
  its view-matching class here, once, for the whole process.
"""

from __future__ import annotations

import dataclasses

from opentelemetry.sdk.metrics import Histogram
from opentelemetry.sdk.metrics._internal import _view_instrument_match as _match
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from otel_trading.report import report_once

OVERFLOW_ATTRIBUTES = {"otel.metric.overflow": True}

_limit = [2000]


def latency_views(buckets: tuple[float, ...]) -> list[View]:
    return [
        View(
            instrument_type=Histogram,
            instrument_unit="s",
            aggregation=ExplicitBucketHistogramAggregation(boundaries=list(buckets)),
        )
    ]


def set_cardinality_limit(limit: int) -> None:
    """Limit every metric stream in this process to ``limit`` attribute sets."""
    _limit[0] = limit
    cls = _match._ViewInstrumentMatch
    if getattr(cls.consume_measurement, "_otel_trading", False):
        return
    original = cls.consume_measurement

    def consume_measurement(self, measurement, should_sample_exemplar=True):
        known = self._attributes_aggregation
        if len(known) >= _limit[0] - 1 and measurement.attributes:
            attributes = measurement.attributes
            if self._view._attribute_keys is not None:
                attributes = {k: v for k, v in attributes.items() if k in self._view._attribute_keys}
            if _match._hash_attributes(dict(attributes)) not in known:
                _warn_once(self._name)
                measurement = dataclasses.replace(measurement, attributes=OVERFLOW_ATTRIBUTES)
        original(self, measurement, should_sample_exemplar)

    setattr(consume_measurement, "_otel_trading", True)
    setattr(cls, "consume_measurement", consume_measurement)


def _warn_once(name: str) -> None:
    report_once(
        f"metric {name} reached OTEL_TRADING_CARDINALITY_LIMIT={_limit[0]}; further attribute sets are counted under otel.metric.overflow=true",
        key=("cardinality", name),
    )
