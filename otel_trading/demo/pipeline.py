"""The simulated trading pipeline the demo runs.

    feed thread --tick msg--> strategy thread --order msg--> venue thread
      market_data span         signal span, then a new       venue.handle_order span
                               order trace: risk check,      (ack / reject / error, some
                               send, wait for the ack        slow); fills later, as
                                                             execution reports
    asyncio loop (main thread): portfolio task (execution + portfolio spans,
    P&L and positions), reconciliation task every second.

Messages carry W3C trace context in their headers (the message hop). A tick's
trace holds the tick and the strategy's evaluation; each order is its own
trace (so sampling the firehose never cuts an order) linked to the signal that
caused it; fills arrive later in their own traces, linked to their order.
Everything is driven by seeded random generators, one per component.

With ``Config.exchange`` (``--exchange ccxt``) orders go through ccxt to the
local fake exchange instead (``fake_exchange.py``), traced by otel-trading's
ccxt instrumentation: the order span holds ``ccxt create_order`` and its HTTP
call; the venue thread polls ``fetch_order`` for the fills.
"""

from __future__ import annotations

import asyncio
import heapq
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import structlog
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.trace import Link, Status, StatusCode

from otel_trading import health
from otel_trading.trading import kpis
from otel_trading.trading import metrics as tm
from otel_trading.trading import propagation as tp
from otel_trading.trading import tracing as tt

SYMBOLS = {"AAPL": 187.30, "MSFT": 414.20, "NVDA": 131.50, "ESZ6": 6020.25}
VENUES = ("XNAS", "ARCA")
CCXT_SYMBOLS = {"BTC/USDT": 50_000.0, "ETH/USDT": 3_000.0}  # what the fake exchange lists
STRATEGY = "mm-demo-1"
FEED = "sim-itch"
CAPITAL = 1_000_000.0  # the simulated account's starting equity
REJECT_REASONS = ("price_band", "insufficient_margin", "max_order_size")

log = structlog.get_logger("otel_trading.demo")


@dataclass
class Config:
    duration: float = 5.0
    rate: float = 200.0  # ticks per second
    seed: int = 42
    signal_probability: float = 0.04  # ticks that trigger an order
    risk_reject: float = 0.08
    venue_reject: float = 0.08
    venue_error: float = 0.03
    venue_slow: float = 0.05
    exchange: Callable[[], Any] | None = None  # makes a ccxt exchange (one per thread): orders go through it


@dataclass
class Stats:
    ticks: int = 0
    signals: int = 0
    orders: int = 0
    acked: int = 0
    risk_rejected: int = 0
    venue_rejected: int = 0
    failed: int = 0
    fills: int = 0
    reconciliations: int = 0
    # the first order ids of each outcome, for the report (bounded: the stack runs the demo for a day)
    order_ids: list = field(default_factory=list)
    rejected_ids: list = field(default_factory=list)
    failed_ids: list = field(default_factory=list)
    filled_ids: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    KEEP = 100

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def note(self, ids: list, order_id: str) -> None:
        with self.lock:
            if len(ids) < self.KEEP and order_id not in ids:
                ids.append(order_id)


@dataclass
class Message:
    headers: dict
    body: dict
    created_ns: int
    reply: Any = None


class VenueError(Exception):
    """The simulated venue failed to handle an order."""


