"""``OTEL_CONFIG_FILE``: the SDK builds the providers from the file; otel-trading's sampler, redaction
(spans, logs, metric attributes), log correlation and loss counters still apply, and the app is told in one line what is off."""

from __future__ import annotations

import pytest
from support import clean_env, run_python

APP = """
import structlog
from opentelemetry import trace
import otel_trading
tracer = trace.get_tracer("bot")
for _ in range(20):
    with otel_trading.market_data_span("tick", symbol="AAPL", feed="itch"):
        pass
with otel_trading.order_span("order.submit", symbol="AAPL", side="buy", attributes={"api_key": "sk-live-0123456789abcdef"}) as span:
    structlog.get_logger("bot").info("order sent", password="hunter2")
from opentelemetry import metrics
metrics.get_meter("bot").create_counter("bot.orders").add(1, {"api_key": "sk-live-0123456789abcdef", "side": "buy"})
print("app ran")
"""

CONFIG = """
file_format: "1.0"
resource:
  attributes:
    - name: service.name
      value: file-bot
tracer_provider:
  sampler:
    parentbased_trading:
  processors:
    - batch:
        schedule_delay: 100
        exporter:
          otlp_grpc:
            endpoint: {endpoint}
meter_provider:
  readers:
    - periodic:
        interval: 200
        exporter:
          otlp_grpc:
            endpoint: {endpoint}
logger_provider:
  processors:
    - batch:
        schedule_delay: 100
        exporter:
          otlp_grpc:
            endpoint: {endpoint}
"""


@pytest.mark.slow
def test_file_config_keeps_trading_sampler_redaction_and_log_correlation(otlp, tmp_path):
    config = tmp_path / "otel.yaml"
    config.write_text(CONFIG.format(endpoint=otlp.grpc_endpoint))
    env = clean_env(OTEL_CONFIG_FILE=str(config), OTEL_TRACES_SAMPLER_ARG="market_data=0")
    result = run_python(APP, env)
    assert result.returncode == 0, result.stderr
    assert "app ran" in result.stdout
    otlp.wait_for(lambda r: r.spans() and r.logs() and {"otel_trading.export.dropped", "bot.orders"} <= {m.name for m in r.metrics()})
    spans = otlp.spans()
    assert [s.name for s in spans] == ["order.submit"]  # the trading sampler named in the file, rules from the env
    assert spans[0].resource["service.name"] == "file-bot"  # the file's resource
    assert spans[0].attributes["api_key"] != "sk-live-0123456789abcdef"  # redacted before the file's exporter saw it
    (log,) = [entry for entry in otlp.logs() if str(entry.body) == "order sent"]
    assert (log.trace_id, log.span_id) == (spans[0].trace_id, spans[0].span_id)  # correlated
    assert "hunter2" not in str(log.attributes) and "hunter2" not in result.stdout
    (orders,) = [m for m in otlp.metrics() if m.name == "bot.orders"][:1]
    assert {kv.key: kv.value.string_value for kv in orders.points[0].attributes} == {"api_key": "***", "side": "buy"}  # the file's reader too
    notes = [line for line in result.stderr.splitlines() if "OTEL_CONFIG_FILE" in line]
    assert len(notes) == 1 and notes[0].startswith("otel-trading: ") and "off: " in notes[0], result.stderr


def test_missing_config_file_is_reported_and_env_configuration_used(otlp, tmp_path):
    env = clean_env(OTEL_CONFIG_FILE=str(tmp_path / "absent.yaml"), OTEL_EXPORTER_OTLP_ENDPOINT=otlp.grpc_endpoint,
                    OTEL_BSP_SCHEDULE_DELAY="100")
    result = run_python(APP, env)
    assert result.returncode == 0, result.stderr
    assert "OTEL_CONFIG_FILE=" in result.stderr and "readable file" in result.stderr
    otlp.wait_for(lambda r: r.spans())
    assert "order.submit" in {s.name for s in otlp.spans()}
