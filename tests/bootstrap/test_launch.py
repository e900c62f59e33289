"""`opentelemetry-instrument python app.py` with otel-trading installed: the real
wrapper, SDK and exporters in a subprocess, into the loopback OTLP receiver."""

import re

import pytest
from support import otlp_env, run_python

APP = """
import logging, structlog
from opentelemetry import trace, metrics
tracer = trace.get_tracer("bot")
orders = metrics.get_meter("bot").create_counter("bot.orders", unit="{order}")
with tracer.start_as_current_span("submit-order", attributes={"order.n": 1}) as span:
    orders.add(1, {"side": "buy"})
    logging.getLogger("bot.stdlib").warning("order sent %s", 7)
    structlog.get_logger("bot.struct").info("order acked", order_id="A1")
print("app ran")
"""


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_unchanged_app_exports_all_three_signals_with_the_distro_resource(otlp, protocol):
    env = otlp_env(
        otlp,
        protocol,
        OTEL_RESOURCE_ATTRIBUTES="service.version=1.2.3,deployment.environment.name=paper,host.name=desk-7",
        OTEL_TRADING_DESK="fx-options",
        OTEL_TRADING_STRATEGY_SET="momentum",
        OTEL_TRADING_VENUE="ibkr",
        OTEL_TRADING_ACCOUNT_ALIAS="paper-1",
    )
    result = run_python(APP, env)
    assert result.returncode == 0, result.stderr
    assert "app ran" in result.stdout
    otlp.wait_for(lambda r: r.spans() and r.logs() and any(m.name == "bot.orders" for m in r.metrics()))
    span = otlp.spans()[0]
    for resource in (span.resource, otlp.logs()[0].resource, otlp.metrics()[0].resource):
        assert resource["service.name"] == "test-bot"
        assert resource["service.version"] == "1.2.3"
        assert resource["deployment.environment.name"] == "paper"
        assert resource["telemetry.distro.name"] == "otel-trading"
        assert re.fullmatch(r"\d+\.\d+\.\d+.*", resource["telemetry.distro.version"])
        assert resource["trading.desk"] == "fx-options"
        assert resource["trading.strategy_set"] == "momentum"
        assert resource["trading.venue"] == "ibkr"
        assert resource["trading.account.alias"] == "paper-1"
        assert resource["host.name"] == "desk-7"  # OTEL_RESOURCE_ATTRIBUTES wins over the host detector
        assert "os.type" in resource and "process.pid" in resource
    assert span.name == "submit-order"
    bodies = {str(log.body) for log in otlp.logs()}
    assert "order sent 7" in bodies and "order acked" in bodies
    for log in otlp.logs():
        assert (log.trace_id, log.span_id) == (span.trace_id, span.span_id)


def test_exporter_none_and_lists(otlp):
    env = otlp_env(otlp, OTEL_TRACES_EXPORTER="otlp,console", OTEL_LOGS_EXPORTER="none", OTEL_METRICS_EXPORTER="none")
    result = run_python(APP, env)
    assert result.returncode == 0, result.stderr
    otlp.wait_for(lambda r: r.spans())
    assert '"name": "submit-order"' in result.stdout  # the console exporter printed the span too
    assert otlp.logs() == [] and not [m for m in otlp.metrics() if m.name == "bot.orders"]


def test_sdk_disabled_exports_nothing_and_the_app_runs(otlp):
    result = run_python(APP, otlp_env(otlp, OTEL_SDK_DISABLED="true"))
    assert result.returncode == 0 and "app ran" in result.stdout
    otlp.wait_for(lambda r: True)
    assert otlp.counts() == {"spans": 0, "logs": 0, "metrics": 0}


