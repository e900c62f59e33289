"""Secrets never leave the process, on any path (issue 11, section 2).

An app that knows nothing of otel_trading, launched by ``opentelemetry-instrument``, puts one
secret, spelled as hypothesis picks, in every field of every signal it makes: span name,
attributes, event name and attributes, the status message of an exception escaping a span,
structlog keys / values / bytes / (key, value) pairs, metric data-point attributes (OTLP, local
files, a Prometheus scrape), stdlib messages rendered by the app's own
``logging.basicConfig(format=...)``, exception tracebacks, a record made through the OTel Logs
API, resource attributes, the traceback Python prints for an exception that ends a thread
or is raised in ``__del__``. The secret must appear nowhere: stdout, stderr, what the collector
receives (OTLP bytes), the local exporters' files, the channel log files, ``otel-trading traces``.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import BIN, otlp_env, run_python

SPELLINGS = [
    "password={t}",
    "PASSWORD = {t}",
    "api_key: {t}",
    "client-secret={t}",
    "Authorization: Bearer {t}",
    "https://bob:{t}@db.example.com/x",
    "postgres://svc:{t}@10.0.0.5:5432/orders",
    "GET /v1/orders?symbol=AAPL&signature={t} HTTP/1.1",
    "https://bucket.s3.amazonaws.com/k?X-Amz-Credential={t}&X-Amz-Signature={t}",
    "/feed?sig={t}",
    "/quotes?key={t}&symbol=MSFT",
    "access_token={t}",
    "8=FIX.4.4\x0135=A\x01554={t}\x0110=128",
    "8=FIX.4.4|35=A|925={t}|10=001",
    "session_key={t}",
    "broker.pass={t}",
    "{t}@example.com",
]
SECRET_KEYS = ["password", "broker.pass", "session_key", "apiKey", "X-Api-Key", "client_secret", "authToken", "db_password", "pinCode"]

APP = r"""
import logging, sys
import structlog
from opentelemetry import trace
from opentelemetry._logs import LogRecord, get_logger

spelling, key, token = sys.argv[1], sys.argv[2], sys.argv[3]
logging.basicConfig(format="APPFMT %(levelname)s %(name)s %(message)s", level=logging.INFO)  # the app's own format (stderr)
tracer = trace.get_tracer("leak")
log = structlog.get_logger("app")
std = logging.getLogger("app.std")
try:
    with tracer.start_as_current_span("order " + spelling, attributes={"http.url": spelling, "url.full": spelling, "db.connection_string": spelling, key: token}) as span:
        span.add_event("event " + spelling, {"detail": spelling, key: token})
        log.info("structlog " + spelling, detail=spelling, raw=spelling.encode(), pairs=[(key, token)], nested={"deep": [spelling]}, **{key: token})
        std.info("stdlib %s", spelling)
        std.warning("stdlib " + spelling, extra={key: token})
        try:
            raise ValueError(spelling)
        except ValueError:
            std.exception("caught")
            log.exception("caught structlog")
        get_logger("api").emit(LogRecord(body="api " + spelling, attributes={key: token, "detail": spelling}))
        raise RuntimeError(spelling)
except RuntimeError:
    pass
from opentelemetry import metrics
import os, urllib.request
metrics.get_meter("leak").create_counter("leak.orders").add(1, {key: token, "detail": spelling})
print(urllib.request.urlopen(f"http://127.0.0.1:{os.environ['LEAK_PROMETHEUS_PORT']}/metrics").read().decode())  # a scrape
import threading
def boom():
    raise ValueError("thread " + spelling)
worker = threading.Thread(target=boom, name="worker")
worker.start()
worker.join()
class Leaky:
    def __del__(self):
        raise ValueError("del " + spelling)
Leaky()
print("APP-OK", flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _everything(otlp, tmp: Path, result, data: Path) -> bytes:
    out = [result.stdout.encode(), result.stderr.encode()]
    for signal, requests in otlp.requests.items():
        out += [request.SerializeToString() for request in requests]
    out += [p.read_bytes() for p in tmp.rglob("*") if p.is_file()]
    viewer = subprocess.run([str(BIN / "otel-trading"), "traces", "--all", "--dir", str(data)], capture_output=True, timeout=60)
    return b"\n".join([*out, viewer.stdout, viewer.stderr])


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(SPELLINGS),
    st.sampled_from(SECRET_KEYS),
    st.text("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=14, max_size=20),
)
@pytest.mark.slow
def test_a_secret_in_every_field_of_every_signal_leaves_nowhere(otlp, spelling, key, tail):
    token = "Zq" + tail
    otlp.clear()
    with tempfile.TemporaryDirectory() as cwd:
        tmp = Path(cwd)
        env = otlp_env(
            otlp,
            OTEL_TRACES_EXPORTER="otlp,local",
            OTEL_LOGS_EXPORTER="otlp,local",
            OTEL_TRADING_LOCAL_DIR=str(tmp / "data"),
            OTEL_TRADING_LOG_FILES="app=info",
            OTEL_TRADING_LOG_DIR=str(tmp / "logs"),
            OTEL_RESOURCE_ATTRIBUTES=f"deployment.environment.name=test,{key}={token}",
            OTEL_METRICS_EXPORTER="otlp,local,prometheus",
            OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
            OTEL_EXPORTER_PROMETHEUS_PORT=str(port := free_port()),
            LEAK_PROMETHEUS_PORT=str(port),
        )
        result = run_python(APP, env, args=(spelling.format(t=token), key, token), cwd=cwd)
        assert result.returncode == 0 and "APP-OK" in result.stdout, result.stderr[-2000:]
        otlp.wait_for(lambda r: any(s.name.startswith("order") for s in r.spans()) and len(r.logs()) >= 6 and any(m.name == "leak.orders" for m in r.metrics()), timeout=15)
        assert "APPFMT" in result.stderr and "leak_orders_total{" in result.stdout
        assert "Exception in thread worker:" in result.stderr and "Exception ignored in" in result.stderr and (tmp / "data").is_dir() and (tmp / "logs" / "app.log").is_file()
        everything = _everything(otlp, tmp, result, tmp / "data")
    assert token.encode() not in everything, (spelling, key)
