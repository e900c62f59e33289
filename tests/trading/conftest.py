"""Fixtures for the trading helpers (the provider fixtures are shared, in tests/conftest.py)."""

from __future__ import annotations

import pytest

from otel_trading import config


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setattr(config.current(), "strict", True)
