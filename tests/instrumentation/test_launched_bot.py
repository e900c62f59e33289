"""An unchanged bot (tests/trading_bot.py: ccxt sync + async, alpaca-py) under ``opentelemetry-instrument``
against fake venues on 127.0.0.1 exports trading spans, linked fills and metrics, and no secrets;
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=ccxt`` turns the ccxt ones off.

One launched run per configuration is shared by every test in the module (importing ccxt is slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_alpaca import FakeAlpaca
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto
from otlp_receiver import OtlpReceiver
from support import BIN, otlp_env

from otel_trading.demo.fake_exchange import FakeExchange

pytestmark = pytest.mark.slow
BOT = Path(__file__).with_name("trading_bot.py")
SECRETS = ("bot-api-key-ABCDEF123456", "bot-secret-GHIJKL789012", "PKBOTKEY0123456789", "botalpacasecret0123456789")
HTTP_SCOPES = ("opentelemetry.instrumentation.requests", "opentelemetry.instrumentation.aiohttp_client")


class Run:
    def __init__(self, disabled: str | None):
        self.receiver = OtlpReceiver().start()
        self.binance, self.alpaca = FakeExchange(slow_seconds=1.0).start(), FakeAlpaca(slow_seconds=1.0).__enter__()
        env = otlp_env(self.receiver, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled or "")
        command = [str(BIN / "opentelemetry-instrument"), sys.executable, str(BOT), self.binance.url, self.alpaca.url]
        self.proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=90)
        assert self.proc.returncode == 0, self.proc.stderr[-3000:]
        self.done = json.loads(self.proc.stdout.strip().splitlines()[-1])
        self.spans = self.receiver.spans()
        self.metrics = self.receiver.metrics()

    def stop(self) -> None:
        self.binance.stop()
        self.alpaca.__exit__()
        self.receiver.stop()

    def named(self, name: str, **attributes) -> list:
        return [s for s in self.spans if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())]

    def one(self, name: str, **attributes):
        found = self.named(name, **attributes)
        assert len(found) == 1, (name, attributes, [(s.name, s.attributes) for s in self.spans if s.name == name])
        return found[0]

    def points(self, metric: str) -> list:
        """The last exported point of each series (exports repeat cumulative points)."""
        last = {}
        for m in self.metrics:
            if m.name == metric:
                for p in m.points:
                    last[tuple(sorted(_attributes(p).items()))] = p
        return list(last.values())


@pytest.fixture(scope="module")
def run():
    result = Run(disabled=None)
    yield result
    result.stop()


@pytest.fixture(scope="module")
def run_without_ccxt():
    result = Run(disabled="ccxt")
    yield result
    result.stop()


def _attributes(point) -> dict:
    from otlp_receiver import attributes

    return attributes(point.attributes)


def test_ccxt_orders_become_order_spans_with_the_exchange_answer(run):
    limit = run.one("ccxt create_order", **{"trading.order.client_order_id": "bot-limit-1"})
    assert limit.kind == SpanProto.SPAN_KIND_CLIENT
    assert limit.attributes == limit.attributes | {
        "trading.span.kind": "order",
        "trading.order.action": "submit",
        "trading.venue": "binance",
        "trading.symbol": "BTC/USDT",
        "trading.side": "buy",
        "trading.order.type": "limit",
        "trading.order.quantity": 0.01,
        "trading.order.limit_price": 49_000.0,
        "trading.order.id": run.done["limit"],
        "trading.order.status": "open",
    }
    market = run.one("ccxt create_market_sell_order")
    assert market.attributes["trading.side"] == "sell" and market.attributes["trading.order.type"] == "market"
    assert market.attributes["trading.order.status"] == "closed" and market.attributes["trading.order.id"] == run.done["market"]
    # create_market_sell_order calls create_order inside ccxt: still one order span
    assert not run.named("ccxt create_order", **{"trading.order.id": run.done["market"]})
    resting = run.one("ccxt create_limit_buy_order")
    cancel = run.one("ccxt cancel_order")
    assert cancel.attributes["trading.order.action"] == "cancel" and cancel.attributes["trading.order.status"] == "canceled"
    assert [link.span_id.hex() for link in cancel.links] == [resting.span_id]
    async_order = run.one("ccxt create_order", **{"trading.order.id": run.done["async_market"]})
    assert async_order.attributes["trading.symbol"] == "ETH/USDT"
    # an amend the venue answers with a new id: linked to the order it replaces; the cancel of the new id links to the amend
    alpaca_resting = run.one("alpaca submit_order", **{"trading.order.id": run.done["alpaca_resting"]})
    amend = run.one("alpaca replace_order_by_id")
    assert amend.attributes["trading.order.action"] == "amend" and amend.attributes["trading.order.id"] == run.done["alpaca_replaced"]
    assert [link.span_id.hex() for link in amend.links] == [alpaca_resting.span_id]
    assert [link.span_id.hex() for link in run.one("alpaca cancel_order_by_id").links] == [amend.span_id]


def test_fills_are_execution_spans_linked_to_their_order(run):
    def fill_of(order_span):
        fills = run.named("fill", **{"trading.order.id": order_span.attributes["trading.order.id"]})
        assert len(fills) == 1, [(s.name, s.attributes) for s in run.spans if s.name == "fill"]
        fill = fills[0]
        assert fill.attributes["trading.span.kind"] == "execution"
        assert [(link.trace_id.hex(), link.span_id.hex()) for link in fill.links] == [(order_span.trace_id, order_span.span_id)]
        return fill

    # filled in the answer to the order: the fill is a child of the order span
    market = run.one("ccxt create_market_sell_order")
    fill = fill_of(market)
    assert fill.parent_span_id == market.span_id
    assert fill.attributes["trading.fill.quantity"] == 0.02 and fill.attributes["trading.fill.price"] == 50_000.0
    # filled later, seen by fetch_order (execution span, linked too); fetch_my_trades sees it again: no second fill
    limit = run.one("ccxt create_order", **{"trading.order.client_order_id": "bot-limit-1"})
    look_up = run.one("ccxt fetch_order")
    assert look_up.attributes["trading.span.kind"] == "execution" and look_up.attributes["trading.order.status"] == "closed"
    assert [link.span_id.hex() for link in look_up.links] == [limit.span_id]
    assert fill_of(limit).parent_span_id == look_up.span_id
    assert run.one("ccxt fetch_my_trades").attributes["trading.span.kind"] == "reconciliation"
    fill_of(run.one("ccxt create_order", **{"trading.order.id": run.done["async_market"]}))
    fill_of(run.one("alpaca submit_order", **{"trading.order.id": run.done["alpaca_market"]}))
    alpaca_limit = run.one("alpaca submit_order", **{"trading.order.id": run.done["alpaca_limit"]})
    assert fill_of(alpaca_limit).parent_span_id == run.one("alpaca get_order_by_id").span_id


def test_exchange_errors_set_error_status_reason_and_are_reraised(run):
    assert run.done["errors"] == ["InsufficientFunds", "InvalidOrder", "DDoSProtection", "RequestTimeout", "APIError"]
    failed = {s.attributes["trading.reject.reason"]: s for s in run.spans if "trading.reject.reason" in s.attributes and s.name.startswith("ccxt")}
    assert set(failed) == {"insufficient_funds", "invalid_order", "rate_limit", "timeout"}
    assert failed["insufficient_funds"].attributes["error.type"] == "ccxt.base.errors.InsufficientFunds"
    assert failed["timeout"].attributes["error.type"] == "ccxt.base.errors.RequestTimeout"
    for span in failed.values():
        assert span.status_code == 2  # STATUS_CODE_ERROR
        assert [e.name for e in span.events] == ["exception"]
    alpaca = [s for s in run.named("alpaca submit_order") if s.status_code == 2]
    assert len(alpaca) == 1 and alpaca[0].attributes["error.type"] == "alpaca.common.exceptions.APIError"
    assert alpaca[0].attributes["trading.reject.reason"] == "insufficient_funds"
    reasons = {(a["trading.venue"], a["trading.reject.reason"]): p.as_int for p in run.points("trading.order.rejections") for a in [_attributes(p)]}
    assert reasons == {("binance", "insufficient_funds"): 1, ("binance", "invalid_order"): 1, ("binance", "rate_limit"): 1, ("binance", "timeout"): 1, ("alpaca", "insufficient_funds"): 1}


def test_market_data_and_portfolio_calls(run):
    for name, symbol, venue in (("ccxt fetch_ticker", "BTC/USDT", "binance"), ("ccxt fetch_order_book", "BTC/USDT", "binance"), ("ccxt fetch_ohlcv", "ETH/USDT", "binance"), ("alpaca get_stock_latest_quote", "AAPL", "alpaca")):
        span = run.one(name)
        assert span.kind == SpanProto.SPAN_KIND_CONSUMER
        assert span.attributes == span.attributes | {"trading.span.kind": "market_data", "trading.symbol": symbol, "trading.venue": venue}
    for name in ("ccxt fetch_balance", "alpaca get_account", "alpaca get_all_positions"):
        assert run.one(name).attributes["trading.span.kind"] == "portfolio"
    ticks = {_attributes(p)["trading.feed"]: p.as_int for p in run.points("trading.market_data.ticks")}
    assert ticks == {"binance": 3, "alpaca": 1}


def test_the_libraries_http_spans_nest_under_the_trading_span(run):
    by_id = {s.span_id: s for s in run.spans}
    http = [s for s in run.spans if s.scope in HTTP_SCOPES]
    assert {s.scope for s in http} == set(HTTP_SCOPES)  # sync ccxt and alpaca use requests, async ccxt aiohttp
    for name in ("ccxt create_order", "ccxt fetch_order", "ccxt fetch_ticker", "ccxt fetch_ohlcv", "alpaca submit_order", "alpaca get_stock_latest_quote"):
        for span in run.named(name):
            children = [s for s in http if s.parent_span_id == span.span_id]
            assert children and all(c.trace_id == span.trace_id for c in children), name
    # only market loading (not a trading call) has HTTP spans of its own
    roots = [s for s in http if s.parent_span_id not in by_id]
    assert all("exchangeInfo" in str(s.attributes.get("url.full") or s.attributes.get("http.url")) for s in roots)


def test_metrics_count_orders_acks_and_fills(run):
    def total(metric: str, field: str = "as_int", **match: str) -> int:
        return sum(getattr(p, field) for p in run.points(metric) if _attributes(p).items() >= match.items())

    orders = "trading.orders"
    assert total(orders, **{"trading.venue": "binance", "trading.order.status": "open"}) == 2  # the two resting limit orders
    assert total(orders, **{"trading.venue": "binance", "trading.order.status": "closed"}) == 2  # market sell, async market buy
    assert total(orders, **{"trading.venue": "binance", "trading.order.status": "rejected"}) == 4
    assert total(orders, **{"trading.venue": "alpaca", "trading.order.status": "filled"}) == 1
    assert total(orders, **{"trading.venue": "alpaca", "trading.order.status": "new"}) == 2
    assert total(orders, **{"trading.venue": "alpaca", "trading.order.status": "rejected"}) == 1
    assert total(orders, **{"trading.side": "sell", "trading.order.type": "market"}) == 1
    # every accepted order's answer is an ack
    assert total("trading.order.ack.duration", "count", **{"trading.venue": "binance"}) == 4
    assert total("trading.order.ack.duration", "count", **{"trading.venue": "alpaca"}) == 3
    # 3 ccxt orders and 2 alpaca orders filled, each fill counted once however often it was seen
    assert total("trading.fills") == 5 and total("trading.fills", **{"trading.venue": "binance"}) == 3
    assert total("trading.order.fill.duration", "count") == 5


def test_no_key_secret_or_signature_leaves_the_process(run):
    signatures = {query["signature"] for _, _, query, _ in run.binance.requests if "signature" in query}
    assert len(signatures) >= 8  # the bot's private calls were signed
    exported = b"".join(r.SerializeToString() for requests in run.receiver.requests.values() for r in requests)
    for secret in (*SECRETS, *signatures):
        assert secret.encode() not in exported, secret
    # the signed URLs are exported, masked
    urls = [str(s.attributes.get("url.full") or s.attributes.get("http.url")) for s in run.spans if s.scope in HTTP_SCOPES]
    assert any("signature=***" in url for url in urls)
    # the timed-out order's exception message names the signed URL: masked too
    timeout = run.one("ccxt create_order", **{"trading.reject.reason": "timeout"})
    assert "api/v3/order" in str(timeout.events[0].attributes)


def test_disabled_ccxt_instrumentation_produces_no_ccxt_telemetry(run_without_ccxt):
    run = run_without_ccxt
    assert not [s for s in run.spans if s.name.startswith("ccxt ") or s.attributes.get("trading.venue") == "binance"]
    assert not [p for m in run.metrics if m.name.startswith("trading.") for p in m.points if _attributes(p).get("trading.venue") == "binance"]
    # the bot still traded, alpaca is still instrumented, ccxt's HTTP calls are still traced
    assert run.done["errors"][:4] == ["InsufficientFunds", "InvalidOrder", "DDoSProtection", "RequestTimeout"]
    assert run.named("alpaca submit_order")
    assert [s for s in run.spans if s.scope == HTTP_SCOPES[0] and "/api/v3/order" in str(s.attributes.get("url.full") or s.attributes.get("http.url"))]
