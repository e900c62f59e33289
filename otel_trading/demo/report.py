"""The demo's end-of-run report on the terminal."""

from __future__ import annotations

import glob
from collections import Counter
from pathlib import Path

from otel_trading import sampling as sampler
from otel_trading.cli import traces as viewer
from otel_trading.export import localfiles
from otel_trading.trading.kinds import TradingSpanKind


def _heading(title: str) -> str:
    return f"== {title} ".ljust(78, "=")


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms * 1000:.0f} us" if ms < 1 else f"{ms:.1f} ms"


def _outcome_line(stats, elapsed: float) -> str:
    rejected = stats.risk_rejected + stats.venue_rejected
    return (
        f"{elapsed:.1f} s: {stats.ticks} ticks, {stats.signals} signals, {stats.orders} orders "
        f"({stats.acked} acked, {rejected} rejected [{stats.risk_rejected} by risk, {stats.venue_rejected} by the venue], "
        f"{stats.failed} failed), {stats.fills} fills"
    )


def _sampling_rows(decisions: dict[tuple[str, str], int]) -> list[str]:
    active = sampler.current()
    kinds = [k.value for k in TradingSpanKind] + [sampler.OTHER_KIND]
    rows = [f"  {'kind':<15}{'kept':>8}{'dropped':>9}  rule"]
    for kind in kinds:
        kept, dropped = decisions.get((kind, "kept"), 0), decisions.get((kind, "dropped"), 0)
        if kept or dropped:
            rule = active.rule_for(kind) if active is not None else "?"
            rows.append(f"  {kind:<15}{kept:>8}{dropped:>9}  {rule}")
    return rows


def _pick_orders(stats, limit: int) -> list[str]:
    """Interesting orders first: a filled one, a venue/risk reject, a failure, then more filled ones."""
    picks = []
    for ids in (stats.filled_ids, stats.rejected_ids, stats.failed_ids):
        if ids:
            picks.append(ids[0])
    for order_id in stats.filled_ids[1:]:
        if len(picks) >= limit:
            break
        picks.append(order_id)
    return [p for i, p in enumerate(picks) if p not in picks[:i]][:limit]


def print_local_report(stats, folder: Path, elapsed: float, traces: int = 3) -> None:
    folder = Path(folder)
    spans = localfiles.read_spans(folder)
    metrics = localfiles.latest_metrics(localfiles.read_metrics(folder))
    logs = localfiles.read_logs(folder)
    out = print

    out("")
    out(_heading("What happened"))
    out(_outcome_line(stats, elapsed))

    out("")
    out(_heading(f"Order traces: {min(traces, stats.orders)} of {stats.orders} orders, each with its linked fill traces"))
    shown = 0
    for order_id in _pick_orders(stats, traces):
        for items in viewer.order_traces(spans, order_id):
            out("\n".join(viewer.render_trace(items)))
        shown += 1
    if not shown:
        out("  (no orders in this run: try a longer --duration)")

    out("")
    out(_heading("Sampling: root decisions by trading.span.kind (trading.sampler.decisions)"))
    decisions: dict[tuple[str, str], int] = {}
    for point in metrics.get("trading.sampler.decisions", []):
        key = (point["attributes"].get("trading.span.kind"), point["attributes"].get("trading.sampler.decision"))
        decisions[key] = decisions.get(key, 0) + int(point["value"])
    if not decisions:
        decisions = sampler.totals()
    out("\n".join(_sampling_rows(decisions)))
    trace_count = len(viewer.traces(spans))
    out(f"  -> {len(spans)} spans in {trace_count} traces kept; dropped traces cost almost nothing and are counted above")

    out("")
    out(_heading("Metrics (final values)"))

    def total(name: str) -> float:
        return sum(p.get("value", 0) for p in metrics.get(name, []))

    def by(name: str, attribute: str) -> str:
        counts: Counter = Counter()
        for p in metrics.get(name, []):
            counts[str(p["attributes"].get(attribute, "-"))] += p.get("value", 0)
        return ", ".join(f"{k} {v:g}" for k, v in counts.most_common())

    out(f"  trading.orders                {total('trading.orders'):>8g}   by status: {by('trading.orders', 'trading.order.status') or '-'}")
    out(f"  trading.fills                 {total('trading.fills'):>8g}   by liquidity: {by('trading.fills', 'trading.fill.liquidity') or '-'}")
    out(f"  trading.order.rejections      {total('trading.order.rejections'):>8g}   by reason: {by('trading.order.rejections', 'trading.reject.reason') or '-'}")
    out(f"  trading.market_data.ticks     {total('trading.market_data.ticks'):>8g}")
    for name, label in (
        ("trading.order.ack.duration", "order ack latency"),
        ("trading.order.fill.duration", "order fill latency"),
        ("trading.tick_to_trade.duration", "tick-to-trade"),
    ):
        points = metrics.get(name, [])
        q = localfiles.histogram_percentiles(points)
        count = sum(p.get("count", 0) for p in points)
        if q:
            out(f"  {label:<20} p50 {_ms(q[0.5]):>9}  p90 {_ms(q[0.9]):>9}  p99 {_ms(q[0.99]):>9}   (n={count}, {name})")
    pnl = metrics.get("trading.pnl", [])
    positions = metrics.get("trading.positions.open", [])
    if pnl or positions:
        out(f"  P&L {sum(p.get('value', 0) for p in pnl):+.2f}, open positions {sum(p.get('value', 0) for p in positions):g}")

    out("")
    levels = Counter(str(r.get("severity") or "?").lower() for r in logs)
    out(_heading(f"Logs: {len(logs)} records ({', '.join(f'{n} {lvl}' for lvl, n in levels.most_common()) or 'none'}), each with its trace id"))
    for record in [r for r in logs if str(r.get("severity", "")).lower() in ("warning", "warn", "error")][:3]:
        out(f"  {str(record.get('severity')).lower():<7} {record.get('body')}  trace_id={record.get('trace_id') or '-'}")

    out("")
    out(_heading("Files"))
    for signal in ("spans", "metrics", "logs"):
        for path in sorted(glob.glob(str(folder / f"{signal}.*.jsonl"))):
            with open(path, "rb") as fh:
                lines = sum(1 for _ in fh)
            out(f"  {Path(path).resolve()}  ({lines} OTLP/JSON lines, one per exported batch)")
    example = (stats.rejected_ids or stats.filled_ids or stats.order_ids or ["ORD-000001"])[0]
    dir_arg = "" if str(folder) == localfiles.DEMO_DIR else f" --dir {folder}"
    out(f"  more: otel-trading traces{dir_arg} --order {example}    (or jq . {folder}/spans.*.jsonl; replay into the stack: docker compose --profile replay up)")


def print_brief_report(stats, elapsed: float, mode: str, spooled: dict[str, int] | None = None) -> None:
    print("")
    print(_outcome_line(stats, elapsed))
    decisions = sampler.totals()
    if decisions:
        print("\n".join(_sampling_rows(decisions)))
    if spooled:
        kept = ", ".join(f"{n} {'spans' if signal == 'traces' else 'log records'}" for signal, n in sorted(spooled.items()))
        print(f"the OTLP collector did not take everything: {kept} kept in the disk spool, sent when it answers (see the exit summary)")
        return
    where = "the configured exporters" if mode == "configured" else "the OTLP collector"
    print(f"telemetry went to {where}; for the embedded default run `otel-trading demo --local`")
