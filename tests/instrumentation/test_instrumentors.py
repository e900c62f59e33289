"""The ccxt and alpaca instrumentors in-process: activation, every exchange class, dropped market data,
telemetry failures that must not touch the trading call, uninstrument."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time

import ccxt
import ccxt.async_support as ccxt_async
import pytest
import wrapt.importer
from opentelemetry.instrumentation.dependencies import DependencyConflictError
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from support import exported

from otel_trading.demo.fake_exchange import FakeExchange
from otel_trading.instrumentation import calls
from otel_trading.instrumentation.alpaca import AlpacaInstrumentor
from otel_trading.onimport import on_import
from otel_trading.instrumentation.ccxt import CcxtInstrumentor
from otel_trading.sampling import parentbased_trading_sampler


@pytest.fixture(scope="module")
def instrumented():
    CcxtInstrumentor().instrument()
    yield
    CcxtInstrumentor().uninstrument()


@pytest.fixture(scope="module")
def venue():
    with FakeExchange(slow_seconds=0.5) as fake:
        yield fake


@pytest.fixture
def exchange(instrumented, venue):
    calls.FILLS.clear()
    exchange = venue.route(ccxt.binance(venue.ccxt_config()))
    exchange.load_markets()
    return exchange


def test_every_exchange_class_is_traced_sync_and_async(spans, instrumented, venue):
    # kraken and okx answer differently from the Binance-shaped fake: their create_order fails, traced as such
    kraken = venue.route(ccxt.kraken({"apiKey": "k", "secret": "c2VjcmV0", "enableRateLimit": False}))
    with pytest.raises(ccxt.BaseError) as raised:
        kraken.create_order("BTC/USD", "limit", "buy", 1, 100)

    async def okx_order():
        okx = venue.route(ccxt_async.okx({"apiKey": "k", "secret": "s", "password": "p", "enableRateLimit": False}))
        try:
            await okx.create_order("BTC/USDT", "market", "buy", 1)
        finally:
            await okx.close()

    with pytest.raises(ccxt.BaseError) as raised_async:
        asyncio.run(okx_order())
    by_venue = {s.attributes["trading.venue"]: s for s in spans.finished() if s.name == "ccxt create_order"}
    assert set(by_venue) == {"kraken", "okx"}
    assert by_venue["kraken"].attributes["error.type"] == f"{type(raised.value).__module__}.{type(raised.value).__qualname__}"
    assert by_venue["okx"].attributes["error.type"] == f"{type(raised_async.value).__module__}.{type(raised_async.value).__qualname__}"
    assert all(s.status.status_code.name == "ERROR" for s in by_venue.values())


def test_dropped_market_data_calls_leave_no_span_and_still_count(use_tracer_provider, metric_reader, exchange):
    spans = use_tracer_provider(parentbased_trading_sampler("market_data=0"))

    def requests_counted() -> int:
        calls.REQUESTS.flush()  # done at most once a second while running, and at exit
        points = exported(metric_reader).get("trading.market_data.ticks")
        return sum(p.value for p in points.data.data_points if p.attributes == {"trading.feed": "binance"}) if points else 0

    before = requests_counted()
    RequestsInstrumentor().instrument(tracer_provider=spans.provider)
    try:
        for _ in range(3):
            assert exchange.fetch_ticker("BTC/USDT")["last"] == 50_000.0
        order = exchange.create_order("BTC/USDT", "market", "buy", 0.01)
    finally:
        RequestsInstrumentor().uninstrument()
    # no market data span and no HTTP span under it; the order and its HTTP call are kept
    assert sorted({s.name for s in spans.finished()}) == ["POST", "ccxt create_order", "fill"]
    assert order["status"] == "closed"
    assert requests_counted() - before == 3


def test_a_telemetry_failure_never_touches_the_trading_call(spans, exchange, monkeypatch, capsys):
    def broken(venue, state):
        raise RuntimeError("odd answer")

    monkeypatch.setattr(calls.FILLS, "new_fills", broken)
    order = exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 49_000)
    assert order["status"] == "open"  # the library's answer, unchanged
    assert "could not record telemetry" in capsys.readouterr().err
    assert spans.named("ccxt create_order").status.status_code.name == "UNSET"


def test_errors_are_reraised_unchanged(spans, exchange):
    with pytest.raises(ccxt.InsufficientFunds) as raised:
        exchange.create_order("BTC/USDT", "limit", "buy", 999, 49_000)
    assert "insufficient balance" in str(raised.value)
    span = spans.named("ccxt create_order")
    assert span.attributes["trading.reject.reason"] == "insufficient_funds"
    assert span.events[0].attributes["exception.type"] == "ccxt.base.errors.InsufficientFunds"


def test_activation_needs_the_library(monkeypatch, caplog):
    monkeypatch.setattr(AlpacaInstrumentor, "instrumentation_dependencies", lambda self: ("alpaca-py >= 99",))
    hooked = []
    monkeypatch.setattr("wrapt.register_post_import_hook", lambda hook, name: hooked.append(name))
    # opentelemetry-instrument passes skip_dep_check=True (it checked the otel-trading distribution, not
    # alpaca-py): the instrumentor checks its own library and hands the conflict to the loader
    with pytest.raises(DependencyConflictError) as raised:
        AlpacaInstrumentor().instrument(skip_dep_check=True)
    assert "alpaca-py >= 99" in str(raised.value.conflict)
    # called by hand, it says why on the log
    with caplog.at_level(logging.ERROR):
        AlpacaInstrumentor().instrument()
    assert "alpaca-py >= 99" in caplog.text
    assert hooked == [] and not AlpacaInstrumentor().is_instrumented_by_opentelemetry


def test_the_distro_checks_our_libraries_before_importing_their_instrumentors(monkeypatch):
    from importlib.metadata import EntryPoint

    from otel_trading.bootstrap.distro import OtelTradingDistro
    from otel_trading.instrumentation import DEPENDENCIES

    monkeypatch.setitem(DEPENDENCIES, "alpaca", ("alpaca-py >= 99",))
    # a module that does not exist: loading the entry point would raise ModuleNotFoundError instead
    ep = EntryPoint("alpaca", "otel_trading.instrumentation.not_imported:AlpacaInstrumentor", "opentelemetry_instrumentor")
    with pytest.raises(DependencyConflictError) as raised:
        OtelTradingDistro().load_instrumentor(ep, skip_dep_check=True)
    conflict = raised.value.conflict
    # what the instrumentor itself hands the loader: a version outside the range is logged as an error
    assert conflict.required == "alpaca-py >= 99" and conflict.found.startswith("alpaca-py ")


def test_uninstrument_restores_the_library(spans, instrumented, venue):
    exchange = venue.route(ccxt.binance(venue.ccxt_config()))
    exchange.fetch_ticker("BTC/USDT")
    CcxtInstrumentor().uninstrument()
    try:
        assert not hasattr(type(exchange).__dict__["fetch_ticker"], "__wrapped__")
        fresh = venue.route(ccxt.binance(venue.ccxt_config()))
        fresh.fetch_ticker("BTC/USDT")
        assert [s.name for s in spans.finished()] == ["ccxt fetch_ticker"]
    finally:
        CcxtInstrumentor().instrument()


def test_a_fork_while_another_thread_imports_does_not_block_the_child(tmp_path, monkeypatch):
    # the lazy import hooks put a finder with a lock in front of every import; an exporter thread
    # importing at the moment of a fork must not leave the child's imports waiting for it forever
    on_import("a_module_nobody_imports", lambda module: None)
    (tmp_path / "imported_in_the_child.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    held, release = threading.Event(), threading.Event()

    def importing_thread():
        with wrapt.importer._post_import_hooks_lock:  # as inside an import
            held.set()
            release.wait(5)

    thread = threading.Thread(target=importing_thread)
    thread.start()
    held.wait()
    threading.Timer(0.2, release.set).start()
    pid = os.fork()
    if pid == 0:  # the child: one import, then out
        try:
            import imported_in_the_child  # noqa: F401
        finally:
            os._exit(0)
    thread.join()
    deadline, status = time.monotonic() + 10, (0, 0)
    while status == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
        status = os.waitpid(pid, os.WNOHANG)
    if status == (0, 0):
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert status != (0, 0), "the forked child could not import: the import hook lock was inherited held"
    assert os.waitstatus_to_exitcode(status[1]) == 0
    assert "imported_in_the_child" not in sys.modules  # imported in the child only
