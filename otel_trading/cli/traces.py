"""``otel-trading traces``: order traces from the local exporters' files, as trees in the terminal."""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from otel_trading import config
from otel_trading.export.localfiles import DEFAULT_DIR, DEMO_DIR, local_dir, read_spans
from otel_trading.redaction import get_redactor
from otel_trading.trading.attributes import ORDER_ID
from otel_trading.trading.kinds import SPAN_KIND_ATTRIBUTE


def traces(spans: list[dict]) -> dict[str, list[dict]]:
    """Spans grouped by trace id, each list in start order; traces ordered by first start."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for span in spans:
        grouped[span["trace_id"]].append(span)
    for items in grouped.values():
        items.sort(key=lambda s: s["start_ns"] or 0)
    return dict(sorted(grouped.items(), key=lambda kv: kv[1][0]["start_ns"] or 0))


def _fmt_duration(ms: float | None) -> str:
    if ms is None:
        return "?"
    if ms < 1:
        return f"{ms * 1000:.0f} us"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


_SHOWN = (
    ORDER_ID,
    "trading.symbol",
    "trading.side",
    "trading.order.quantity",
    "trading.order.status",
    "trading.reject.reason",
    "trading.venue",
    "trading.stage",
)


# ANSI escape sequences and other control characters: span data must not drive the terminal
_CONTROL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)?|[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` for the terminal: control characters and escape sequences removed, secrets masked."""
    return get_redactor().redact_text(_CONTROL.sub(lambda m: " " if m.group(0) in "\t\n\r" else "", text))


def _label(span: dict) -> str:
    return printable(_raw_label(span))


def _raw_label(span: dict) -> str:
    attrs = span.get("attributes") or {}
    kind = attrs.get(SPAN_KIND_ATTRIBUTE)
    parts = [span["name"]]
    if kind:
        parts.append(f"[{kind}]")
    parts.append(_fmt_duration(span.get("duration_ms")))
    details = [f"{k.rsplit('.', 1)[-1] if k != ORDER_ID else 'order'}={attrs[k]}" for k in _SHOWN if k in attrs]
    if details:
        parts.append(" ".join(details))
    if span.get("status") == "ERROR":
        parts.append("ERROR" + (f": {span['status_message']}" if span.get("status_message") else ""))
    other = [link["trace_id"][:8] for link in span.get("links") or () if link["trace_id"] != span["trace_id"]]
    if other:
        parts.append(f"linked to trace {','.join(other)}")
    return "  ".join(parts)


def render_trace(spans: list[dict]) -> list[str]:
    """One trace as tree lines: ``name [kind] duration details``."""
    by_id = {s["span_id"]: s for s in spans}
    children: dict[str | None, list[dict]] = defaultdict(list)
    roots = []
    for s in spans:
        parent = s.get("parent_span_id")
        if parent and parent in by_id:
            children[parent].append(s)
        else:
            roots.append(s)
    lines = [printable(f"trace {spans[0]['trace_id']}")]

    def walk(span: dict, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + _label(span))
        kids = sorted(children.get(span["span_id"], []), key=lambda s: s["start_ns"] or 0)
        extension = "" if top else ("   " if last else "│  ")
        for i, kid in enumerate(kids):
            walk(kid, prefix + extension, i == len(kids) - 1, False)

    for i, root in enumerate(roots):
        walk(root, "  ", i == len(roots) - 1, True)
    return lines


def order_traces(spans: list[dict], order_id: str | None = None) -> list[list[dict]]:
    """Traces that contain an order span; given ``order_id``, that order's traces with the traces linked to or from them."""
    grouped = traces(spans)
    if order_id is None:
        return [items for items in grouped.values() if any((s.get("attributes") or {}).get(SPAN_KIND_ATTRIBUTE) == "order" for s in items)]
    selected = [t for t, items in grouped.items() if any(str((s.get("attributes") or {}).get(ORDER_ID)) == order_id for s in items)]
    # traces linking to the order's (fills arrive in their own trace, linked to the order) ...
    chosen = set(selected)
    selected += [
        t for t, items in grouped.items() if t not in chosen and any(link["trace_id"] in chosen for s in items for link in s.get("links") or ())
    ]
    # ... and the traces they link to (the signal that caused the order)
    for trace_id in list(selected):
        for s in grouped[trace_id]:
            for link in s.get("links") or ():
                if link["trace_id"] in grouped and link["trace_id"] not in selected:
                    selected.append(link["trace_id"])
    # the order's story in time order: signal, order, fills
    return sorted((grouped[t] for t in selected), key=lambda items: items[0]["start_ns"] or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """``otel-trading traces [--order ID] [--dir DIR] [--limit N] [--all]``: print traces from local files."""
    parser = argparse.ArgumentParser(
        prog="otel-trading traces",
        description="Show traces written by the local exporters (OTEL_TRACES_EXPORTER=local, the demo's embedded mode).",
    )
    parser.add_argument("--order", metavar="ID", help="show the trace(s) of this order id (trading.order.id), with linked traces")
    parser.add_argument("--dir", metavar="DIR", help=f"folder of the files (default: $OTEL_TRADING_LOCAL_DIR, else ./{DEFAULT_DIR}, else ./{DEMO_DIR})")
    parser.add_argument("--limit", type=int, default=5, metavar="N", help="show at most N traces (default 5, the latest)")
    parser.add_argument("--all", action="store_true", help="every trace, not only those with an order span")
    args = parser.parse_args(list(argv) if argv is not None else None)
    folder = local_dir(args.dir)
    if args.dir is None and config.current().sources["local_dir"] == "default" and not read_spans(folder):
        folder = Path(DEMO_DIR)  # nothing here: the demo's folder
    spans = read_spans(folder)
    if not spans:
        print(f"no spans in {folder.resolve()} (run `otel-trading demo --local` or set OTEL_TRACES_EXPORTER=local)", file=sys.stderr)
        return 1
    if args.all:
        selected = list(traces(spans).values())
    else:
        selected = order_traces(spans, args.order)
    if not selected:
        what = f"order {args.order!r}" if args.order else "an order span"
        print(f"no trace with {what} among {len(traces(spans))} traces in {folder.resolve()}", file=sys.stderr)
        return 1
    shown = selected if args.order else selected[max(len(selected) - max(args.limit, 0), 0):]
    for items in shown:
        print("\n".join(render_trace(items)))
        print()
    total = len(selected)
    print(f"{len(shown)} of {total} trace(s) shown, from {folder.resolve()}")
    return 0
