"""Through the distro: drops above what the export path carries are visible as a
metric and as a warning that gives the count; the app is not disturbed."""

from __future__ import annotations

import re

import pytest
from support import otlp_env, run_python

APP = """
from opentelemetry import trace
tracer = trace.get_tracer("bot")
for i in range(3000):
    with tracer.start_as_current_span("tick", attributes={"i": i}):
        pass
print("app done", flush=True)
"""


@pytest.mark.slow
def test_drops_are_counted_in_a_metric_and_warned_with_the_count(otlp):
    otlp.delay = 0.3  # a collector slower than the app
    env = {
        **otlp_env(otlp),
        "OTEL_BSP_MAX_QUEUE_SIZE": "200",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100",
        "OTEL_TRADING_SHUTDOWN_TIMEOUT": "2",
        "OTEL_TRADING_LOG_FORMAT": "console",
        "OTEL_TRADING_SPOOL": "false",  # the in-memory queue alone (the spool would keep what it drops: tests/reliability/test_outage.py)
    }
    result = run_python(APP, env, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "app done" in result.stdout
    output = result.stdout + result.stderr
    warned = [int(n) for n in re.findall(r"otel-trading: dropped (\d+) spans in the last", output)]
    assert warned, output[-3000:]
    assert "OTEL_BSP_MAX_QUEUE_SIZE=200" in output
    assert "Traceback" not in output

    otlp.delay = 0

    def queue_full(receiver) -> int:
        total = 0
        for metric in receiver.metrics():
            if metric.name == "otel_trading.export.dropped":
                for point in metric.points:
                    attrs = {kv.key: kv.value.string_value for kv in point.attributes}
                    if attrs == {"signal": "spans", "error.type": "queue_full"}:
                        total = max(total, point.as_int)  # cumulative counter: the last export has it all
        return total

    dropped_metric = otlp.wait_for(queue_full, timeout=10)
    delivered = len(otlp.spans())
    assert 3000 - 300 <= dropped_metric + delivered <= 3000 + 3  # all but what the exit bound left queued is accounted
    assert abs(sum(warned) - dropped_metric) <= 3  # the warnings add up to what the metric counts
    # the SDK's per-span self-metrics are opt-in: by default no span pays for them
    assert not [m.name for m in otlp.metrics() if m.name.startswith("otel.sdk.")]
