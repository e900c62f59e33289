"""The dashboards against real data: a real Prometheus (Debian's `prometheus`) on
loopback scrapes the demo app (`opentelemetry-instrument python -m otel_trading.demo`)
through the Python prometheus exporter, with the shipped recording/alert rules
loaded, and every Grafana panel query that does not need collector-only metrics
(span metrics, otelcol_*) must return data after Grafana's variables are
substituted. Collector-only queries must at least be valid PromQL.

Why the names checked here are the compose path's names: the same demo run also
exports its metrics over OTLP (to the loopback receiver of tests/otlp_receiver.py);
test_collector_translation_gives_the_python_exporter_names applies the collector
prometheus exporter's naming rules (add_metric_suffixes: true, no namespace; the
flags test_stack_static.py pins in the collector config) to those OTLP metrics and
asserts the result equals what the Python exporter served. So a name the dashboards
query that works here is the name the collector exposes to Prometheus in compose.
Labels: the collector sets job = service.name, instance = service.instance.id and
keeps resource attributes in target_info; here the scrape job is named after the
service (OTEL_SERVICE_NAME), so `job` means the same in both paths.
"""

from __future__ import annotations

import json
import math
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from otlp_receiver import OtlpReceiver
from support import clean_env, require_binary

pytestmark = pytest.mark.slow  # starts a real Prometheus and the demo once for the module

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RULES = sorted((ROOT / "collector-config" / "prometheus" / "rules").glob("*.yml"))
SERVICE = "demo-trading-bot"
COLLECTOR_ONLY = re.compile(r"otelcol_|traces_span_metrics_")
# What Grafana substitutes for its built-in variables (scrape interval here: 1 s).
BUILTINS = {"$__rate_interval": "20s", "$__interval": "2s", "$__range": "1m"}
DEADLINE = 45.0  # seconds for every query to return data (normally ~15 s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, output=lambda: "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}\n{output()}")


class Prom:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params) -> dict:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:  # 400 for bad PromQL carries the error as JSON
            return json.load(e)

    def query(self, expr: str) -> dict:
        return self.get("/api/v1/query", query=expr)

    def series(self, selector: str) -> list[dict]:
        body = self.get("/api/v1/series", **{"match[]": selector})
        assert body["status"] == "success", (selector, body)
        return body["data"]


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def stack():
    """Demo app (Prometheus endpoint + OTLP) scraped every second by a real Prometheus."""
    prometheus = require_binary("prometheus")
    receiver = OtlpReceiver().start()
    app_port, prom_port = free_port(), free_port()
    tmp = tempfile.TemporaryDirectory(prefix="otel-trading-prom-")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in RULES],
        # job named after the service, like job=service.name in the collector path
        "scrape_configs": [{"job_name": SERVICE, "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}]}],
    }
    config_path = Path(tmp.name) / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    env = clean_env(
        OTEL_SERVICE_NAME=SERVICE,
        OTEL_METRICS_EXPORTER="prometheus,otlp",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(app_port),
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
        OTEL_TRACES_SAMPLER="parentbased_trading",
        OTEL_TRACES_SAMPLER_ARG="market_data=0.05",
        OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED="true",
        OTEL_TRADING_SYSTEM_METRICS="true",  # the system-resources panels
        OTEL_TRADING_HEALTH_INTERVAL="0.5",
    )
    demo_log = open(Path(tmp.name) / "demo.log", "w+")  # a file, not a pipe: the demo logs a lot
    demo = subprocess.Popen(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "-m", "otel_trading.demo",
         "--duration", str(DEADLINE + 15), "--rate", "100"],
        env=env, cwd=tmp.name, stdout=demo_log, stderr=subprocess.STDOUT, text=True,
    )
    prom = subprocess.Popen(
        [prometheus, f"--config.file={config_path}", f"--storage.tsdb.path={tmp.name}/data",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    def demo_output() -> str:
        demo_log.flush()
        return (Path(tmp.name) / "demo.log").read_text()[-3000:]

    try:
        wait_port(prom_port, 20)
        wait_port(app_port, 30, demo_output)
        yield {"prom": Prom(prom_port), "app_port": app_port, "receiver": receiver, "demo_output": demo_output}
    finally:
        kill(demo)
        kill(prom)
        demo_log.close()
        receiver.stop()
        tmp.cleanup()


# ----------------------------------------------------------------------------- dashboards
def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "grafana" / "dashboards").glob("*.json"))}


