"""The demo pipeline and the local-files embedded default."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link
from support import BIN, clean_env, otlp_env, run_python

from otel_trading import config
from otel_trading.cli import traces
from otel_trading.demo import collector_reachable, parse_args
from otel_trading.export import localfiles

KIND = "trading.span.kind"
DEMO = "import sys; from otel_trading.demo import main; sys.exit(main(sys.argv[1:]))"


# ----------------------------------------------------------------- local files, in process


def test_local_exporters_round_trip(tmp_path):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(localfiles.LocalSpanExporter(tmp_path)))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("order.submit", attributes={KIND: "order", "trading.order.id": "O-1"}) as order:
        with tracer.start_as_current_span("risk.pre_trade", attributes={KIND: "risk"}):
            pass
    with tracer.start_as_current_span("execution.report", attributes={KIND: "execution", "trading.order.id": "O-1"}, links=[Link(order.get_span_context())]):
        pass
    with tracer.start_as_current_span("unrelated", attributes={KIND: "order", "trading.order.id": "O-2"}):
        pass
    provider.shutdown()

    spans = localfiles.read_spans(tmp_path)
    assert len(spans) == 4
    assert {s["name"] for s in spans} >= {"order.submit", "risk.pre_trade"}
    order_span = next(s for s in spans if s["name"] == "order.submit")
    assert order_span["kind"] == "CLIENT" or order_span["kind"] == "INTERNAL"
    assert order_span["duration_ms"] >= 0 and order_span["attributes"]["trading.order.id"] == "O-1"

    stories = traces.order_traces(spans, "O-1")
    assert [items[0]["name"] for items in stories] == ["order.submit", "execution.report"]
    tree = traces.render_trace(stories[0])
    assert tree[1].startswith("  order.submit  [order]") and "└─ risk.pre_trade  [risk]" in tree[2]
    assert "linked to trace" in traces.render_trace(stories[1])[1]


def test_local_metric_and_log_exporters(tmp_path):
    reader = PeriodicExportingMetricReader(localfiles.LocalMetricExporter(tmp_path), export_interval_millis=60_000)
    meters = MeterProvider(metric_readers=[reader])
    meter = meters.get_meter("t")
    counter = meter.create_counter("trading.orders")
    hist = meter.create_histogram("trading.order.ack.duration", unit="s", explicit_bucket_boundaries_advisory=[0.001, 0.01, 0.1])
    for _ in range(3):
        counter.add(1, {"trading.order.status": "acked"})
    for value in [0.0005] * 50 + [0.005] * 40 + [0.05] * 10:
        hist.record(value)
    meters.shutdown()
    latest = localfiles.latest_metrics(localfiles.read_metrics(tmp_path))
    assert latest["trading.orders"][0]["value"] == 3 and latest["trading.orders"][0]["type"] == "counter"
    q = localfiles.histogram_percentiles(latest["trading.order.ack.duration"])
    eps = 1e-9
    assert q[0.5] <= 0.001 + eps and 0.001 < q[0.9] <= 0.01 + eps and 0.01 < q[0.99] <= 0.05 + eps

    logs = LoggerProvider()
    logs.add_log_record_processor(SimpleLogRecordProcessor(localfiles.LocalLogExporter(tmp_path)))
    logs.get_logger("t").emit(body="order acked", severity_text="INFO", attributes={"trading.order.id": "O-1"})
    logs.shutdown()
    (record,) = localfiles.read_logs(tmp_path)
    assert record["body"] == "order acked" and record["attributes"] == {"trading.order.id": "O-1"}


def test_local_dir_setting_and_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_TRADING_LOCAL_DIR", str(tmp_path / "x"))
    monkeypatch.setattr(config.loader, "_current", None)  # settings are read once per process: read them again
    assert localfiles.local_dir() == tmp_path / "x"
    assert localfiles.LocalSpanExporter().directory == tmp_path / "x"
    (tmp_path / "spans.1.jsonl").write_text("{}\n")
    (tmp_path / "keep.txt").write_text("mine")
    localfiles.clear(tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["keep.txt"]


def test_show_traces_without_files(tmp_path, capsys):
    assert traces.main(["--dir", str(tmp_path)]) == 1
    assert "no spans" in capsys.readouterr().err


def test_demo_arguments():
    args = parse_args(["--duration", "2", "--rate", "50", "--seed", "7", "--local", "--dir", "d"])
    assert (args.duration, args.rate, args.seed, args.local, args.dir) == (2.0, 50.0, 7, True, "d")
    with pytest.raises(SystemExit):
        parse_args(["--duration", "0"])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_collector_reachable(otlp):
    assert collector_reachable(otlp.grpc_endpoint)
    assert not collector_reachable(f"http://127.0.0.1:{_closed_port()}")


# ------------------------------------------------------------------------ the demo, for real


@pytest.mark.slow
def test_demo_local_files_and_traces_command(tmp_path):
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    folder = tmp_path / "demo-out"
    proc = run_python(DEMO, env, instrumented=False, args=["--duration", "2", "--seed", "7", "--dir", str(folder)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no collector at" in proc.stderr
    out = proc.stdout
    for section in ("== What happened", "== Order traces", "== Sampling", "== Metrics", "== Logs", "== Files"):
        assert section in out
    assert "order.submit  [order]" in out and "├─ risk.pre_trade  [risk]" in out
    assert "market_data" in out and "p50" in out and "trading.orders" in out
    assert str(folder.resolve()) in out
    for signal in ("spans", "metrics", "logs"):
        assert list(folder.glob(f"{signal}.*.jsonl")), signal

    spans = localfiles.read_spans(folder)
    kinds = {s["attributes"].get(KIND) for s in spans}
    assert {"market_data", "signal", "order", "risk", "execution", "portfolio", "reconciliation"} <= kinds
    order_id = next(s["attributes"]["trading.order.id"] for s in spans if s["name"] == "order.submit")

    traces = subprocess.run(
        [str(BIN / "otel-trading"), "traces", "--dir", str(folder), "--order", order_id],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert traces.returncode == 0, traces.stderr
    assert f"order={order_id}" in traces.stdout and "order.submit" in traces.stdout


@pytest.mark.slow
def test_demo_under_opentelemetry_instrument(otlp, tmp_path):
    env = otlp_env(otlp, OTEL_TRACES_SAMPLER="parentbased_trading", OTEL_TRACES_SAMPLER_ARG="market_data=0.2")
    proc = run_python(DEMO, env, args=["--duration", "2", "--seed", "7"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "== Files" not in proc.stdout  # no local files: telemetry went to the configured exporters
    assert not list(tmp_path.iterdir())

    def kinds(receiver):
        return {s.attributes.get(KIND) for s in receiver.spans()}

    expected = {"market_data", "signal", "order", "risk", "execution", "portfolio", "reconciliation"}
    otlp.wait_for(lambda r: expected <= kinds(r))
    spans = otlp.spans()
    orders = {s.span_id: s for s in spans if s.attributes.get(KIND) == "order"}
    executions = [s for s in spans if s.attributes.get(KIND) == "execution"]
    # fills are their own traces, linked to their order's span
    linked = {link.span_id.hex() for s in executions for link in s.links}
    assert linked & set(orders)
    # the message hop: the venue's consumer span is in the order's trace
    consumers = [s for s in spans if s.name.startswith("process orders.")]
    assert consumers and all(c.trace_id in {o.trace_id for o in orders.values()} for c in consumers)
    ticks = [s for s in spans if s.attributes.get(KIND) == "market_data"]
    assert ticks and all(s.resource.get("service.name") == "test-bot" for s in ticks)

    names = otlp.wait_for(
        lambda r: (n := {m.name for m in r.metrics()}) >= {"trading.orders", "trading.fills", "trading.sampler.decisions", "trading.order.ack.duration", "trading.market_data.ticks"} and n
    )
    assert "trading.tick_to_trade.duration" in names
    logs = otlp.wait_for(lambda r: [x for x in r.logs() if x.body == "order submitted"])
    order_traces = {o.trace_id for o in orders.values()}
    assert any(x.trace_id in order_traces for x in logs)


@pytest.mark.slow
def test_demo_alone_sends_otlp_when_a_collector_answers(otlp, tmp_path):
    env = otlp_env(otlp)
    proc = run_python(DEMO, env, instrumented=False, args=["--duration", "1", "--seed", "3"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no collector" not in proc.stderr and not list(tmp_path.iterdir())
    otlp.wait_for(lambda r: any(s.attributes.get(KIND) == "order" for s in r.spans()))
    assert any(s.resource.get("service.name") == "test-bot" for s in otlp.spans())


@pytest.mark.slow
def test_python_dash_m(tmp_path):
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    proc = subprocess.run(
        [sys.executable, "-m", "otel_trading.demo", "--duration", "0.5", "--local", "--dir", str(tmp_path / "d")],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "== What happened" in proc.stdout
    assert Path(tmp_path / "d").is_dir()


@pytest.mark.slow
def test_pipeline_survives_a_failing_stage(monkeypatch):
    """A bug in one stage is logged; the run still ends by itself and reports what happened."""
    from otel_trading.demo import pipeline

    def broken(self, msg, rng):
        raise RuntimeError("venue bug")

    monkeypatch.setattr(pipeline.Pipeline, "_handle", broken)
    stats = pipeline.run(pipeline.Config(duration=0.5, rate=100, seed=1, signal_probability=0.5, risk_reject=0.0))
    assert stats.ticks > 0 and stats.orders > 0
    assert stats.failed == stats.orders and stats.fills == 0


def test_local_exporters_under_opentelemetry_instrument(tmp_path):
    folder = tmp_path / "telemetry"
    env = clean_env(
        OTEL_TRACES_EXPORTER="local",
        OTEL_METRICS_EXPORTER="local",
        OTEL_LOGS_EXPORTER="local",
        OTEL_TRADING_LOCAL_DIR=str(folder),
        OTEL_SERVICE_NAME="files-bot",
    )
    code = """
import logging
from opentelemetry import trace, metrics
tracer = trace.get_tracer("bot")
with tracer.start_as_current_span("order.submit", attributes={"trading.span.kind": "order", "trading.order.id": "O-9"}):
    with tracer.start_as_current_span("risk.pre_trade", attributes={"trading.span.kind": "risk"}):
        logging.getLogger("bot").warning("risk says no")
metrics.get_meter("bot").create_counter("trading.orders").add(2)
"""
    proc = run_python(code, env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    spans = localfiles.read_spans(folder)
    assert sorted(s["name"] for s in spans) == ["order.submit", "risk.pre_trade"]
    assert all(s["service"] == "files-bot" for s in spans)
    assert any(m["name"] == "trading.orders" and m["value"] == 2 for m in localfiles.read_metrics(folder))
    logs = localfiles.read_logs(folder)
    assert any(r["body"] == "risk says no" and r["trace_id"] == spans[0]["trace_id"] for r in logs)
    out = subprocess.run(
        [str(BIN / "otel-trading"), "traces", "--dir", str(folder), "--order", "O-9"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "└─ risk.pre_trade  [risk]" in out.stdout
