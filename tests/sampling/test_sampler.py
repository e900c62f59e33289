"""Trading sampler, in process: rules, ratio consistency, rates, parent-based, counting."""

from __future__ import annotations

import os
import random
import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_trading import sampling
from otel_trading.sampling import (
    ParentBasedTradingSampler,
    TradingSampler,
    parentbased_trading_sampler,
    parse_rules,
    trading_sampler,
)
from otel_trading.trading.kinds import SPAN_KIND_ATTRIBUTE, TradingSpanKind

KIND = SPAN_KIND_ATTRIBUTE


class SeededIds(IdGenerator):
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def generate_span_id(self) -> int:
        return self.rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self.rng.getrandbits(128) or 1


def pipeline(sampler, seed=7):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, id_generator=SeededIds(seed))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(sampling, "time", fake)
    return fake


# ------------------------------------------------------------------------ parsing


def test_parse_rules_ratio_rate_and_default():
    rules, bad = parse_rules(" market_data=50/s , signal=0.1,DEFAULT=1 ,order=0")
    assert bad == []
    assert rules["market_data"].rate == 50 and rules["market_data"].ratio is None
    assert rules["signal"].ratio == 0.1
    assert rules["default"].ratio == 1.0
    assert rules["order"].ratio == 0.0


def test_parse_rules_collects_bad_parts_and_keeps_valid_ones():
    rules, bad = parse_rules("market_data=0.01,bogus=1,signal=2,risk=abc,model=-1/s,portfolio=,x")
    assert set(rules) == {"market_data"}
    assert bad == ["bogus=1", "signal=2", "risk=abc", "model=-1/s", "portfolio=", "x"]


def test_bare_number_means_default():
    rules, bad = parse_rules("0.25")
    assert bad == [] and rules["default"].ratio == 0.25
    assert trading_sampler(0.5).rule_for("signal") == "0.5"


def test_description_shows_effective_rules():
    s = trading_sampler("market_data=50/s,signal=0.1,default=1")
    assert s.get_description() == (
        "TradingSampler{market_data=50/s,signal=0.1,risk=always,order=always,execution=always,"
        "reconciliation=always,default=1}"
    )
    pb = parentbased_trading_sampler("market_data=0.01")
    assert pb.get_description().startswith("ParentBased{root:TradingSampler{market_data=0.01,")
    assert "remoteParentNotSampled:AlwaysOffSampler" in pb.get_description()
    assert pb.get_description().endswith(",keptUnderUnsampledParent:risk|order|execution|reconciliation}")
    assert parentbased_trading_sampler("order=0.5").get_description().endswith(",keptUnderUnsampledParent:risk|execution|reconciliation}")


def test_invalid_arg_one_stderr_line_valid_parts_apply(capsys):
    s = parentbased_trading_sampler("market_data=0.5,signal=lots,foo=0.1")
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert "OTEL_TRACES_SAMPLER_ARG" in line and "'signal=lots'" in line and "'foo=0.1'" in line
    assert "KIND=RATIO" in line and "N/s" in line and "market_data" in line
    assert s.trading.rule_for("market_data") == "0.5"
    assert s.trading.rule_for("signal") == "1"  # falls back to default


def test_dict_rules_are_validated():
    s = TradingSampler({TradingSpanKind.MARKET_DATA: 0.1, "signal": "5/s"})
    assert s.rule_for("market_data") == "0.1" and s.rule_for(TradingSpanKind.SIGNAL) == "5/s"
    with pytest.raises(ValueError, match="accepted"):
        TradingSampler({"market_data": 3})


# ---------------------------------------------------------------------- decisions


def test_must_keep_kinds_always_kept_unless_explicit():
    s = trading_sampler("default=0")
    for kind in TradingSpanKind:
        assert s.drops_root(kind, 12345) is (not kind.must_keep)
    s = trading_sampler("default=0,order=0")
    assert s.drops_root("order", 1) is True
    assert s.drops_root("execution", 1) is False