def prometheus_targets(board: dict) -> list[tuple[str, str]]:
    out = []
    for panel in board["panels"]:
        for t in panel.get("targets", []):
            if t.get("datasource", {}).get("uid") == "prometheus":
                out.append((panel["title"], t["expr"]))
    return out


def substitute(expr: str, values: dict[str, str]) -> str:
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    for name, value in values.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$")


def has_data(body: dict) -> bool:
    if body.get("status") != "success":
        return False
    result = body["data"]["result"]
    if body["data"]["resultType"] == "scalar":
        return True
    return any(math.isfinite(float(r["value"][1])) for r in result)


def test_every_dashboard_query_returns_data(stack):
    prom: Prom = stack["prom"]
    pending: dict[tuple[str, str], str] = {}
    syntax_only: dict[tuple[str, str], str] = {}
    all_values = {}
    for name, board in dashboards().items():
        values = {v["name"]: ".*" for v in board["templating"]["list"]}  # Grafana "All" -> allValue
        all_values[name] = values
        for title, expr in prometheus_targets(board):
            query = substitute(expr, values)
            (syntax_only if COLLECTOR_ONLY.search(expr) else pending)[(name, title + " :: " + expr)] = query
    assert len(pending) >= 40, len(pending)

    # Variable queries of the app's metrics must list values (service, strategy, venue).
    variables = {}
    for name, board in dashboards().items():
        for var in board["templating"]["list"]:
            if not COLLECTOR_ONLY.search(var["definition"]):
                variables[(name, var["name"])] = var["definition"]

    deadline = time.monotonic() + DEADLINE
    failures = {}
    while time.monotonic() < deadline:
        failures = {}
        for key, query in pending.items():
            body = prom.query(query)
            assert body["status"] == "success", (key, query, body)
            if not has_data(body):
                failures[key] = query
        for key, definition in variables.items():
            m = LABEL_VALUES.match(substitute(definition, {"service": ".*"}))
            assert m, definition
            if not any(m.group(2) in s for s in prom.series(m.group(1))):
                failures[key] = definition
        if not failures:
            break
        pending = {k: v for k, v in pending.items() if k in failures}
        time.sleep(1.0)
    assert not failures, "no data for:\n" + "\n".join(f"{k}\n    {v}" for k, v in failures.items()) + \
        "\ndemo output:\n" + stack["demo_output"]()

    for key, query in syntax_only.items():
        body = prom.query(query)
        assert body["status"] == "success", (key, query, body)


def test_variable_filters_use_labels_the_metrics_have(stack):
    """`label=~"$var"` on a metric without that label would empty the panel once a
    value is picked; every such (metric, label) pair must exist in the demo's data."""
    prom: Prom = stack["prom"]
    selector = re.compile(r"([a-zA-Z_:][\w:]*)\{([^{}]*)\}")
    matcher = re.compile(r'(\w+)=~"\$(\w+)"')
    pairs = set()
    for board in dashboards().values():
        for _, expr in prometheus_targets(board):
            if COLLECTOR_ONLY.search(expr):
                continue
            for metric, body in selector.findall(expr):
                for label, _var in matcher.findall(body):
                    pairs.add((metric, label))
    assert ("trading_orders_total", "trading_strategy_id") in pairs
    deadline = time.monotonic() + DEADLINE
    missing = pairs
    while missing and time.monotonic() < deadline:
        missing = {(m, l) for m, l in missing if not any(l in s for s in prom.series(m))}
        if missing:
            time.sleep(1.0)
    assert not missing, f"metrics lack the labels their variable filters use: {sorted(missing)}"


def test_alert_rules_evaluate_on_real_data(stack):
    """The shipped rules load and evaluate without errors against the demo's series."""
    prom: Prom = stack["prom"]
    body = prom.get("/api/v1/rules")
    assert body["status"] == "success"
    rules = [r for g in body["data"]["groups"] for r in g["rules"]]
    assert len(rules) >= 15
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = prom.get("/api/v1/rules")
        rules = [r for g in body["data"]["groups"] for r in g["rules"]]
        if all(r.get("lastEvaluation", "").startswith("2") and not r["lastEvaluation"].startswith("0001") for r in rules):
            break
        time.sleep(0.5)
    for r in rules:
        assert r.get("health") == "ok", (r["name"], r.get("lastError"))
    deadline = time.monotonic() + 30  # the recording rule needs a scrape and an evaluation after the demo's first P&L
    recorded = prom.query('job_strategy:trading_pnl:sum{job="%s"}' % SERVICE)
    while not has_data(recorded) and time.monotonic() < deadline:
        time.sleep(0.5)
        recorded = prom.query('job_strategy:trading_pnl:sum{job="%s"}' % SERVICE)
    assert has_data(recorded), recorded


