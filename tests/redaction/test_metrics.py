"""Metric data-point attributes are redacted at collection time, once per attribute set."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOnExemplarFilter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View

from otel_trading.redaction import MASK, RedactingMetricReader, Redactor

TOKEN = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"


def _points(reader):
    data = reader.get_metrics_data()
    return {m.name: list(m.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def test_data_point_attributes_are_masked_once_per_attribute_set_not_per_add():
    seen = []
    reader = InMemoryMetricReader()
    RedactingMetricReader.wrap(reader, Redactor(hook=lambda mapping: seen.append(dict(mapping))))
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    counter, latency = meter.create_counter("orders"), meter.create_histogram("ack", unit="s")
    for _ in range(1000):
        counter.add(1, {"api_key": TOKEN, "symbol": "AAPL", "venue.url": "https://bot:hunter2pw@broker.example.com/x"})
        latency.record(0.001, {"note": f"key {TOKEN}", "symbol": "MSFT"})
    first, second = _points(reader), _points(reader)
    for points in (first, second):
        assert points["orders"][0].attributes == {"api_key": MASK, "symbol": "AAPL", "venue.url": "https://bot:***@broker.example.com/x"}
        assert points["orders"][0].value == 1000
        assert points["ack"][0].attributes == {"note": "key ***", "symbol": "MSFT"} and points["ack"][0].count == 1000
    # 2,000 measurements, two collections: each attribute set went through the redactor (and its hook) once
    assert len(seen) == 2


def test_exemplar_filtered_attributes_are_masked():
    reader = InMemoryMetricReader()
    RedactingMetricReader.wrap(reader, Redactor())
    provider = MeterProvider(metric_readers=[reader], views=[View(instrument_name="orders", attribute_keys={"symbol"})], exemplar_filter=AlwaysOnExemplarFilter())
    provider.get_meter("t").create_counter("orders").add(1, {"symbol": "AAPL", "password": "hunter2pw", "note": f"key {TOKEN}"})
    (point,) = _points(reader)["orders"]
    assert point.attributes == {"symbol": "AAPL"}
    assert [dict(e.filtered_attributes) for e in point.exemplars] == [{"password": MASK, "note": "key ***"}]


def test_redaction_off_leaves_metrics_as_they_are():
    reader = InMemoryMetricReader()
    RedactingMetricReader.wrap(reader, Redactor(enabled=False))
    MeterProvider(metric_readers=[reader]).get_meter("t").create_counter("orders").add(1, {"api_key": TOKEN})
    assert _points(reader)["orders"][0].attributes == {"api_key": TOKEN}
