"""The ``trading.*`` attribute namespace, defined once.

Names follow OpenTelemetry semantic-convention style: lowercase, dot-separated
namespaces, ``snake_case`` leaves, a unit suffix only where a value is not in
the convention's base unit. Spans, span events, metrics and logs all use these
names, so one query works across signals.

``KEYWORDS`` maps the keyword arguments the helpers accept (``order_id=``) to
attribute names (``trading.order.id``); ``README`` renders the table.
"""

from __future__ import annotations

from otel_trading.trading.kinds import SPAN_KIND_ATTRIBUTE

SPAN_KIND = SPAN_KIND_ATTRIBUTE  # "trading.span.kind": the TradingSpanKind value, set at span start

# instrument and market
SYMBOL = "trading.symbol"
VENUE = "trading.venue"
ASSET_CLASS = "trading.asset_class"
FEED = "trading.feed"
CURRENCY = "trading.currency"
MARKET_DATA_SEQUENCE = "trading.market_data.sequence"
PRICE = "trading.price"

# decision making
STRATEGY_ID = "trading.strategy.id"
SIGNAL_ID = "trading.signal.id"
MODEL_ID = "trading.model.id"
MODEL_VERSION = "trading.model.version"

# orders
ORDER_ID = "trading.order.id"
CLIENT_ORDER_ID = "trading.order.client_order_id"
ORDER_ACTION = "trading.order.action"
SIDE = "trading.side"
ORDER_TYPE = "trading.order.type"
ORDER_STATUS = "trading.order.status"
QUANTITY = "trading.order.quantity"
LIMIT_PRICE = "trading.order.limit_price"
TIME_IN_FORCE = "trading.order.time_in_force"
REJECT_REASON = "trading.reject.reason"
TICK_TO_TRADE = "trading.tick_to_trade.duration_us"

# fills
FILL_ID = "trading.fill.id"
FILL_PRICE = "trading.fill.price"
FILL_QUANTITY = "trading.fill.quantity"
LIQUIDITY = "trading.fill.liquidity"
SLIPPAGE = "trading.slippage_bps"
SLIPPAGE_DIRECTION = "trading.slippage.direction"

# book keeping
POSITION = "trading.position.quantity"
ACCOUNT_ALIAS = "trading.account.alias"
PNL_TYPE = "trading.pnl.type"
BACKTEST_ID = "trading.backtest.id"

# event-driven pipelines
STAGE = "trading.stage"
EVENT_ID = "trading.event.id"
CAUSATION_ID = "trading.event.causation_id"
CORRELATION_ID = "trading.correlation_id"

# health and KPIs
COMPONENT = "trading.component"
HEALTH_CRITICAL = "trading.health.critical"
HEALTH_STATUS = "trading.health.status"
TRADE_OUTCOME = "trading.trade.outcome"
ERROR_TYPE = "error.type"  # the OpenTelemetry semantic convention's name

# keyword -> (attribute, doc, example). The helpers accept exactly these keywords.
_TABLE: tuple[tuple[str, str, str, str], ...] = (
    ("symbol", SYMBOL, "Instrument symbol as the venue knows it", "AAPL"),
    ("venue", VENUE, "Venue, exchange or broker", "XNAS"),
    ("asset_class", ASSET_CLASS, "equity, fx, future, option, crypto, ...", "equity"),
    ("feed", FEED, "Market data feed", "itch"),
    ("currency", CURRENCY, "ISO 4217 currency of prices", "USD"),
    ("sequence", MARKET_DATA_SEQUENCE, "Feed sequence number of a tick", "918273"),
    ("price", PRICE, "Price of a tick or quote", "187.31"),
    ("strategy_id", STRATEGY_ID, "Strategy that made the decision", "mm-aapl-1"),
    ("signal_id", SIGNAL_ID, "Signal identifier", "sig-42"),
    ("model_id", MODEL_ID, "ML model name", "alpha-lgbm"),
    ("model_version", MODEL_VERSION, "ML model version", "2026.11.3"),
    ("order_id", ORDER_ID, "Order id (venue or internal)", "o-123"),
    ("client_order_id", CLIENT_ORDER_ID, "Client order id (FIX ClOrdID)", "c-123"),
    ("action", ORDER_ACTION, "submit, cancel or amend", "submit"),
    ("side", SIDE, "buy, sell, sell_short", "buy"),
    ("order_type", ORDER_TYPE, "market, limit, stop, ...", "limit"),
    ("status", ORDER_STATUS, "new, acked, filled, partially_filled, canceled, rejected", "acked"),
    ("quantity", QUANTITY, "Order quantity, instrument units", "100"),
    ("limit_price", LIMIT_PRICE, "Limit price", "187.30"),
    ("time_in_force", TIME_IN_FORCE, "day, gtc, ioc, fok, ...", "ioc"),
    ("reject_reason", REJECT_REASON, "Why the venue or risk rejected an order", "insufficient_margin"),
    ("fill_id", FILL_ID, "Execution / fill id", "f-9"),
    ("fill_price", FILL_PRICE, "Fill price", "187.305"),
    ("fill_quantity", FILL_QUANTITY, "Filled quantity", "100"),
    ("liquidity", LIQUIDITY, "maker or taker", "maker"),
    ("slippage_bps", SLIPPAGE, "Signed slippage against the decision price, basis points; positive is adverse", "0.8"),
    ("position", POSITION, "Signed position after the event, instrument units", "-300"),
    ("account_alias", ACCOUNT_ALIAS, "Account alias (never the account number)", "prop-1"),
    ("pnl_type", PNL_TYPE, "realized or unrealized", "realized"),
    ("backtest_id", BACKTEST_ID, "Backtest run id", "bt-2026-11-23"),
    ("stage", STAGE, "Pipeline stage name", "signals"),
    ("event_id", EVENT_ID, "Id of the event a span handles", "e-77"),
    ("causation_id", CAUSATION_ID, "Id of the event that caused this one", "e-76"),
    ("correlation_id", CORRELATION_ID, "Business correlation id (also in baggage)", "trade-2026-0001"),
)

KEYWORDS: dict[str, str] = {keyword: name for keyword, name, _, _ in _TABLE}

# Set by the helpers, not passed as keywords.
_DERIVED = (
    (SPAN_KIND, "Trading span kind (market_data, signal, model, risk, order, execution, portfolio, backtest, reconciliation); set at span start"),
    (SLIPPAGE_DIRECTION, "adverse or favorable (metric `trading.order.slippage` records the magnitude)"),
    (COMPONENT, "Component a health check watches (`otel_trading.health.register`)"),
    (HEALTH_CRITICAL, "Whether the component's check decides readiness (`/readyz`)"),
    (HEALTH_STATUS, "healthy, degraded or unhealthy (on `trading.health.status_changes`)"),
    (TRADE_OUTCOME, "win, loss or flat: the sign of a closed trade's realised P&L (`trading.trade.pnl` records the magnitude)"),
    (TICK_TO_TRADE, "Microseconds from market data received (`mark_tick`, `market_data_span`) to the order span start"),
)


def markdown_table() -> str:
    """README table of every trading attribute."""
    lines = ["| Attribute | Helper keyword | Meaning | Example |", "|---|---|---|---|"]
    lines += [f"| `{name}` | - | {doc} | |" for name, doc in _DERIVED]
    lines += [f"| `{name}` | `{kw}` | {doc} | `{ex}` |" for kw, name, doc, ex in _TABLE]
    return "\n".join(lines)