# ----------------------------------------------------------------------------- naming
UNITS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius",
    "Hz": "hertz", "1": "", "%": "percent",
}
PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}


def collector_name(name: str, unit: str, kind: str, monotonic: bool) -> str:
    """The collector prometheus exporter's metric name (add_metric_suffixes: true, no
    namespace): the OTel -> Prometheus rules of the collector's Prometheus translator
    (tokens split on non-alphanumerics; unit mapped and appended unless already a
    token; "/x" -> "per_x"; monotonic sums end in "total"; unit "1" gauges end in "ratio")."""
    tokens = [t for t in re.split(r"[^a-zA-Z0-9]+", name) if t]
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    main, _, per = unit.partition("/")
    main_suffix = UNITS.get(main, re.sub(r"[^a-zA-Z0-9]+", "_", main).strip("_")) if main else ""
    per_suffix = PER_UNITS.get(per, re.sub(r"[^a-zA-Z0-9]+", "_", per).strip("_")) if per else ""
    if main_suffix and main_suffix not in tokens:
        tokens.append(main_suffix)
    if per_suffix and per_suffix not in tokens:
        tokens += ["per", per_suffix]
    if kind == "sum" and monotonic:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if kind == "gauge" and unit == "1" and "ratio" not in tokens:
        tokens.append("ratio")
    out = "_".join(tokens)
    return "_" + out if out[:1].isdigit() else out


def test_collector_translation_gives_the_python_exporter_names(stack):
    receiver: OtlpReceiver = stack["receiver"]
    queried = set()
    for board in dashboards().values():
        for _, expr in prometheus_targets(board):
            queried |= set(re.findall(r"(?<![\w:])((?:trading|otel_sdk)_\w+)\{", expr))
    assert "trading_orders_total" in queried and "otel_sdk_processor_span_processed_total" in queried
    deadline = time.monotonic() + DEADLINE
    while True:  # until the demo has produced every metric the dashboards query (rejections take a while)
        with urllib.request.urlopen(f"http://127.0.0.1:{stack['app_port']}/metrics", timeout=10) as r:
            exposition = r.read().decode()
        served = {line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if line and not line.startswith("#")}
        unknown = queried - served
        if not unknown or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    # every trading/SDK metric name a dashboard queries is served by the Python exporter ...
    assert not unknown, f"dashboards query names the demo does not export: {sorted(unknown)}"
    # ... and is the name the collector's prometheus exporter gives the same OTLP metric
    required = {"trading.orders", "trading.order.ack.duration", "trading.pnl", "trading.pipeline.stage.staleness",
                "trading.order.rejections", "otel.sdk.processor.span.processed", "trading.heartbeat",
                "trading.health.status", "trading.trade.pnl", "trading.exposure", "trading.drawdown.ratio",
                "trading.drawdown.limit.ratio", "trading.market_data.latency", "trading.errors"}
    receiver.wait_for(lambda r: required <= {m.name for m in r.metrics()}, timeout=DEADLINE)
    compared, different = set(), {}
    for metric in receiver.metrics():
        kind = metric.proto.WhichOneof("data")
        data = getattr(metric.proto, kind)
        name = collector_name(metric.name, metric.unit, kind, getattr(data, "is_monotonic", False))
        expected = {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
        if not (metric.name.startswith("trading.") or metric.name.startswith("otel.sdk.")):
            if not expected <= served:  # e.g. unit "1" gauges: collector adds _ratio, Python does not
                print(f"not compared, names differ: {metric.name} ({metric.unit}, {kind}) -> {name}")
            continue
        compared.add(metric.name)
        if not expected <= served:
            different[metric.name] = (sorted(expected), metric.unit, kind)
    assert required <= compared, sorted(compared)
    assert not different, f"collector and Python exporter would name these differently: {different}"
    collector_names = set()
    for metric in receiver.metrics():
        kind = metric.proto.WhichOneof("data")
        data = getattr(metric.proto, kind)
        collector_names.add(collector_name(metric.name, metric.unit, kind, getattr(data, "is_monotonic", False)))
    families = collector_names | {f"{n}_{s}" for n in collector_names for s in ("bucket", "sum", "count")}
    assert queried <= families, f"not produced via the collector path: {sorted(queried - families)}"
