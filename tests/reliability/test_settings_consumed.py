"""Any value of any setting, consumed by the SDK for real, never stops the app or its telemetry
(issue 11, section 1).

Each example sets several settings at once to values hypothesis draws (bounds, just past them,
64-bit edges, non-finite numbers, empty items, unknown names, junk) and launches an app that
knows nothing of otel_trading under ``opentelemetry-instrument`` against the loopback receiver.
The app must run, its span, log records and metric must arrive, and stderr may only hold
``otel-trading: ...`` lines, one per problem, each naming its variable. Settings that legitimately
send telemetry elsewhere or switch it off (exporters, endpoints, protocol, TLS files, sampler,
OTEL_SDK_DISABLED) are left out: what they do is tested in tests/bootstrap.
"""

from __future__ import annotations

import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import otlp_env, run_python

from otel_trading.config import SETTINGS

_REDIRECTING = ("_exporter", "otlp_endpoint", "otlp_traces_endpoint", "otlp_metrics_endpoint", "otlp_logs_endpoint", "protocol", "certificate", "client_key", "traces_sampler", "sdk_disabled")
CONSUMED = [s.env for s in SETTINGS if not any(r in s.name for r in _REDIRECTING)]

VALUES = st.one_of(
    st.sampled_from(
        [
            "", " ", ",", "0", "1", "-1", "99", "100", "999", "1000", "1001", "3600000", "3600001", "86400000", "600001",
            str(2**63 - 1), str(2**63), str(10**30), "1e3", "0.05", "nan", "inf", "-inf", "1e309",
            "true", "false", "none", "tracecontext,,baggage", "tracecontext,nope", "otel,host", "host,,os", "nope",
            "1,2,3", "3,2,1", "1,inf", "0.001,0.01,nan", "gzip", "deflate", "a=b", "k=", "=v", "x-api-key=s3cr3t-value",
            "trading=info", "trading=nope", "mod:func", "email,phone", "json", "console", "critical",
        ]
    ),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30),  # what an env can hold
)

APP = """
import logging, structlog
from opentelemetry import metrics, trace
with trace.get_tracer("consumed").start_as_current_span("consumed-span"):
    structlog.get_logger("app").critical("consumed-structlog")
    logging.getLogger("app.std").critical("consumed-stdlib")
metrics.get_meter("consumed").create_counter("consumed.count").add(1)
print("APP-OK", flush=True)
"""


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(CONSUMED), VALUES, min_size=1, max_size=6))
def test_any_values_of_consumed_settings_keep_the_app_and_its_telemetry(otlp, chosen):
    otlp.clear()
    with tempfile.TemporaryDirectory() as cwd:
        result = run_python(APP, otlp_env(otlp, **chosen), cwd=cwd, timeout=60)
    assert result.returncode == 0 and "APP-OK" in result.stdout, (chosen, result.stderr[-2000:])
    for line in result.stderr.splitlines():  # one line per problem, never a traceback, never the SDK's raw output
        assert line.startswith("otel-trading: "), (chosen, result.stderr[-2000:])
        assert len(line) < 600, line
    for env, value in chosen.items():
        assert "s3cr3t-value" not in result.stderr  # a secret is never echoed back
    otlp.wait_for(lambda r: any(s.name == "consumed-span" for s in r.spans()), timeout=15)
    otlp.wait_for(lambda r: {"consumed-structlog", "consumed-stdlib"} <= {x.body for x in r.logs()}, timeout=15)
    otlp.wait_for(lambda r: any(m.name == "consumed.count" for m in r.metrics()), timeout=15)
