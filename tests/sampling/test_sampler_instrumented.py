"""Trading sampler end to end: ``opentelemetry-instrument`` in a subprocess, into the loopback receiver."""

from __future__ import annotations

import json

import pytest

KIND = "trading.span.kind"

TICKS_AND_ORDERS = """
from opentelemetry import trace
tracer = trace.get_tracer("bot")
print("SAMPLER", trace.get_tracer_provider().sampler.get_description(), flush=True)
for i in range(2000):
    with tracer.start_as_current_span("tick", attributes={"trading.span.kind": "market_data"}):
        with tracer.start_as_current_span("signal", attributes={"trading.span.kind": "signal"}):
            pass
for i in range(50):
    with tracer.start_as_current_span("order", attributes={"trading.span.kind": "order"}):
        with tracer.start_as_current_span("risk check", attributes={"trading.span.kind": "risk"}):
            pass
        with tracer.start_as_current_span("http send"):
            pass
"""


def _decisions(otlp) -> dict[tuple[str, str], int]:
    """Latest value of each trading.sampler.decisions series (cumulative)."""
    out = {}
    for metric in otlp.metrics():
        if metric.name == "trading.sampler.decisions":
            for p in metric.points:
                attrs = {kv.key: kv.value.string_value for kv in p.attributes}
                out[(attrs[KIND], attrs["trading.sampler.decision"])] = p.as_int
    return out


def test_tenth_of_ticks_whole_orders_and_decision_metric(otlp, run_instrumented):
    proc = run_instrumented(
        TICKS_AND_ORDERS, OTEL_TRACES_SAMPLER="parentbased_trading", OTEL_TRACES_SAMPLER_ARG="market_data=0.1"
    )
    assert proc.returncode == 0, proc.stderr
    assert "SAMPLER ParentBased{root:TradingSampler{market_data=0.1,risk=always,order=always" in proc.stdout
    assert "OTEL_TRACES_SAMPLER_ARG" not in proc.stderr
    spans = otlp.wait_for(lambda r: [s for s in r.spans() if s.name == "order"] and r.spans())
    ticks = [s for s in spans if s.name == "tick"]
    # Binomial(2000, 0.1): mean 200, sd 13.4; +-80 is 6 sd, a false failure about once in 10^9 runs.
    assert 120 <= len(ticks) <= 280
    by_trace: dict[str, list[str]] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s.name)
    assert sum(1 for names in by_trace.values() if "order" in names) == 50
    for names in by_trace.values():  # every kept trace is whole
        assert sorted(names) in (["signal", "tick"], ["http send", "order", "risk check"])
    decisions = otlp.wait_for(lambda r: _decisions(r).get(("order", "kept")) == 50 and _decisions(r))
    assert decisions[("market_data", "kept")] == len(ticks)
    assert decisions[("market_data", "kept")] + decisions[("market_data", "dropped")] == 2000
    assert ("signal", "kept") not in decisions  # children are not root decisions


RATE = """
import time
from opentelemetry import trace
tracer = trace.get_tracer("bot")
start = time.monotonic()
for i in range(3000):
    with tracer.start_as_current_span("tick", attributes={"trading.span.kind": "market_data"}):
        pass
    if i % 500 == 0:
        time.sleep(0.05)
print("ELAPSED", time.monotonic() - start, flush=True)
with tracer.start_as_current_span("order", attributes={"trading.span.kind": "order"}):
    pass
"""


@pytest.mark.slow
def test_rate_rule_bounded_by_bucket(otlp, run_instrumented):
    proc = run_instrumented(RATE, OTEL_TRACES_SAMPLER="parentbased_trading", OTEL_TRACES_SAMPLER_ARG="market_data=40/s")
    assert proc.returncode == 0, proc.stderr
    elapsed = float(proc.stdout.split("ELAPSED")[1].split()[0])
    spans = otlp.wait_for(lambda r: any(s.name == "order" for s in r.spans()) and r.spans())
    kept = sum(1 for s in spans if s.name == "tick")
    assert kept <= 40 * elapsed + 40  # rate x time + the burst (one second's worth)
    assert kept >= 40  # the bucket starts full


REMOTE_AND_BAD_ARG = """
from opentelemetry import trace
from opentelemetry.propagate import extract
tracer = trace.get_tracer("svc")
sampled = extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
unsampled = extract({"traceparent": "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00"})
with tracer.start_as_current_span("tick under sampled remote", context=sampled, attributes={"trading.span.kind": "market_data"}):
    with tracer.start_as_current_span("child"):
        pass
with tracer.start_as_current_span("signal under unsampled remote", context=unsampled, attributes={"trading.span.kind": "signal"}):
    pass
with tracer.start_as_current_span("order under unsampled remote", context=unsampled, attributes={"trading.span.kind": "order"}):
    with tracer.start_as_current_span("order child"):
        pass
with tracer.start_as_current_span("root order", attributes={"trading.span.kind": "order"}):
    pass
with tracer.start_as_current_span("root tick", attributes={"trading.span.kind": "market_data"}):
    pass
print("DESC", trace.get_tracer_provider().sampler.get_description(), flush=True)
print("still running", flush=True)
"""


def test_remote_parents_and_bad_arg(otlp, run_instrumented):
    proc = run_instrumented(
        REMOTE_AND_BAD_ARG,
        OTEL_TRACES_SAMPLER="parentbased_trading",
        OTEL_TRACES_SAMPLER_ARG="market_data=0,signal=often,bogus=0.5",
    )
    assert proc.returncode == 0, proc.stderr
    assert "still running" in proc.stdout
    bad_lines = [line for line in proc.stderr.splitlines() if "OTEL_TRACES_SAMPLER_ARG" in line]
    assert len(bad_lines) == 1, proc.stderr
    assert "'signal=often'" in bad_lines[0] and "'bogus=0.5'" in bad_lines[0]
    assert "KIND=RATIO or KIND=N/s" in bad_lines[0]
    assert "TradingSampler{market_data=0," in proc.stdout  # the valid part applies
    spans = otlp.wait_for(lambda r: any(s.name == "root order" for s in r.spans()) and r.spans())
    names = sorted(s.name for s in spans)
    # children follow their remote parent, except a must-keep kind, kept with its subtree
    assert names == ["child", "order child", "order under unsampled remote", "root order", "tick under sampled remote"]
    remote = next(s for s in spans if s.name == "tick under sampled remote")
    assert remote.trace_id == "0af7651916cd43dd8448eb211c80319c" and remote.parent_span_id == "b7ad6b7169203331"


def test_configure_selects_the_sampler(otlp, run_instrumented):
    code = """
import json, otel_trading.bootstrap.configure as sdk
from opentelemetry import trace
from otel_trading import sampling as sampler
t = sdk.configure(traces_sampler="parentbased_trading", traces_sampler_arg="market_data=0.01")
print(json.dumps({"desc": trace.get_tracer_provider().sampler.get_description(), "current": sampler.current().rules_text()}))
"""
    proc = run_instrumented(code, instrumented=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["current"].startswith("market_data=0.01,")
    assert out["desc"].startswith("ParentBased{root:TradingSampler{market_data=0.01")