def test_ratio_matches_trace_id_ratio_based():
    rng = random.Random(1)
    for ratio in (0.0, 0.01, 0.1, 0.5, 0.999, 1.0):
        ours = trading_sampler(f"market_data={ratio}")
        sdk = TraceIdRatioBased(ratio)
        for _ in range(2000):
            tid = rng.getrandbits(128)
            mine = ours.should_sample(None, tid, "t", attributes={KIND: "market_data"}).decision
            theirs = sdk.should_sample(None, tid, "t").decision
            assert mine == theirs, (ratio, hex(tid))


def test_about_a_tenth_of_ticks_kept_and_order_traces_whole():
    tracer, exporter = pipeline(parentbased_trading_sampler("market_data=0.1"), seed=42)
    roots = 2000
    for i in range(roots):
        with tracer.start_as_current_span("tick", attributes={KIND: "market_data"}):
            with tracer.start_as_current_span("signal", attributes={KIND: "signal"}):
                pass
        if i % 10 == 0:
            with tracer.start_as_current_span("order", attributes={KIND: "order"}):
                with tracer.start_as_current_span("child"):
                    pass
    spans = exporter.get_finished_spans()
    ticks = [s for s in spans if s.name == "tick"]
    orders = [s for s in spans if s.name == "order"]
    # Binomial(2000, 0.1): mean 200, sd 13.4; +-80 is 6 sd (and the ids are seeded anyway).
    assert 120 <= len(ticks) <= 280
    assert len(orders) == roots // 10
    by_trace: dict[int, list] = {}
    for s in spans:
        by_trace.setdefault(s.context.trace_id, []).append(s)
    for trace_spans in by_trace.values():
        names = sorted(s.name for s in trace_spans)
        assert names in (["signal", "tick"], ["child", "order"])  # never a partial trace
    assert all(s.attributes[KIND] in ("market_data", "signal", "order") for s in spans if s.name != "child")


def test_kept_span_keeps_its_attributes():
    tracer, exporter = pipeline(parentbased_trading_sampler("market_data=1"))
    with tracer.start_as_current_span("tick", attributes={KIND: "market_data", "trading.symbol": "AAPL"}):
        pass
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes) == {KIND: "market_data", "trading.symbol": "AAPL"}


def test_spans_without_kind_use_default_and_count_as_other():
    s = trading_sampler("default=0")
    tracer, exporter = pipeline(ParentBasedTradingSampler(s))
    with tracer.start_as_current_span("http"):
        pass
    assert exporter.get_finished_spans() == ()
    assert s.counts() == {("other", "dropped"): 1}


def test_odd_kind_values_use_default():
    s = parentbased_trading_sampler("default=0")
    for value in (["market_data"], ("order",), 3, "MARKET-DATA"):
        assert not s.should_sample(None, 1, "t", attributes={KIND: value}).decision.is_recording()
        assert not s.should_sample(_ctx(False, False), 1, "t", attributes={KIND: value}).decision.is_recording()
    assert s.trading.counts() == {("other", "dropped"): 4}


def test_enum_member_as_attribute_value():
    s = trading_sampler("market_data=0")
    result = s.should_sample(None, 1, "t", attributes={KIND: TradingSpanKind.MARKET_DATA})
    assert not result.decision.is_sampled()


def _ctx(sampled: bool, remote: bool):
    sc = SpanContext(0xABC, 0xDEF, is_remote=remote, trace_flags=TraceFlags(1 if sampled else 0))
    return trace.set_span_in_context(NonRecordingSpan(sc))