class Pipeline:
    def __init__(self, config: Config):
        self.config = config
        self.stats = Stats()
        self.tracer = trace.get_tracer("otel_trading.demo")
        self.ticks: queue.Queue[Message | None] = queue.Queue()
        self.orders: queue.Queue[Message | None] = queue.Queue()
        self.stop_feed = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.fills: asyncio.Queue | None = None
        self.positions: dict[str, float] = {}
        self.venue_positions: dict[str, float] = {}
        self.cash = 0.0
        self.entry_price: dict[str, float] = {}  # average entry price of each open position
        self.venue_reset_at = -1e9  # time.monotonic() of the venue's last session reset
        self.symbols = CCXT_SYMBOLS if config.exchange else SYMBOLS
        self.last_price = dict(self.symbols)

    # -- feed ---------------------------------------------------------------------------

    def feed(self) -> None:
        try:
            self._feed()
        except Exception:  # noqa: BLE001 - a bug must not hang the demo
            log.exception("feed failed")
        finally:
            self.ticks.put(None)

    def _feed(self) -> None:
        rng = random.Random(self.config.seed * 10 + 1)
        interval = 1.0 / self.config.rate
        prices = dict(self.symbols)
        sequence = 0
        next_at = time.monotonic()
        while not self.stop_feed.is_set():
            symbol = rng.choice(tuple(prices))
            prices[symbol] = round(prices[symbol] * (1 + rng.gauss(0, 0.0004)), 2)
            sequence += 1
            received = time.time_ns()
            kpis.record_market_data_latency((received / 1e9) - abs(rng.gauss(0.002, 0.001)), received / 1e9, FEED)
            with tt.market_data_span("md.tick", feed=FEED, symbol=symbol, price=prices[symbol], sequence=sequence):
                tm.record_tick(FEED, symbol)
                tm.record_stage("feed")
                body = {"symbol": symbol, "price": prices[symbol], "sequence": sequence}
                self.ticks.put(Message(cast(dict, tp.inject({})), body, received))
            self.stats.add("ticks")
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop_feed.wait(delay)
            elif delay < -1.0:
                next_at = time.monotonic()  # fell behind (slow machine): do not burst to catch up

    # -- strategy: signal, risk, order ------------------------------------------------------

    def strategy(self) -> None:
        rng = random.Random(self.config.seed * 10 + 2)
        try:
            while True:
                msg = self.ticks.get()
                if msg is None:
                    break
                try:
                    self._evaluate(msg, rng)
                except Exception:  # noqa: BLE001
                    log.exception("strategy failed on a tick")
        finally:
            self.orders.put(None)

    def _evaluate(self, msg: Message, rng: random.Random) -> None:
        token = otel_context.attach(tp.extract(msg.headers))
        order = None
        try:
            with tt.signal_span("strategy.evaluate", strategy_id=STRATEGY, symbol=msg.body["symbol"], stage="strategy") as span:
                tm.record_stage("strategy", lag_seconds=max(0.0, (time.time_ns() - msg.created_ns) / 1e9))
                self.last_price[msg.body["symbol"]] = msg.body["price"]
                if rng.random() < self.config.signal_probability:
                    self.stats.add("signals")
                    side = rng.choice(("buy", "sell"))
                    quantity = rng.choice((10, 25, 50, 100, 200))
                    tick = 0.01 if msg.body["symbol"] != "ESZ6" else 0.25
                    offset = tick * rng.randint(0, 3)
                    limit = round(msg.body["price"] + (offset if side == "buy" else -offset), 2)
                    tt.add_event("signal.fired", side=side, quantity=quantity)
                    venue = rng.choice(VENUES) if self.config.exchange is None else "binance"
                    order = (msg, side, quantity, limit, span.get_span_context(), venue, rng.random())
        finally:
            otel_context.detach(token)
        if order is not None:
            self.submit(*order)

    def submit(self, msg: Message, side: str, quantity: int, limit: float, signal_ctx, venue: str, risk_draw: float) -> None:
        with self.stats.lock:
            self.stats.orders += 1
            order_id = f"ORD-{self.stats.orders:06d}"
        self.stats.note(self.stats.order_ids, order_id)
        symbol = msg.body["symbol"]
        links = [Link(signal_ctx, {"trading.link.reason": "signal"})] if signal_ctx.trace_flags.sampled else None
        tt.mark_tick(msg.created_ns)  # tick-to-trade starts when the tick arrived
        # each order is its own trace, carrying a correlation id in baggage (to the venue, into logs)
        token = otel_context.attach(baggage.set_baggage(tp.CORRELATION_BAGGAGE_KEY, f"trade-{order_id}", otel_context.Context()))
        outcome = "error"
        try:
            with tt.order_span(
                "order.submit",
                order_id=order_id,
                action="submit",
                side=side,
                order_type="limit",
                quantity=quantity,
                limit_price=limit,
                symbol=symbol,
                venue=venue,
                strategy_id=STRATEGY,
                time_in_force="day",
                links=links,
            ):
                log.info("order submitted", order_id=order_id, symbol=symbol, side=side, quantity=quantity, limit_price=limit, venue=venue)
                with tt.risk_span("risk.pre_trade", order_id=order_id, strategy_id=STRATEGY, symbol=symbol):
                    notional = quantity * limit
                    if risk_draw < self.config.risk_reject:
                        tt.set_attributes(status="rejected", reject_reason="risk_limit")
                        tm.record_rejection("risk_limit", venue, STRATEGY, symbol)
                        tt.add_event("risk.rejected", reject_reason="risk_limit")
                        self.stats.add("risk_rejected")
                        self.stats.note(self.stats.rejected_ids, order_id)
                        log.warning("order rejected by risk", order_id=order_id, reject_reason="risk_limit", notional=round(notional, 2))
                        outcome = "rejected"
                if outcome == "rejected":
                    tt.set_attributes(status="rejected", reject_reason="risk_limit")  # on the order span
                    return
                body = {"order_id": order_id, "symbol": symbol, "side": side, "quantity": quantity, "limit": limit, "venue": venue}
                if self.config.exchange is not None:
                    status, detail = self._send_ccxt(body, risk_draw)
                else:
                    reply: queue.Queue = queue.Queue(maxsize=1)
                    headers: dict = {}
                    with tp.producer_span(f"orders.{venue}", headers, system="inproc", order_id=order_id):
                        self.orders.put(Message(headers, body, time.time_ns(), reply))
                    try:
                        status, detail = reply.get(timeout=2.0)
                    except queue.Empty:
                        status, detail = "error", "no answer from the venue within 2 s"
                outcome = status
                if status == "acked":
                    seconds = tt.order_acked(order_id) if self.config.exchange is None else None  # ccxt: measured by the instrumentation
                    tt.set_attributes(status="acked")
                    tt.add_event("order.acked", status="acked")
                    self.stats.add("acked")
                    log.info("order acked", order_id=order_id, ack_ms=round((seconds or 0) * 1000, 3))
                elif status == "rejected":
                    tt.set_attributes(status="rejected", reject_reason=detail)
                    tt.add_event("order.rejected", reject_reason=detail)
                    if self.config.exchange is None:  # the ccxt instrumentation counts its rejections
                        tm.record_rejection(detail, venue, STRATEGY, symbol)
                    self.stats.add("venue_rejected")
                    self.stats.note(self.stats.rejected_ids, order_id)
                    log.warning("order rejected by venue", order_id=order_id, reject_reason=detail, venue=venue)
                else:
                    try:
                        raise VenueError(detail)  # what a real venue client does
                    except VenueError as exc:
                        tt.record_error(exc, status="error")
                        self.stats.add("failed")
                        self.stats.note(self.stats.failed_ids, order_id)
                        log.error("order failed", order_id=order_id, venue=venue, exc_info=True)
        finally:
            otel_context.detach(token)
            if self.config.exchange is None:  # the ccxt instrumentation counts the orders it sends
                tm.record_order(side, "limit", venue, outcome, STRATEGY, symbol)

    def _send_ccxt(self, body: dict, draw: float) -> tuple[str, Any]:
        """The order through ccxt to the fake exchange; the venue draws pick its error and slow answers."""
        import ccxt

        exchange = self._exchange()
        c = self.config
        quantity = 999 if draw < c.venue_reject else 777 if draw < c.venue_reject + c.venue_error else 555 if draw < c.venue_reject + c.venue_error + c.venue_slow else body["quantity"]
        try:
            order = exchange.create_order(body["symbol"], "limit", body["side"], quantity, body["limit"], {"clientOrderId": body["order_id"]})
        except (ccxt.InsufficientFunds, ccxt.InvalidOrder) as exc:
            return "rejected", type(exc).__name__
        except ccxt.BaseError as exc:
            return "error", f"{type(exc).__name__}: {exc}"
        self.orders.put(Message({}, {**body, "quantity": quantity, "exchange_id": order["id"]}, time.time_ns()))
        return "acked", None

    def _exchange(self) -> Any:
        """This thread's ccxt exchange (requests sessions are not shared between threads)."""
        local = self.__dict__.setdefault("_local", threading.local())
        if not hasattr(local, "exchange") and self.config.exchange is not None:
            token = otel_context.attach(otel_context.Context())  # loading markets is set-up, not part of an order's trace
            try:
                local.exchange = self.config.exchange()
            finally:
                otel_context.detach(token)
        return local.exchange

    # -- venue: ack / reject / error, fills later ---------------------------------------------

    def venue(self) -> None:
        try:
            self._venue() if self.config.exchange is None else self._poll_fills()
        except Exception:  # noqa: BLE001
            log.exception("venue failed")
        finally:
            self._to_portfolio(None)

    def _to_portfolio(self, fill: dict | None) -> None:
        """Hand a fill (None: no more fills) from the venue thread to the portfolio task."""
        assert self.loop is not None and self.fills is not None, "the pipeline's asyncio side is running"
        self.loop.call_soon_threadsafe(self.fills.put_nowait, fill)

    def _venue(self) -> None:
        rng = random.Random(self.config.seed * 10 + 3)
        pending: list[tuple[float, int, dict]] = []  # (due, seq, fill)
        seq = 0
        running = True
        fill_no = 0
        while running or pending:
            timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else 0.2
            try:
                msg = self.orders.get(timeout=timeout) if running else None
                if msg is None and running:
                    running = False
                    # the run is over: deliver what is pending now
                    pending = [(time.monotonic(), s, f) for _, s, f in pending]
            except queue.Empty:
                msg = None
            if msg is not None:
                try:
                    fills = self._handle(msg, rng)
                except Exception as exc:  # noqa: BLE001
                    log.exception("venue failed on an order")
                    if msg.reply.empty():
                        msg.reply.put(("error", f"venue failure: {exc!r}"))
                    fills = []
                for fill in fills:
                    seq += 1
                    heapq.heappush(pending, (time.monotonic() + fill.pop("delay"), seq, fill))
            while pending and pending[0][0] <= time.monotonic():
                _, _, fill = heapq.heappop(pending)
                fill_no += 1
                fill["fill_id"] = f"FILL-{fill_no:06d}"
                self.venue_positions[fill["symbol"]] = self.venue_positions.get(fill["symbol"], 0) + (fill["quantity"] if fill["side"] == "buy" else -fill["quantity"])
                self._to_portfolio(fill)
            if not running and not pending:
                break

    def _poll_fills(self) -> None:
        """ccxt mode: look each acked order up after a short while (the fake fills it then) and book its fill."""
        rng = random.Random(self.config.seed * 10 + 3)
        exchange, loop, fills = self._exchange(), self.loop, self.fills
        if loop is None or fills is None:  # set by run() before the threads start
            return
        while (msg := self.orders.get()) is not None:
            body = msg.body
            time.sleep(rng.uniform(0.005, 0.05))
            try:
                order = exchange.fetch_order(body["exchange_id"], body["symbol"])
            except Exception:  # noqa: BLE001 - one failed look-up must not stop the others
                log.exception("fill look-up failed", order_id=body["order_id"])
                continue
            filled = order.get("filled") or 0
            if not filled:
                continue
            signed = filled if body["side"] == "buy" else -filled
            self.venue_positions[body["symbol"]] = self.venue_positions.get(body["symbol"], 0) + signed
            fill = {**body, "fill_id": f"{body['exchange_id']}:{filled:g}", "quantity": filled, "price": order.get("average") or body["limit"], "liquidity": "maker"}
            loop.call_soon_threadsafe(fills.put_nowait, fill)

    def _handle(self, msg: Message, rng: random.Random) -> list[dict]:
        body = msg.body
        with tp.consumer_span(f"orders.{body['venue']}", msg.headers, system="inproc", order_id=body["order_id"], venue=body["venue"]) as span:
            draw = rng.random()
            slow = rng.random() < self.config.venue_slow
            latency = rng.uniform(0.04, 0.15) if slow else rng.lognormvariate(-6.2, 0.5)  # ~2 ms typical
            time.sleep(latency)
            if slow:
                span.add_event("venue.slow", {"latency_ms": round(latency * 1000, 1)})
            if draw < self.config.venue_error:
                error = VenueError("venue gateway error: session reset")
                self.venue_reset_at = time.monotonic()
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
                msg.reply.put(("error", str(error)))
                return []
            if draw < self.config.venue_error + self.config.venue_reject:
                reason = rng.choice(REJECT_REASONS)
                span.set_attribute("trading.order.status", "rejected")
                msg.reply.put(("rejected", reason))
                return []
            span.set_attribute("trading.order.status", "acked")
            msg.reply.put(("acked", None))
        # fills: one or two partials, 5-80 ms later, at or better than the limit
        parts = 1 if rng.random() < 0.7 else 2
        fills = []
        left = body["quantity"]
        for i in range(parts):
            qty = left if i == parts - 1 else left // 2
            left -= qty
            improvement = rng.choice((0.0, 0.0, 0.01, -0.01))
            price = round(body["limit"] - improvement if body["side"] == "buy" else body["limit"] + improvement, 2)
            fills.append(
                {
                    "order_id": body["order_id"],
                    "symbol": body["symbol"],
                    "side": body["side"],
                    "quantity": qty,
                    "price": price,
                    "limit": body["limit"],
                    "venue": body["venue"],
                    "liquidity": rng.choice(("maker", "taker")),
                    "delay": rng.uniform(0.005, 0.08) * (i + 1),
                }
            )
        return fills

    # -- portfolio and reconciliation (asyncio) ----------------------------------------------

    async def portfolio(self) -> None:
        assert self.fills is not None
        while True:
            fill = await self.fills.get()
            if fill is None:
                break
            try:
                await self._book(fill)
            except Exception:  # noqa: BLE001
                log.exception("portfolio failed on a fill")

    async def _book(self, fill: dict) -> None:
        symbol, side, qty, price = fill["symbol"], fill["side"], fill["quantity"], fill["price"]
        slippage = (price - fill["limit"]) / fill["limit"] * 1e4 * (1 if side == "buy" else -1)
        # ccxt mode: the instrumentation made the fill's execution span; booking it is portfolio work
        booking = tt.execution_span if self.config.exchange is None else tt.portfolio_span
        with booking(
            "execution.report" if self.config.exchange is None else "portfolio.book_fill",
            order_id=fill["order_id"],
            fill_id=fill["fill_id"],
            fill_price=price,
            fill_quantity=qty,
            liquidity=fill["liquidity"],
            side=side,
            venue=fill["venue"],
            symbol=symbol,
        ):
            if self.config.exchange is None:  # the ccxt instrumentation counts the fills it sees
                tm.record_fill(side, fill["venue"], fill["liquidity"], symbol)
            tm.record_slippage(slippage, fill["venue"], side, symbol)
            tm.record_stage("portfolio")
            self.stats.add("fills")
            self.stats.note(self.stats.filled_ids, fill["order_id"])
            log.info("fill", order_id=fill["order_id"], fill_id=fill["fill_id"], price=price, quantity=qty, slippage_bps=round(slippage, 2))
            await asyncio.sleep(0)  # the context survives the await
            with tt.portfolio_span("portfolio.update", strategy_id=STRATEGY, symbol=symbol):
                signed = qty if side == "buy" else -qty
                self._close_trades(symbol, signed, price)
                self.positions[symbol] = self.positions.get(symbol, 0) + signed
                self.cash -= signed * price
                self._mark_to_market()

    def venue_health(self) -> health.Outcome:
        """Degraded for 10 s after the simulated venue resets its session."""
        age = time.monotonic() - self.venue_reset_at
        return (health.Status.DEGRADED, f"venue session reset {age:.1f}s ago") if age < 10 else health.Status.HEALTHY

    def _close_trades(self, symbol: str, signed: float, price: float) -> None:
        """A fill against the open position closes (part of) it: a trade with realised P&L."""
        held, entry = self.positions.get(symbol, 0), self.entry_price.get(symbol, price)
        if held and (held > 0) != (signed > 0):
            closed = min(abs(held), abs(signed))
            kpis.record_trade(round(closed * (price - entry) * (1 if held > 0 else -1), 2), STRATEGY, symbol=symbol)
        after = held + signed
        if not after:
            self.entry_price.pop(symbol, None)
        elif not held or (held > 0) != (after > 0):
            self.entry_price[symbol] = price  # opened, or flipped side
        elif (held > 0) == (signed > 0):
            self.entry_price[symbol] = (entry * abs(held) + price * abs(signed)) / abs(after)

    def _mark_to_market(self) -> None:
        value = sum(q * self.last_price[s] for s, q in self.positions.items())
        tm.set_pnl(round(self.cash + value, 2), "unrealized", STRATEGY)
        tm.set_open_positions(sum(1 for q in self.positions.values() if q), STRATEGY)
        for symbol, quantity in self.positions.items():
            kpis.set_position(symbol, quantity, self.last_price[symbol], STRATEGY)
        kpis.set_portfolio_value(round(CAPITAL + self.cash + value, 2), STRATEGY)

    async def reconciliation(self, every: float = 1.0) -> None:
        while True:
            try:
                await asyncio.sleep(every)
            except asyncio.CancelledError:
                self.reconcile()
                raise
            self.reconcile()

    def reconcile(self) -> None:
        with tt.reconciliation_span("positions.reconcile", strategy_id=STRATEGY):
            self.stats.add("reconciliations")
            ours = {s: q for s, q in self.positions.items() if q}
            theirs = {s: q for s, q in self.venue_positions.items() if q}
            # fills still in flight make a transient difference; report it, do not fail
            diff = {s: theirs.get(s, 0) - ours.get(s, 0) for s in set(ours) | set(theirs) if theirs.get(s, 0) != ours.get(s, 0)}
            tt.add_event("reconciliation.done", attributes={"trading.reconciliation.breaks": len(diff)})
            log.info("positions reconciled", positions=len(ours), breaks=len(diff))

    # -- run ------------------------------------------------------------------------------

    async def run(self) -> Stats:
        self.loop = asyncio.get_running_loop()
        self.fills = asyncio.Queue()
        threads = [
            threading.Thread(target=self.feed, name="demo-feed", daemon=True),
            threading.Thread(target=self.strategy, name="demo-strategy", daemon=True),
            threading.Thread(target=self.venue, name="demo-venue", daemon=True),
        ]
        log.info("demo started", duration_s=self.config.duration, rate=self.config.rate, seed=self.config.seed)
        health.register("market-data", health.feed_check(FEED, stale_after=5.0, degraded_after=1.0))
        health.register("portfolio", health.stage_check("portfolio", stale_after=60.0), critical=False)
        health.register("venue-session", self.venue_health, critical=False)
        portfolio = asyncio.create_task(self.portfolio(), name="portfolio")
        reconciliation = asyncio.create_task(self.reconciliation(), name="reconciliation")
        for t in threads:
            t.start()
        await asyncio.sleep(self.config.duration)
        self.stop_feed.set()
        try:  # ends after the feed, strategy and venue have drained
            await asyncio.wait_for(portfolio, timeout=30.0)
        except asyncio.TimeoutError:
            log.error("pipeline did not drain within 30 s; stopping anyway")
        reconciliation.cancel()
        try:
            await reconciliation
        except asyncio.CancelledError:
            pass
        for t in threads:
            await asyncio.to_thread(t.join, 5.0)
        s = self.stats
        log.info("demo finished", ticks=s.ticks, orders=s.orders, fills=s.fills, rejected=s.risk_rejected + s.venue_rejected, failed=s.failed)
        return s


def run(config: Config) -> Stats:
    return asyncio.run(Pipeline(config).run())
