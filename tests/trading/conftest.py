"""Fixtures for the trading helpers: fresh SDK providers swapped in as the globals.

The API lets a process set its global providers once; the helpers read the
globals, so each test installs its own provider directly and restores the old one.
"""

from __future__ import annotations

import pytest
from opentelemetry import trace as trace_api
from support import Spans

from otel_trading import config
from otel_trading.trading import metrics, tracing


@pytest.fixture
def use_tracer_provider():
    """Call with an optional sampler; returns Spans whose provider is the global one for the test."""
    old = trace_api._TRACER_PROVIDER
    metrics._warned.clear()
    tracing.ORDERS.clear()

    def install(sampler=None) -> Spans:
        spans = Spans(sampler)
        trace_api._TRACER_PROVIDER = spans.provider
        return spans

    yield install
    trace_api._TRACER_PROVIDER = old
    tracing.ORDERS.clear()


@pytest.fixture
def spans(use_tracer_provider) -> Spans:
    return use_tracer_provider()


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setattr(config.current(), "strict", True)