@pytest.mark.parametrize("remote", [True, False])
def test_parent_based_children_follow_parent(remote):
    s = parentbased_trading_sampler("market_data=0")
    # A market-data child of a sampled parent is kept; one of an unsampled parent is dropped.
    kept = s.should_sample(_ctx(True, remote), 0xABC, "tick", attributes={KIND: "market_data"})
    assert kept.decision.is_sampled() and kept.attributes[KIND] == "market_data"
    dropped = s.should_sample(_ctx(False, remote), 0xABC, "signal", attributes={KIND: "signal"})
    assert not dropped.decision.is_recording()
    plain = s.should_sample(_ctx(False, remote), 0xABC, "http")
    assert not plain.decision.is_recording()
    assert s.trading.counts() == {}  # following the parent is not a decision


@pytest.mark.parametrize("remote", [True, False])
def test_must_keep_span_under_unsampled_parent_is_kept(remote):
    s = parentbased_trading_sampler("market_data=0")
    for kind in ("order", "execution", "risk", "reconciliation"):
        result = s.should_sample(_ctx(False, remote), 0xABC, kind, attributes={KIND: kind, "trading.order.id": "o-1"})
        assert result.decision.is_sampled(), kind
        assert result.attributes["trading.order.id"] == "o-1"
    assert s.trading.counts()[("order", "kept")] == 1
    # A must-keep kind given a rule of its own is sampled like any other kind: it follows its parent.
    s = parentbased_trading_sampler("market_data=0,order=0.5")
    assert not s.should_sample(_ctx(False, remote), 0xABC, "order", attributes={KIND: "order"}).decision.is_recording()


def test_orders_sent_inside_dropped_ticks_are_kept_with_their_subtree():
    tracer, exporter = pipeline(parentbased_trading_sampler("market_data=0"))
    for i in range(20):
        with tracer.start_as_current_span("tick", attributes={KIND: "market_data"}):
            with tracer.start_as_current_span("evaluate", attributes={KIND: "signal"}):
                if i % 4 == 0:
                    with tracer.start_as_current_span("order", attributes={KIND: "order"}):
                        with tracer.start_as_current_span("http send"):
                            pass
    spans = exporter.get_finished_spans()
    assert sorted({s.name for s in spans}) == ["http send", "order"]
    assert sum(1 for s in spans if s.name == "order") == 5
    orders = {s.context.span_id for s in spans if s.name == "order"}
    assert all(s.parent.span_id in orders for s in spans if s.name == "http send")


def test_remote_parent_end_to_end():
    tracer, exporter = pipeline(parentbased_trading_sampler("market_data=0"))
    with tracer.start_as_current_span("tick", context=_ctx(True, True), attributes={KIND: "market_data"}):
        pass
    with tracer.start_as_current_span("signal", context=_ctx(False, True), attributes={KIND: "signal"}):
        pass
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["tick"]
    assert spans[0].parent.span_id == 0xDEF and spans[0].context.trace_id == 0xABC


def test_works_as_root_of_sdk_parent_based_too():
    s = TradingSampler("market_data=0")
    tracer, exporter = pipeline(ParentBased(s))
    with tracer.start_as_current_span("tick", attributes={KIND: "market_data"}):
        pass
    with tracer.start_as_current_span("order", attributes={KIND: "order"}):
        pass
    assert [x.name for x in exporter.get_finished_spans()] == ["order"]
    assert sampling.unwrap(ParentBased(s)) is s


# --------------------------------------------------------------------------- rates


def test_rate_token_bucket(clock):
    s = trading_sampler("market_data=50/s")
    kept = sum(not s.drops_root("market_data", i) for i in range(1000))
    assert kept == 50  # the bucket starts full: one second's worth
    clock.now += 0.1
    kept = sum(not s.drops_root("market_data", i) for i in range(1000))
    assert kept == 5
    clock.now += 100  # the burst is capped
    kept = sum(not s.drops_root("market_data", i) for i in range(1000))
    assert kept == 50
    assert s.counts()[("market_data", "kept")] == 105