def test_sampler_batch_limits_headers_and_compression_are_honoured(otlp):
    app = """
from opentelemetry import trace
tracer = trace.get_tracer("bot")
for i in range(6):
    with tracer.start_as_current_span(f"s{i}", attributes={"first": 1, "a": "x" * 50, "b": 2}):
        pass
"""
    env = otlp_env(
        otlp,
        "http/protobuf",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="1.0",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="2",
        OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT="2",
        OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT="10",
        OTEL_EXPORTER_OTLP_HEADERS="x-desk-token=abc123,x-team=fx",
        OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    result = run_python(app, env)
    assert result.returncode == 0, result.stderr
    otlp.wait_for(lambda r: len(r.spans()) == 6)
    assert all(len(req.resource_spans[0].scope_spans[0].spans) <= 2 for req in otlp.requests["traces"])
    for span in otlp.spans():
        assert span.attributes == {"a": "x" * 10, "b": 2}  # count limit kept the newest two; length limit cut "a"
    assert otlp.headers[0]["x-desk-token"] == "abc123" and otlp.headers[0]["content-encoding"] == "gzip"


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("compression", ["none", "gzip", "deflate"])
def test_every_accepted_compression_exports_on_both_protocols(otlp, protocol, compression):
    """The spec's ``none`` too: the gRPC exporters read only ``gzip`` from the variable and refuse it."""
    env = otlp_env(otlp, protocol, OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=compression, OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    result = run_python("from opentelemetry import trace\ntrace.get_tracer('bot').start_span('compressed').end()", env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    otlp.wait_for(lambda r: [s.name for s in r.spans()] == ["compressed"])
    if protocol != "grpc":
        expected = "" if compression == "none" else compression
        assert otlp.headers[0].get("content-encoding", "") == expected


def test_ratio_sampler_zero_drops_everything(otlp):
    result = run_python(APP, otlp_env(otlp, OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="0"))
    assert result.returncode == 0
    otlp.wait_for(lambda r: r.logs())
    assert otlp.spans() == []


BAD_VALUES = {
    "OTEL_SDK_DISABLED": "perhaps",
    "OTEL_TRACES_EXPORTER": "jaeger_thrift",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "not a url",
    "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "soon",
    "OTEL_EXPORTER_OTLP_CERTIFICATE": "/nope/ca.pem",
    "OTEL_TRACES_SAMPLER": "mostly",
    "OTEL_BSP_MAX_QUEUE_SIZE": "-1",
    "OTEL_BLRP_SCHEDULE_DELAY": "later",
    "OTEL_METRIC_EXPORT_INTERVAL": "0",
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "many",
    "OTEL_RESOURCE_ATTRIBUTES": "oops",
    "OTEL_EXPORTER_PROMETHEUS_PORT": "99999",
    "OTEL_TRADING_CARDINALITY_LIMIT": "zero",
    "OTEL_TRADING_LATENCY_BUCKETS": "fast,slow",
    "OTEL_TRADING_SHUTDOWN_TIMEOUT": "-5",
}


@pytest.mark.slow
def test_every_bad_variable_gets_one_clear_line_and_the_app_still_exports(otlp):
    env = otlp_env(otlp, **BAD_VALUES)
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = BAD_VALUES["OTEL_EXPORTER_OTLP_ENDPOINT"]
    result = run_python(APP, env)
    assert result.returncode == 0, result.stderr
    assert "app ran" in result.stdout
    for name, value in BAD_VALUES.items():
        lines = [l for l in result.stderr.splitlines() if l.startswith(f"otel-trading: {name}=")]
        assert len(lines) == 1, (name, result.stderr)
        assert repr(value) in lines[0] and "accepted" in lines[0] and "using default" in lines[0]
    assert "Traceback" not in result.stderr


def test_configure_validates_before_the_sdk_reads_the_environment(otlp):
    app = """
import otel_trading
from opentelemetry import trace
otel_trading.configure()
with trace.get_tracer("bot").start_as_current_span("configured"):
    pass
"""
    env = otlp_env(otlp, OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT="many", OTEL_RESOURCE_ATTRIBUTES="oops", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    result = run_python(app, env, instrumented=False)
    assert result.returncode == 0, result.stderr  # the SDK raises at import on such values when it reads them first
    assert "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT='many' is invalid" in result.stderr
    assert [s.name for s in otlp.spans()] == ["configured"]


def test_bad_endpoint_falls_back_to_default_and_prometheus_port_conflict_is_survived(otlp):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    env = otlp_env(otlp, OTEL_METRICS_EXPORTER="prometheus,otlp", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1", OTEL_EXPORTER_PROMETHEUS_PORT=str(port))
    result = run_python(APP, env)
    taken.close()
    assert result.returncode == 0 and "app ran" in result.stdout
    assert "metrics exporter 'prometheus' could not start" in result.stderr
    otlp.wait_for(lambda r: any(m.name == "bot.orders" for m in r.metrics()))


def test_prometheus_beside_otlp_serves_metrics(otlp):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = APP + f"""
import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:{port}/metrics").read().decode())
"""
    env = otlp_env(otlp, OTEL_METRICS_EXPORTER="otlp,prometheus", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1", OTEL_EXPORTER_PROMETHEUS_PORT=str(port))
    result = run_python(app, env)
    assert result.returncode == 0, result.stderr
    assert re.search(r'^bot_orders_total\{.*side="buy".*\} 1\.0$', result.stdout, re.M), result.stdout
    assert 'telemetry_distro_name="otel-trading"' in result.stdout  # target_info carries the resource
    otlp.wait_for(lambda r: any(m.name == "bot.orders" for m in r.metrics()))


HISTOGRAMS = """
from opentelemetry import metrics
meter = metrics.get_meter("bot")
latency = meter.create_histogram("bot.ack.duration", unit="s")
counter = meter.create_counter("bot.by.symbol")
latency.record(0.0003)
for i in range(20):
    counter.add(1, {"symbol": f"SYM{i}"})
"""


def test_latency_buckets_and_cardinality_limit_views(otlp):
    env = otlp_env(otlp, OTEL_TRADING_CARDINALITY_LIMIT="5", OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    result = run_python(HISTOGRAMS, env)
    assert result.returncode == 0, result.stderr
    metrics = otlp.wait_for(lambda r: {m.name: m for m in r.metrics() if m.name.startswith("bot.")} if len({m.name for m in r.metrics()} & {"bot.ack.duration", "bot.by.symbol"}) == 2 else None)
    bounds = list(metrics["bot.ack.duration"].points[0].explicit_bounds)
    assert bounds[0] == pytest.approx(1e-05) and bounds[-1] == 10.0 and 0.00025 in bounds
    points = metrics["bot.by.symbol"].points
    assert len(points) == 5
    overflow = [p for p in points if any(a.key == "otel.metric.overflow" for a in p.attributes)]
    assert len(overflow) == 1 and overflow[0].as_int == 16
    assert "reached OTEL_TRADING_CARDINALITY_LIMIT=5" in result.stderr


def test_latency_buckets_are_configurable(otlp):
    env = otlp_env(otlp, OTEL_TRADING_LATENCY_BUCKETS="0.001,0.01,0.1", OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    assert run_python(HISTOGRAMS, env).returncode == 0
    histogram = otlp.wait_for(lambda r: next((m for m in r.metrics() if m.name == "bot.ack.duration"), None))
    assert list(histogram.points[0].explicit_bounds) == [0.001, 0.01, 0.1]


def test_otlp_timeout_is_read_as_milliseconds_as_the_spec_says():
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    from otel_trading import config as settings
    from otel_trading.bootstrap import providers

    s = settings.load({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1400"})
    assert providers._exporter_args(OTLPSpanExporter, "traces", s) == {"timeout": 1.4}
    assert providers._exporter_args(OTLPSpanExporter, "logs", s) == {"timeout": 2.5}


def test_a_small_queue_caps_the_default_export_batch(otlp):
    app = """
from opentelemetry import trace
for i in range(30):
    with trace.get_tracer("bot").start_as_current_span(f"s{i}"):
        pass
"""
    env = otlp_env(otlp, OTEL_BSP_MAX_QUEUE_SIZE="10", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", OTEL_BSP_SCHEDULE_DELAY="60000")
    result = run_python(app, env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert otlp.spans(), result.stderr  # the default batch (2048) did not make the SDK refuse a queue of 10
    assert max(len(req.resource_spans[0].scope_spans[0].spans) for req in otlp.requests["traces"]) <= 10
