"""Generate the provisioned Grafana dashboards (grafana/dashboards/*.json).

The JSON files are committed; this script is their source. After editing it run

    python grafana/generate_dashboards.py

tests/test_stack_static.py fails when the committed JSON differs from what this
script produces, and tests/test_stack_live.py runs every Prometheus query below
against a Prometheus scraping the demo app.

Metric and label names are the Prometheus names that BOTH the Python prometheus
exporter (direct scrape) and the collector's prometheus exporter (compose path,
add_metric_suffixes: true, resource_to_telemetry_conversion disabled) produce
from the otel_trading.trading.metrics instruments. `job` is the service:
service.namespace/service.name via the collector, the scrape job name when an app
is scraped directly (name the job after the service).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"
PROM = {"type": "prometheus", "uid": "prometheus"}
JAEGER = {"type": "jaeger", "uid": "jaeger"}
LOKI = {"type": "loki", "uid": "loki"}
TAG = "otel-trading"

SVC = 'job=~"$service"'
STRAT = 'trading_strategy_id=~"$strategy"'
VENUE = 'trading_venue=~"$venue"'
RI = "$__rate_interval"
# Why an exemplar may open "trace not found": the collector's tail sampling keeps every
# order/execution/risk/reconciliation flow, every error and slow trace, and a share of the rest.
KEPT = ("Exemplars open the trace in Jaeger: these are recorded inside order and execution spans, "
        "whose traces tail sampling always keeps.")
NOT_ALWAYS_KEPT = ("Exemplars (dots) come from every span, before tail sampling: an exemplar of a market-data or "
                   "signal span whose trace was not kept (about 90 % of ordinary traces, OTELCOL_TAIL_SAMPLING_PERCENT) "
                   "opens \"trace not found\" in Jaeger. Exemplars of errors and slow spans always resolve.")


# --------------------------------------------------------------------------- helpers
class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1

    def place(self, w: int, h: int) -> dict:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def newline(self) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0

    def pid(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def target(expr: str, legend: str = "", ref: str = "A", exemplar: bool = False, fmt: str = "time_series") -> dict:
    t = {
        "datasource": PROM,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": True,
        "instant": False,
        "editorMode": "code",
        "format": fmt,
    }
    if exemplar:
        t["exemplar"] = True
    return t


def ts(lay: Layout, title: str, targets: list[tuple], unit: str = "short", w: int = 12, h: int = 8,
       desc: str = "", stack: bool = False, exemplar: bool = False) -> dict:
    refs = "ABCDEFGHIJ"
    return {
        "id": lay.pid(),
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": PROM,
        "gridPos": lay.place(w, h),
        "targets": [target(e, l, refs[i], exemplar) for i, (e, l) in enumerate(targets)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10 if stack else 0,
                    "showPoints": "never",
                    "stacking": {"mode": "normal" if stack else "none", "group": "A"},
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(lay: Layout, title: str, expr: str, unit: str = "short", w: int = 4, h: int = 4, desc: str = "",
         thresholds: list[tuple] | None = None, legend: str = "") -> dict:
    steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "green")])]
    return {
        "id": lay.pid(),
        "type": "stat",
        "title": title,
        "description": desc,
        "datasource": PROM,
        "gridPos": lay.place(w, h),
        "targets": [target(expr, legend)],
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area", "textMode": "auto"},
    }


def heatmap(lay: Layout, title: str, expr: str, w: int = 12, h: int = 8, desc: str = "") -> dict:
    t = target(expr, "{{le}}", fmt="heatmap")
    return {
        "id": lay.pid(),
        "type": "heatmap",
        "title": title,
        "description": desc,
        "datasource": PROM,
        "gridPos": lay.place(w, h),
        "targets": [t],
        "options": {"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1,
                    "color": {"mode": "scheme", "scheme": "Oranges"}, "exemplars": {"color": "rgba(255,0,255,0.7)"}},
    }


def row(lay: Layout, title: str) -> dict:
    lay.newline()
    p = {"id": lay.pid(), "type": "row", "title": title, "collapsed": False, "panels": [],
         "gridPos": {"x": 0, "y": lay.y, "w": 24, "h": 1}}
    lay.y += 1
    return p


def var_query(name: str, label: str, query: str, include_all: bool = True) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": PROM,
        "definition": query,
        "query": query,  # classic label_values() string: every Grafana version reads it
        "refresh": 2,
        "includeAll": include_all,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
    }


SERVICE_VAR = var_query("service", "Service", "label_values(target_info, job)")
STRATEGY_VAR = var_query("strategy", "Strategy", 'label_values(trading_orders_total{job=~"$service"}, trading_strategy_id)')
VENUE_VAR = var_query("venue", "Venue", 'label_values(trading_orders_total{job=~"$service"}, trading_venue)')
# One service at a time on the RED dashboard: its Jaeger panel searches a single service.
SPAN_SERVICE_VAR = var_query("service", "Service", "label_values(traces_span_metrics_calls_total, job)", include_all=False)
SPAN_SERVICE_VAR.update(multi=False, current={})


def dashboard(uid: str, title: str, desc: str, panels: list[dict], variables: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": desc,
        "tags": [TAG],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "schemaVersion": 39,
        "version": 1,
        "links": [
            {"type": "dashboards", "tags": [TAG], "asDropdown": True, "title": "otel-trading dashboards",
             "includeVars": True, "keepTime": True},
            {"type": "link", "title": "Jaeger", "url": "http://127.0.0.1:16686/search", "targetBlank": True,
             "icon": "external link"},
        ],
        "templating": {"list": variables},
        "annotations": {"list": [{
            "name": "Alerts", "datasource": PROM, "enable": True, "iconColor": "red",
            "expr": 'ALERTS{alertstate="firing", job=~"$service"}', "titleFormat": "{{alertname}}",
            "textFormat": "{{severity}}", "useValueForTime": False, "step": "60s",
        }]},
        "panels": panels,
    }


def q(p: float, metric: str, sel: str, by: str = "") -> str:
    grp = f"le, {by}" if by else "le"
    return f"histogram_quantile({p}, sum by ({grp}) (rate({metric}_bucket{{{sel}}}[{RI}])))"


# --------------------------------------------------------------------------- dashboards
def trading_overview() -> dict:
    lay = Layout()
    o = f"{SVC}, {STRAT}, {VENUE}"
    rj = f"{SVC}, {STRAT}, {VENUE}"
    f = f"{SVC}, {VENUE}"
    panels = [
        stat(lay, "Orders/s", f"sum(job_strategy_venue_status:trading_orders:rate1m{{{o}}})", "ops", w=4,
             desc="Orders sent per second (all statuses), 1m rate (recording rule)."),
        stat(lay, "Fills/s", f"sum(rate(trading_fills_total{{{f}}}[{RI}]))", "ops", w=4),
        stat(lay, "Rejection ratio", f"sum(job_strategy_venue_reason:trading_order_rejections:rate1m{{{rj}}}) / sum(job_strategy_venue_status:trading_orders:rate1m{{{o}}})",
             "percentunit", w=4, thresholds=[(None, "green"), (0.05, "orange"), (0.2, "red")],
             desc="Rejected / sent over the last minute (recording rules); TradingOrderRejectionSpike fires above 20 %."),
        stat(lay, "Total P&L", f"sum(trading_pnl{{{SVC}, {STRAT}}})", "none", w=4,
             desc="Realized + unrealized P&L, account currency.",
             thresholds=[(None, "red"), (0, "green")]),
        stat(lay, "Open positions", f"sum(trading_positions_open{{{SVC}, {STRAT}}})", "none", w=4),
        stat(lay, "Orders in range", f"sum(increase(trading_orders_total{{{o}}}[$__range]))", "none", w=4),
        row(lay, "Orders and fills"),
        ts(lay, "Orders/s by status", [(f"sum by (trading_order_status) (rate(trading_orders_total{{{o}}}[{RI}]))", "{{trading_order_status}}")],
           "ops", stack=True),
        ts(lay, "Orders/s by venue and side", [(f"sum by (trading_venue, trading_side) (rate(trading_orders_total{{{o}}}[{RI}]))", "{{trading_venue}} {{trading_side}}")],
           "ops"),
        ts(lay, "Fills/s by venue and liquidity", [(f"sum by (trading_venue, trading_fill_liquidity) (rate(trading_fills_total{{{f}}}[{RI}]))", "{{trading_venue}} {{trading_fill_liquidity}}")],
           "ops", stack=True),
        ts(lay, "Rejections/s by reason", [(f"sum by (trading_reject_reason) (rate(trading_order_rejections_total{{{rj}}}[{RI}]))", "{{trading_reject_reason}}")],
           "ops", stack=True, desc="Which rejection reasons dominate (risk limits, venue errors, post-only crosses ...)."),
        row(lay, "P&L and positions"),
        ts(lay, "P&L by strategy and type", [(f"sum by (trading_strategy_id, trading_pnl_type) (trading_pnl{{{SVC}, {STRAT}}})", "{{trading_strategy_id}} {{trading_pnl_type}}")],
           "none"),
        ts(lay, "Drawdown from 24h peak by strategy",
           [(f"max_over_time(job_strategy:trading_pnl:sum{{{SVC}, {STRAT}}}[1d]) - job_strategy:trading_pnl:sum{{{SVC}, {STRAT}}}", "{{job}} {{trading_strategy_id}}")],
           "none", desc="Recording rule job_strategy:trading_pnl:sum; the TradingDrawdownLimit alert fires above its limit."),
        ts(lay, "Open positions by strategy", [(f"sum by (trading_strategy_id) (trading_positions_open{{{SVC}, {STRAT}}})", "{{trading_strategy_id}}")],
           "none"),
        ts(lay, "Market data ticks/s by feed", [(f"sum by (trading_feed) (rate(trading_market_data_ticks_total{{{SVC}}}[{RI}]))", "{{trading_feed}}")],
           "ops"),
    ]
    return dashboard("otel-trading-overview", "otel-trading / Trading overview",
                     "What is the bot doing right now: order flow, fills, rejections, P&L, positions.",
                     panels, [SERVICE_VAR, STRATEGY_VAR, VENUE_VAR])


def order_latency() -> dict:
    lay = Layout()
    v = f"{SVC}, {VENUE}"
    panels = [
        stat(lay, "Ack p99", q(0.99, "trading_order_ack_duration_seconds", v), "s", w=6,
             thresholds=[(None, "green"), (0.1, "orange"), (0.5, "red")]),
        stat(lay, "Acks within 100 ms (SLO 99%)",
             f'sum(rate(trading_order_ack_duration_seconds_bucket{{{v}, le="0.1"}}[{RI}])) / sum(rate(trading_order_ack_duration_seconds_count{{{v}}}[{RI}]))',
             "percentunit", w=6, thresholds=[(None, "red"), (0.99, "green")]),
        stat(lay, "SLO burn rate (1h)", f"max(job:trading_order_ack_slow:ratio_rate1h{{{SVC}}}) / 0.01", "x", w=6,
             desc="1 = burning the 1% error budget exactly as fast as allowed; 14.4 pages.",
             thresholds=[(None, "green"), (6, "orange"), (14.4, "red")]),
        stat(lay, "Tick-to-trade p99", q(0.99, "trading_tick_to_trade_duration_seconds", f"{SVC}, {STRAT}"), "s", w=6),
        row(lay, "Order acknowledgement"),
        ts(lay, "Ack latency percentiles", [
            (q(0.5, "trading_order_ack_duration_seconds", v), "p50"),
            (q(0.95, "trading_order_ack_duration_seconds", v), "p95"),
            (q(0.99, "trading_order_ack_duration_seconds", v), "p99"),
        ], "s", exemplar=True, desc="Order sent to venue acknowledgement. " + KEPT),
        ts(lay, "Ack p99 by venue", [(q(0.99, "trading_order_ack_duration_seconds", v, "trading_venue"), "{{trading_venue}}")], "s",
           exemplar=True, desc=KEPT),
        heatmap(lay, "Ack latency distribution", f"sum by (le) (increase(trading_order_ack_duration_seconds_bucket{{{v}}}[{RI}]))"),
        ts(lay, "Ack p99 by order type", [(q(0.99, "trading_order_ack_duration_seconds", v, "trading_order_type"), "{{trading_order_type}}")], "s"),
        row(lay, "Fills and tick-to-trade"),
        ts(lay, "Fill latency percentiles", [
            (q(0.5, "trading_order_fill_duration_seconds", v), "p50"),
            (q(0.95, "trading_order_fill_duration_seconds", v), "p95"),
            (q(0.99, "trading_order_fill_duration_seconds", v), "p99"),
        ], "s", exemplar=True, desc="Order sent to first fill. " + KEPT),
        ts(lay, "Tick-to-trade percentiles by strategy", [
            (q(0.5, "trading_tick_to_trade_duration_seconds", f"{SVC}, {STRAT}", "trading_strategy_id"), "p50 {{trading_strategy_id}}"),
            (q(0.99, "trading_tick_to_trade_duration_seconds", f"{SVC}, {STRAT}", "trading_strategy_id"), "p99 {{trading_strategy_id}}"),
        ], "s", exemplar=True, desc="Market data received to order sent. " + KEPT),
        row(lay, "Slippage"),
        stat(lay, "Net mean slippage (bp)",
             f'(sum(rate(trading_order_slippage_sum{{{v}, trading_slippage_direction="adverse"}}[{RI}])) - '
             f'(sum(rate(trading_order_slippage_sum{{{v}, trading_slippage_direction="favorable"}}[{RI}])) or vector(0))) / '
             f"sum(rate(trading_order_slippage_count{{{v}}}[{RI}]))",
             "none", w=6, h=8, desc="Adverse minus favorable slippage per fill, basis points: what execution costs on average."),
        ts(lay, "Adverse slippage percentiles (bp)", [
            (q(0.5, "trading_order_slippage", f'{v}, trading_slippage_direction="adverse"'), "p50"),
            (q(0.95, "trading_order_slippage", f'{v}, trading_slippage_direction="adverse"'), "p95"),
            (q(0.99, "trading_order_slippage", f'{v}, trading_slippage_direction="adverse"'), "p99"),
        ], "none", w=9, desc="Fill price worse than the decision price, basis points."),
        ts(lay, "Mean slippage by venue and direction (bp)", [
            (f"sum by (trading_venue, trading_slippage_direction) (rate(trading_order_slippage_sum{{{v}}}[{RI}])) / "
             f"sum by (trading_venue, trading_slippage_direction) (rate(trading_order_slippage_count{{{v}}}[{RI}]))",
             "{{trading_venue}} {{trading_slippage_direction}}"),
        ], "none", w=9),
    ]
    return dashboard("otel-trading-latency", "otel-trading / Order latency",
                     "How fast are orders acknowledged and filled, how long from tick to trade, what does execution cost.",
                     panels, [SERVICE_VAR, STRATEGY_VAR, VENUE_VAR])


def pipeline_health() -> dict:
    lay = Layout()
    panels = [
        stat(lay, "Stale stages (> 30 s)", f"sum(max by (job, trading_stage) (trading_pipeline_stage_staleness_seconds{{{SVC}}}) > bool 30)",
             "none", w=6, thresholds=[(None, "green"), (1, "red")]),
        stat(lay, "Most stale stage", f"max(trading_pipeline_stage_staleness_seconds{{{SVC}}})", "s", w=6,
             thresholds=[(None, "green"), (10, "orange"), (30, "red")]),
        stat(lay, "Events/s (all stages)", f"sum(rate(trading_pipeline_stage_processed_total{{{SVC}}}[{RI}]))", "ops", w=6),
        stat(lay, "Worst stage lag p99", f"max({q(0.99, 'trading_pipeline_stage_lag_seconds', SVC, 'trading_stage')})", "s", w=6),
        row(lay, "Stages"),
        ts(lay, "Stage throughput (events/s)", [(f"sum by (trading_stage) (rate(trading_pipeline_stage_processed_total{{{SVC}}}[{RI}]))", "{{trading_stage}}")],
           "ops", desc="Which stage is the bottleneck: the one whose throughput falls behind its upstream."),
        ts(lay, "Stage lag p99", [(q(0.99, "trading_pipeline_stage_lag_seconds", SVC, "trading_stage"), "{{trading_stage}}")], "s",
           exemplar=True, desc="Event created to processed by the stage. " + NOT_ALWAYS_KEPT),
        ts(lay, "Stage lag p50", [(q(0.5, "trading_pipeline_stage_lag_seconds", SVC, "trading_stage"), "{{trading_stage}}")], "s"),
        ts(lay, "Staleness by stage", [(f"max by (job, trading_stage) (trading_pipeline_stage_staleness_seconds{{{SVC}}})", "{{job}} {{trading_stage}}")], "s",
           desc="Seconds since each stage last did work; TradingPipelineStageStale fires above 30 s for 1 min."),
        ts(lay, "Market data ticks/s by feed", [(f"sum by (trading_feed) (rate(trading_market_data_ticks_total{{{SVC}}}[{RI}]))", "{{trading_feed}}")], "ops"),
    ]
    return dashboard("otel-trading-pipeline", "otel-trading / Pipeline health",
                     "Is every stage of the trading pipeline (market data -> signal -> risk -> order) keeping up?",
                     panels, [SERVICE_VAR])


def service_red() -> dict:
    lay = Layout()
    s = f'{SVC}, {STRAT}, {VENUE}, span_name=~"$operation"'
    calls = "traces_span_metrics_calls_total"
    dur = "traces_span_metrics_duration_milliseconds"
    panels = [
        stat(lay, "Spans/s", f"sum(rate({calls}{{{s}}}[{RI}]))", "ops", w=8),
        stat(lay, "Error ratio", f'sum(rate({calls}{{{s}, status_code="STATUS_CODE_ERROR"}}[{RI}])) / sum(rate({calls}{{{s}}}[{RI}]))',
             "percentunit", w=8, thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")]),
        stat(lay, "p95 duration", f"histogram_quantile(0.95, sum by (le) (rate({dur}_bucket{{{s}}}[{RI}])))", "ms", w=8),
        row(lay, "Rate, errors, duration per operation"),
        ts(lay, "Rate by operation", [(f"sum by (job, span_name) (rate({calls}{{{s}}}[{RI}]))", "{{job}} {{span_name}}")], "ops"),
        ts(lay, "Error ratio by operation", [(
            f'sum by (job, span_name) (rate({calls}{{{s}, status_code="STATUS_CODE_ERROR"}}[{RI}])) / sum by (job, span_name) (rate({calls}{{{s}}}[{RI}]))',
            "{{job}} {{span_name}}")], "percentunit"),
        ts(lay, "p95 duration by operation", [(f"histogram_quantile(0.95, sum by (le, job, span_name) (rate({dur}_bucket{{{s}}}[{RI}])))", "{{job}} {{span_name}}")],
           "ms", exemplar=True, desc=NOT_ALWAYS_KEPT),
        ts(lay, "Rate by trading span kind", [(f"sum by (trading_span_kind) (rate({calls}{{{s}}}[{RI}]))", "{{trading_span_kind}}")], "ops",
           stack=True),
        row(lay, "Traces and logs"),
        {
            "id": lay.pid(), "type": "table", "title": "Recent traces (Jaeger)", "datasource": JAEGER,
            "gridPos": lay.place(12, 10),
            "targets": [{"datasource": JAEGER, "refId": "A", "queryType": "search", "service": "${service:raw}", "limit": 20}],
            "description": "Tail-sampled traces of the selected service (its service.name; with service.namespace set, "
                           "job is namespace/name and this search needs the bare name); click a trace id to open it.",
        },
        {
            "id": lay.pid(), "type": "logs", "title": "Logs (Loki)", "datasource": LOKI,
            "gridPos": lay.place(12, 10),
            "targets": [{"datasource": LOKI, "refId": "A", "expr": '{service_name=~"$service"}', "queryType": "range"}],
            "options": {"showTime": True, "wrapLogMessage": True, "sortOrder": "Descending", "enableLogDetails": True},
            "description": "Log lines carry trace_id: open the trace from the log details.",
        },
    ]
    op = var_query("operation", "Operation", 'label_values(traces_span_metrics_calls_total{job=~"$service"}, span_name)')
    strat = var_query("strategy", "Strategy", 'label_values(traces_span_metrics_calls_total{job=~"$service"}, trading_strategy_id)')
    venue = var_query("venue", "Venue", 'label_values(traces_span_metrics_calls_total{job=~"$service"}, trading_venue)')
    return dashboard("otel-trading-red", "otel-trading / Service RED (span metrics)",
                     "Rate, errors and duration of every service and operation, computed by the collector from ALL spans before tail sampling.",
                     panels, [SPAN_SERVICE_VAR, strat, venue, op])


def telemetry_health() -> dict:
    lay = Layout()
    c = 'job=~"$collector"'
    panels = [
        row(lay, "Collector: receivers"),
        ts(lay, "Accepted items/s", [
            (f'sum by (receiver) (rate(otelcol_receiver_accepted_spans_total{{{c}}}[{RI}]))', "spans {{receiver}}"),
            (f'sum by (receiver) (rate(otelcol_receiver_accepted_metric_points_total{{{c}}}[{RI}]))', "metric points {{receiver}}"),
            (f'sum by (receiver) (rate(otelcol_receiver_accepted_log_records_total{{{c}}}[{RI}]))', "log records {{receiver}}"),
        ], "ops", w=12),
        ts(lay, "Refused items/s (memory_limiter, full pipeline)", [
            (f'sum by (instance, receiver) (rate({{__name__=~"otelcol_receiver_refused_(spans|metric_points|log_records)_total", {c}}}[{RI}]))', "{{instance}} {{receiver}}"),
        ], "ops", w=12, desc="Non-zero: the collector pushes back; OtelCollectorRefusingData pages."),
        row(lay, "Collector: exporters"),
        ts(lay, "Sent items/s by exporter", [
            (f'sum by (exporter) (rate({{__name__=~"otelcol_exporter_sent_(spans|metric_points|log_records)_total", {c}}}[{RI}]))', "{{exporter}}"),
        ], "ops", w=8),
        ts(lay, "Failed / dropped items/s by exporter", [
            (f'sum by (exporter) (rate({{__name__=~"otelcol_exporter_send_failed_(spans|metric_points|log_records)_total", {c}}}[{RI}]))', "send failed {{exporter}}"),
            (f'sum by (exporter) (rate({{__name__=~"otelcol_exporter_enqueue_failed_(spans|metric_points|log_records)_total", {c}}}[{RI}]))', "queue full {{exporter}}"),
        ], "ops", w=8),
        ts(lay, "Exporter queue fill", [
            (f"max by (instance, exporter) (otelcol_exporter_queue_size{{{c}}} / otelcol_exporter_queue_capacity{{{c}}})", "{{instance}} {{exporter}}"),
        ], "percentunit", w=8),
        row(lay, "Sampling: kept vs dropped"),
        ts(lay, "Tail sampling decisions (traces/s)", [
            (f'sum by (decision, sampled) (rate(otelcol_processor_tail_sampling_global_count_traces_sampled_total{{{c}}}[{RI}]))',
             "{{decision}}{{sampled}}"),
        ], "ops", w=8, stack=True,
           desc="Collector (gateway) tail sampling: traces kept vs dropped. The outcome label is `decision` "
                "(sampled / not_sampled / dropped) in recent collectors, `sampled` (true / false) in older ones."),
        ts(lay, "Tail sampling by policy (traces/s)", [
            (f'sum by (policy, decision, sampled) (rate(otelcol_processor_tail_sampling_count_traces_sampled_total{{{c}}}[{RI}]))',
             "{{policy}} {{decision}}{{sampled}}"),
        ], "ops", w=8),
        ts(lay, "SDK head sampling by span kind (spans/s)", [
            (f"sum by (trading_span_kind, trading_sampler_decision) (rate(trading_sampler_decisions_total{{{SVC}}}[{RI}]))",
             "{{trading_span_kind}} {{trading_sampler_decision}}"),
        ], "ops", w=8, stack=True, desc="TradingSampler decisions in the app (before export)."),
        row(lay, "SDK (in the app)"),
        ts(lay, "SDK span processor outcomes", [
            (f'sum by (job, error_type) (rate(otel_sdk_processor_span_processed_total{{{SVC}}}[{RI}]))', "{{job}} {{error_type}}"),
        ], "ops", w=8, desc="error_type empty = exported to the exporter; queue_full = dropped in the app."),
        ts(lay, "SDK log processor outcomes", [
            (f'sum by (job, error_type) (rate(otel_sdk_processor_log_processed_total{{{SVC}}}[{RI}]))', "{{job}} {{error_type}}"),
        ], "ops", w=8),
        ts(lay, "SDK exporter outcomes", [
            (f'sum by (job, error_type) (rate({{__name__=~"otel_sdk_exporter_(span|log|metric_data_point)_exported_total", {SVC}}}[{RI}]))', "{{job}} {{error_type}}"),
        ], "ops", w=8, desc="Items the app's OTLP exporters sent; error_type set = failed export."),
        ts(lay, "SDK batch processor queue size", [
            (f"max by (job, otel_component_name) (otel_sdk_processor_span_queue_size{{{SVC}}})", "{{job}} {{otel_component_name}}"),
            (f"max by (job, otel_component_name) (otel_sdk_processor_log_queue_size{{{SVC}}})", "{{job}} {{otel_component_name}}"),
        ], "short", w=12, desc="Items waiting in the app's batch processors; at OTEL_BSP_MAX_QUEUE_SIZE (default 2048) new spans are dropped."),
        ts(lay, "Spans started/s by sampling result", [
            (f"sum by (job, otel_span_sampling_result) (rate(otel_sdk_span_started_total{{{SVC}}}[{RI}]))", "{{job}} {{otel_span_sampling_result}}"),
        ], "ops", w=12),
    ]
    collector = var_query("collector", "Collector job", 'label_values({__name__=~"otelcol_.+"}, job)')
    return dashboard("otel-trading-telemetry", "otel-trading / Telemetry pipeline health",
                     "Is telemetry getting through: SDK drops, collector accepted/refused/dropped, exporter failures, sampling kept vs dropped.",
                     panels, [SERVICE_VAR, collector])


def alert_list(lay: Layout, title: str, w: int = 24, h: int = 8) -> dict:
    """Firing and pending alerts of the Prometheus rules (Grafana reads them from the ruler API)."""
    return {
        "id": lay.pid(),
        "type": "alertlist",
        "title": title,
        "description": "Alerts of the shipped Prometheus rules (collector-config/prometheus/rules), firing and pending; "
                       "delivery to Slack / e-mail / PagerDuty / webhook is Alertmanager's (ALERT_RECEIVERS in .env).",
        "gridPos": lay.place(w, h),
        "options": {
            "viewMode": "list", "groupMode": "default", "groupBy": [], "maxItems": 50, "sortOrder": 1,
            "dashboardAlerts": False, "alertName": "", "alertInstanceLabelFilter": "", "datasource": "Prometheus",
            "stateFilter": {"firing": True, "pending": True, "noData": False, "normal": False, "error": True},
        },
    }


def bot_health() -> dict:
    lay = Layout()
    s = f"{SVC}, {STRAT}"
    panels = [
        stat(lay, "Heartbeat age", f"max(time() - trading_heartbeat_seconds{{{SVC}}})", "s", w=4,
             thresholds=[(None, "green"), (60, "orange"), (120, "red")],
             desc="Seconds since the bot's health thread last beat; TradingHeartbeatStopped fires above 120 s. "
                  "No value at all: the bot is gone (TradingBotMetricsVanished)."),
        stat(lay, "Uptime", f"min(time() - trading_process_start_time_seconds{{{SVC}}})", "s", w=4,
             desc="Since the youngest bot process started: a small value after a crash means it was restarted."),
        stat(lay, "Unhealthy components", f"count(trading_health_status{{{SVC}}} == 0) or vector(0)", "none", w=4,
             thresholds=[(None, "green"), (1, "red")]),
        stat(lay, "Firing alerts", 'count(ALERTS{alertstate="firing"}) or vector(0)', "none", w=4,
             thresholds=[(None, "green"), (1, "red")]),
        stat(lay, "Win rate (1h)", f"avg(job_strategy:trading_trades_win:ratio_rate1h{{{s}}})", "percentunit", w=4,
             thresholds=[(None, "red"), (0.5, "green")]),
        stat(lay, "Worst drawdown", f"max(trading_drawdown_ratio{{{s}}})", "percentunit", w=4,
             thresholds=[(None, "green"), (0.05, "orange"), (0.1, "red")]),
        row(lay, "Health"),
        ts(lay, "Health by component", [(f"min by (job, trading_component) (trading_health_status{{{SVC}}})", "{{job}} {{trading_component}}")],
           "none", w=8, desc="1 healthy, 0.5 degraded, 0 unhealthy (otel_trading.health checks; /healthz has the last error)."),
        ts(lay, "Health check duration p99", [(q(0.99, "trading_health_check_duration_seconds", SVC, "trading_component"), "{{trading_component}}")],
           "s", w=8),
        ts(lay, "Health status changes (1h)", [(f"sum(increase(trading_health_status_changes_total{{{SVC}}}[1h])) or vector(0)", "changes")],
           "none", w=8, desc="Each change is also one log line naming the component and the reason."),
        alert_list(lay, "Active alerts"),
        row(lay, "Trades and P&L"),
        ts(lay, "Win rate by strategy (1h)", [(f"job_strategy:trading_trades_win:ratio_rate1h{{{s}}}", "{{job}} {{trading_strategy_id}}")],
           "percentunit", w=8, desc="Closed trades with positive realised P&L over the last hour (recording rule)."),
        ts(lay, "Closed trades/s by outcome", [(f"sum by (trading_trade_outcome) (rate(trading_trade_pnl_count{{{s}}}[{RI}]))", "{{trading_trade_outcome}}")],
           "ops", w=8, stack=True),
        ts(lay, "Realised P&L per trade p90", [(q(0.9, "trading_trade_pnl", s, "trading_trade_outcome"), "{{trading_trade_outcome}}")],
           "currencyUSD", w=8, desc="Magnitude of realised P&L per closed trade, by outcome (histograms take no negative values)."),
        ts(lay, "Net realised P&L (since start)", [(
            f'sum by (trading_strategy_id) (trading_trade_pnl_sum{{{s}, trading_trade_outcome="win"}}) - '
            f'sum by (trading_strategy_id) (trading_trade_pnl_sum{{{s}, trading_trade_outcome="loss"}})', "{{trading_strategy_id}}")],
           "currencyUSD", w=8),
        ts(lay, "Portfolio value", [(f"sum by (job, trading_strategy_id) (trading_portfolio_value{{{s}}})", "{{job}} {{trading_strategy_id}}")],
           "currencyUSD", w=8),
        ts(lay, "Drawdown vs limit", [
            (f"max by (job, trading_strategy_id) (trading_drawdown_ratio{{{s}}})", "{{job}} {{trading_strategy_id}}"),
            (f"max by (job) (trading_drawdown_limit_ratio{{{SVC}}})", "limit {{job}}"),
        ], "percentunit", w=8, desc="Below the running peak of portfolio value; TradingDrawdownLimit fires above OTEL_TRADING_DRAWDOWN_LIMIT."),
        ts(lay, "Exposure (net) by strategy", [(f"sum by (job, trading_strategy_id) (trading_exposure{{{s}}})", "{{job}} {{trading_strategy_id}}")],
           "currencyUSD", w=12, desc="Per symbol with OTEL_TRADING_PER_SYMBOL_METRICS=true (trading_symbol label)."),
        ts(lay, "Notional (gross) by strategy", [(f"sum by (job, trading_strategy_id) (trading_notional{{{s}}})", "{{job}} {{trading_strategy_id}}")],
           "currencyUSD", w=12),
        row(lay, "Market data and errors"),
        ts(lay, "Market data latency (exchange -> receipt)", [
            (q(0.99, "trading_market_data_latency_seconds", SVC, "trading_feed"), "p99 {{trading_feed}}"),
            (q(0.5, "trading_market_data_latency_seconds", SVC, "trading_feed"), "p50 {{trading_feed}}"),
        ], "s", w=12, desc="TradingMarketDataLatencyHigh fires when p99 stays above 250 ms for 5 min."),
        ts(lay, "Errors/s by error.type", [(f"sum by (job, error_type) (rate(trading_errors_total{{{SVC}}}[{RI}]))", "{{job}} {{error_type}}")],
           "ops", w=12, stack=True, desc="Spans ending in ERROR, counted in the bot (sampled spans only)."),
        row(lay, "System resources (OTEL_TRADING_SYSTEM_METRICS=true)"),
        ts(lay, "Host CPU busy", [(f'1 - avg by (job) ({{__name__=~"system_cpu_utilization(_ratio)?", {SVC}, state="idle"}})', "{{job}}")],
           "percentunit", w=6, desc="The collector names unit-1 gauges ..._ratio, a direct scrape does not: the query takes both."),
        ts(lay, "Host memory used", [(f'sum by (job) (system_memory_usage_bytes{{{SVC}, state="used"}})', "{{job}}")], "bytes", w=6),
        ts(lay, "Bot process CPU", [(f"sum by (job) (rate(process_cpu_time_seconds_total{{{SVC}}}[{RI}]))", "{{job}}")], "percentunit", w=6),
        ts(lay, "Bot process memory (RSS)", [(f"sum by (job) (process_memory_usage_bytes{{{SVC}}})", "{{job}}")], "bytes", w=6),
        ts(lay, "Disk I/O", [(f"sum by (job, direction) (rate(system_disk_io_bytes_total{{{SVC}}}[{RI}]))", "{{job}} {{direction}}")],
           "Bps", w=12),
    ]
    return dashboard("otel-trading-bot-health", "otel-trading / Bot health and KPIs",
                     "Is the bot alive and healthy, how is it trading (win rate, P&L, exposure, drawdown), is its data on time, is its host coping?",
                     panels, [SERVICE_VAR, STRATEGY_VAR])


DASHBOARDS = {
    "bot-health.json": bot_health,
    "trading-overview.json": trading_overview,
    "order-latency.json": order_latency,
    "pipeline-health.json": pipeline_health,
    "service-red.json": service_red,
    "telemetry-pipeline.json": telemetry_health,
}


def render() -> dict[str, str]:
    return {name: json.dumps(fn(), indent=2, sort_keys=False) + "\n" for name, fn in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
