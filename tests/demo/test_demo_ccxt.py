"""``otel-trading demo --exchange ccxt``: the demo's orders go through ccxt to the local fake exchange,
traced by the ccxt instrumentation inside the demo's own order traces."""

from __future__ import annotations

import pytest
from support import clean_env, run_python

from otel_trading.export import localfiles

DEMO = "import sys; from otel_trading.demo import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.slow
def test_demo_orders_through_ccxt_to_the_fake_exchange(tmp_path):
    folder = tmp_path / "demo-out"
    proc = run_python(DEMO, clean_env(), instrumented=False, args=["--exchange", "ccxt", "--duration", "2", "--seed", "7", "--local", "--dir", str(folder)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "└─ ccxt create_order  [order]" in proc.stdout  # the report's order trees

    spans = localfiles.read_spans(folder)
    by_id = {s["span_id"]: s for s in spans}
    sent = [s for s in spans if s["name"] == "ccxt create_order" and s["attributes"].get("trading.order.status") == "open"]
    assert sent
    for order in sent:
        # inside the demo's order span, with the HTTP call under it, and the exchange's id and the demo's client id
        assert by_id[order["parent_span_id"]]["name"] == "order.submit"
        assert order["attributes"]["trading.order.client_order_id"] == by_id[order["parent_span_id"]]["attributes"]["trading.order.id"]
        assert any(s["name"] == "POST" and s["parent_span_id"] == order["span_id"] for s in spans)
    # fills: seen by the venue thread's fetch_order, linked to the order they fill
    sent_ids = {o["span_id"] for o in sent}
    fills = [s for s in spans if s["name"] == "fill"]
    assert fills and all(by_id[f["parent_span_id"]]["name"] == "ccxt fetch_order" for f in fills)
    assert all({link["span_id"] for link in f["links"]} & sent_ids for f in fills)
    latest = localfiles.latest_metrics(localfiles.read_metrics(folder))
    assert sum(p["value"] for p in latest["trading.orders"] if p["attributes"].get("trading.venue") == "binance") == len([s for s in spans if s["name"] == "ccxt create_order"])