def test_rate_is_per_kind_and_thread_safe(clock):
    s = trading_sampler("default=20/s")
    results: list[int] = []

    def work(kind):
        results.append(sum(not s.drops_root(kind, 1) for _ in range(5000)))

    threads = [threading.Thread(target=work, args=(k,)) for k in ("signal", "signal", "signal", "model")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 40  # 20 for signal (shared by three threads) + 20 for model
    c = s.counts()
    assert c[("signal", "kept")] == 20 and c[("signal", "dropped")] == 14980
    assert c[("model", "kept")] == 20


def test_counts_are_exact_across_threads():
    s = trading_sampler("market_data=0.5")
    ids = [random.Random(i).getrandbits(128) for i in range(4)]

    def work(tid):
        for _ in range(20000):
            s.drops_root("market_data", tid)

    threads = [threading.Thread(target=work, args=(t,)) for t in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c = s.counts()
    assert c.get(("market_data", "kept"), 0) + c.get(("market_data", "dropped"), 0) == 80000


def test_zero_rate_drops_everything(clock):
    s = trading_sampler("market_data=0/s")
    assert all(s.drops_root("market_data", i) for i in range(100))


# ------------------------------------------------------------- helper fast path


def test_drops_root_counts_and_grants_the_following_root():
    s = trading_sampler("market_data=0.5")
    tracer, exporter = pipeline(ParentBasedTradingSampler(s))
    rng = random.Random(3)
    kept_by_helper = 0
    for _ in range(400):
        if not s.drops_root(TradingSpanKind.MARKET_DATA, rng.getrandbits(128)):
            kept_by_helper += 1
            # the SDK picks its own trace id; the helper's decision must stand
            with tracer.start_as_current_span("tick", attributes={KIND: "market_data"}):
                pass
    assert len(exporter.get_finished_spans()) == kept_by_helper
    c = s.counts()
    assert c[("market_data", "kept")] == kept_by_helper
    assert c[("market_data", "kept")] + c[("market_data", "dropped")] == 400


def test_current_unwraps_global_provider(monkeypatch):
    pb = parentbased_trading_sampler("market_data=0.1")
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: TracerProvider(sampler=pb))
    assert sampling.current() is pb.trading
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: TracerProvider(sampler=TraceIdRatioBased(0.5)))
    assert sampling.current() is None
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.NoOpTracerProvider())
    assert sampling.current() is None


# --------------------------------------------------------------------------- metric


def test_decisions_metric():
    reader = InMemoryMetricReader()
    sampling.register_metrics(MeterProvider(metric_readers=[reader]))
    before = sampling.totals()
    s = trading_sampler("market_data=0,signal=1")
    for i in range(7):
        s.drops_root("market_data", i)
    for i in range(3):
        s.drops_root("signal", i)
    s.drops_root("order", 1)
    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == "trading.sampler.decisions":
                    assert m.unit == "{span}" and m.data.is_monotonic
                    for p in m.data.data_points:
                        points[(p.attributes[KIND], p.attributes["trading.sampler.decision"])] = p.value
    for key, n in {("market_data", "dropped"): 7, ("signal", "kept"): 3, ("order", "kept"): 1}.items():
        assert points[key] == before.get(key, 0) + n


def test_forked_child_counts_its_own_decisions(clock):
    s = trading_sampler("market_data=1/s")
    s.drops_root("market_data", 1)
    s.drops_root("market_data", 2)
    pid = os.fork()
    if pid == 0:  # child: fresh counts, working lock
        ok = s.counts() == {} and s.drops_root("market_data", 3) and s.counts() == {("market_data", "dropped"): 1}
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert s.counts() == {("market_data", "kept"): 1, ("market_data", "dropped"): 1}


def test_entry_points_load_factories(monkeypatch):
    from opentelemetry.sdk._configuration import _import_sampler

    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "market_data=0.01")
    s = _import_sampler("parentbased_trading")
    assert isinstance(s, ParentBasedTradingSampler) and s.trading.rule_for("market_data") == "0.01"
    s = _import_sampler("trading")
    assert isinstance(s, TradingSampler)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG")
    assert _import_sampler("parentbased_trading").trading.rule_for("signal") == "1"
