"""Static checks of the bundled stack (no Docker engine runs here).

docker-compose.yml against the compose-spec schema, pinned images, no default
credentials, loopback ports, memory limits, health checks; the collector configs
(every pipeline references defined components of the pinned release, memory_limiter
first, the Prometheus naming flags that make the compose path produce the same
metric names as a direct scrape, identical blocks in single-node and scale-out);
Grafana provisioning (datasource uids the dashboards use, exemplar / trace-to-logs /
trace-to-metrics links, escaped template variables) and the generated dashboards.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from support import require_binary

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CC = ROOT / "collector-config"
GRAFANA = ROOT / "grafana"
BIN = Path(sys.executable).parent

COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib:0.148.0"
COLLECTOR_CONFIGS = ["otel-collector.yaml", "otel-agent.yaml", "otel-gateway.yaml"]

# Component types registered by otelcol-contrib 0.148.0 that these configs may use.
# (0.144.0 renamed the OTLP exporters to otlp_grpc / otlp_http; the old names are
# deprecated aliases, so they are not accepted here.)
KNOWN_TYPES = {
    "receivers": {"otlp", "prometheus", "hostmetrics"},
    "processors": {"memory_limiter", "batch", "redaction", "tail_sampling", "resource", "attributes", "transform", "filter"},
    "exporters": {"otlp_grpc", "otlp_http", "prometheus", "prometheusremotewrite", "loadbalancing", "debug"},
    "connectors": {"spanmetrics", "forward", "routing"},
    "extensions": {"health_check", "pprof", "zpages"},
}
SIGNALS = {"traces", "metrics", "logs"}


def load(path: Path):
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return load(COMPOSE)


def collector(name: str) -> dict:
    return load(CC / name)


# ----------------------------------------------------------------------------- compose
def test_compose_validates_against_compose_spec():
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_has_the_stack_services(compose):
    services = compose["services"]
    for name in ["otel-collector", "jaeger", "prometheus", "grafana", "loki", "alertmanager", "demo"]:
        assert name in services, name
    assert services["otel-collector"]["image"] == COLLECTOR_IMAGE
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:2.")
    demo = services["demo"]
    assert "build" in demo
    assert demo["command"][:4] == ["opentelemetry-instrument", "python", "-m", "otel_trading.demo"]
    assert demo["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"


def test_every_image_is_pinned(compose):
    for name, svc in compose["services"].items():
        image = svc.get("image")
        assert image, f"{name} has no image"
        if "build" in svc:  # built from this repo: a local tag, never pulled
            assert image.endswith(":local"), name
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and tag and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"
    dockerfile = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert froms
    for image in froms:
        tag = image.partition(":")[2]
        assert re.match(r"\d+\.\d+\.\d+", tag), f"Dockerfile base {image} is not pinned"


OTLP_PORTS = {"4317", "4318", "14317", "14318"}


def test_ports_bind_to_loopback_by_default(compose):
    """OTLP receivers and UIs/APIs have separate bind addresses, both loopback by default."""
    seen = set()
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            m = re.fullmatch(r"\$\{STACK_(OTLP|UI)_BIND_ADDRESS:-127\.0\.0\.1\}:(\d+):\d+", str(port))
            assert m, f"{name}: {port}"
            assert (m.group(1) == "OTLP") == (m.group(2) in OTLP_PORTS), f"{name}: {port} uses the wrong bind address"
            seen.add(m.group(1))
    assert seen == {"OTLP", "UI"}
    env = (ROOT / ".env.example").read_text()
    assert re.search(r"^STACK_OTLP_BIND_ADDRESS=127\.0\.0\.1$", env, re.M)
    assert re.search(r"^STACK_UI_BIND_ADDRESS=127\.0\.0\.1$", env, re.M)


def test_grafana_anonymous_access_is_opt_in(compose):
    env = compose["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "${GF_AUTH_ANONYMOUS_ENABLED:-false}"
    assert re.search(r"^GF_AUTH_ANONYMOUS_ENABLED=false$", (ROOT / ".env.example").read_text(), re.M)


def test_loki_health_check_uses_the_binary_not_a_shell_tool(compose):
    # grafana/loki is distroless: no shell, no wget; `loki -health` probes /ready itself.
    assert compose["services"]["loki"]["healthcheck"]["test"] == ["CMD", "/usr/bin/loki", "-health"]


def test_alertmanager_renders_its_config_from_env(compose):
    am = compose["services"]["alertmanager"]
    assert am["entrypoint"][:2] == ["/bin/sh", "/etc/alertmanager/render.sh"]
    assert am["command"][0] == "/bin/alertmanager" and f"--config.file={am['entrypoint'][2]}" in am["command"]
    assert "./secrets:/etc/alertmanager/secrets:ro" in am["volumes"]
    assert (ROOT / "secrets" / ".gitignore").read_text().split() == ["*", "!.gitignore"]


def test_memory_limits_and_health_checks(compose):
    # Images without a shell/HTTP client (collector-contrib is distroless) have no health
    # check; every other service has one (the demo probes its own /readyz).
    no_healthcheck = {"otel-collector", "otel-agent", "otel-gateway-1", "otel-gateway-2", "otel-replay"}
    for name, svc in compose["services"].items():
        memory = svc.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory") or svc.get("mem_limit")
        assert memory, f"{name} has no memory limit"
        if name not in no_healthcheck:
            assert "healthcheck" in svc and svc["healthcheck"]["test"], f"{name} has no health check"


def test_grafana_password_required_and_no_credentials_committed(compose):
    env = compose["services"]["grafana"]["environment"]
    assert re.fullmatch(r"\$\{GF_SECURITY_ADMIN_PASSWORD:\?[^}]+\}", env["GF_SECURITY_ADMIN_PASSWORD"])
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^GF_SECURITY_ADMIN_PASSWORD=$", example, re.M), ".env.example must leave the password empty"
    secretish = re.compile(r"(?i)(password|passwd|secret|api[_-]?key|token)[\"']?\s*[:=]\s*[\"']?(?!\$\{)([^\s\"'#]+)")
    files = [COMPOSE, ROOT / ".env.example", ROOT / "Dockerfile", *CC.rglob("*.y*ml"), *GRAFANA.rglob("*.y*ml")]
    for path in files:
        for line in path.read_text().splitlines():
            if line.lstrip().startswith("#"):
                continue
            m = secretish.search(re.sub(r"\$\{[^}]*\}", "", line))
            assert not m, f"{path.relative_to(ROOT)}: credential-looking value: {line.strip()}"
    for path in [*GRAFANA.rglob("*.json"), COMPOSE]:
        assert "admin:admin" not in path.read_text() and "admin/admin" not in path.read_text()


def test_bind_mounted_files_exist(compose):
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"


def test_scale_out_profile_runs_an_agent_and_two_gateways(compose):
    services = compose["services"]
    for name in ["otel-agent", "otel-gateway-1", "otel-gateway-2"]:
        assert services[name]["profiles"] == ["scale-out"]
        assert services[name]["image"] == COLLECTOR_IMAGE
    assert services["otel-agent"]["volumes"][0].startswith("./collector-config/otel-agent.yaml:")
    assert services["otel-gateway-2"]["volumes"][0].startswith("./collector-config/otel-gateway.yaml:")
    agent = collector("otel-agent.yaml")
    lb = agent["exporters"]["loadbalancing"]
    assert lb["routing_key"] == "traceID"
    targets = {h.split(":")[0] for h in lb["resolver"]["static"]["hostnames"]}
    assert targets == {"otel-gateway-1", "otel-gateway-2"}


# ----------------------------------------------------------------------------- collector
def component_type(component_id: str) -> str:
    return component_id.split("/")[0]


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_collector_pipelines_reference_defined_components(name):
    cfg = collector(name)
    service = cfg["service"]
    defined = {kind: set((cfg.get(kind) or {}).keys()) for kind in KNOWN_TYPES}
    for kind, ids in defined.items():
        for cid in ids:
            assert component_type(cid) in KNOWN_TYPES[kind], f"{name}: unknown {kind} type {cid!r} for 0.148.0"
    for ext in service.get("extensions", []):
        assert ext in defined["extensions"], f"{name}: extension {ext} not defined"
    assert "health_check" in service["extensions"]
    used = {kind: set() for kind in KNOWN_TYPES}
    connectors_as_exporter, connectors_as_receiver = set(), set()
    for pname, pipe in service["pipelines"].items():
        assert pname.split("/")[0] in SIGNALS, f"{name}: pipeline {pname}"
        assert pipe.get("receivers") and pipe.get("exporters"), f"{name}: {pname} needs receivers and exporters"
        for r in pipe["receivers"]:
            assert r in defined["receivers"] | defined["connectors"], f"{name}: {pname} receiver {r} undefined"
            (connectors_as_receiver if r in defined["connectors"] else used["receivers"]).add(r)
        for p in pipe.get("processors", []):
            assert p in defined["processors"], f"{name}: {pname} processor {p} undefined"
            used["processors"].add(p)
        for e in pipe["exporters"]:
            assert e in defined["exporters"] | defined["connectors"], f"{name}: {pname} exporter {e} undefined"
            (connectors_as_exporter if e in defined["connectors"] else used["exporters"]).add(e)
        # memory_limiter first in every pipeline
        assert pipe.get("processors", [None])[0] == "memory_limiter", f"{name}: {pname} must start with memory_limiter"
    for kind in ["receivers", "processors", "exporters"]:
        assert used[kind] == defined[kind], f"{name}: unused {kind}: {defined[kind] - used[kind]}"
    assert connectors_as_exporter == connectors_as_receiver == defined["connectors"]
    # own metrics and health check reachable from other containers
    reader = service["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert (reader["host"], reader["port"]) == ("0.0.0.0", 8888)
    assert cfg["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    for proto in ["grpc", "http"]:
        assert cfg["receivers"]["otlp"]["protocols"][proto]["endpoint"].startswith("0.0.0.0:")


def test_single_node_collector_pipelines():
    cfg = collector("otel-collector.yaml")
    p = cfg["service"]["pipelines"]
    assert p["traces"]["processors"] == ["memory_limiter", "redaction", "tail_sampling", "batch"]
    assert p["traces"]["exporters"] == ["otlp_grpc/jaeger"]
    assert "spanmetrics" in p["traces/spanmetrics"]["exporters"]
    assert p["metrics"]["receivers"] == ["otlp", "spanmetrics"] and p["metrics"]["exporters"] == ["prometheus"]
    assert p["logs"]["exporters"] == ["otlp_http/loki"]
    assert cfg["exporters"]["otlp_grpc/jaeger"]["endpoint"] == "jaeger:4317"
    assert cfg["exporters"]["otlp_http/loki"]["endpoint"] == "http://loki:3100/otlp"
    for pipe in p.values():  # redaction before anything leaves, batch last
        procs = pipe.get("processors", [])
        if "batch" in procs:
            assert procs[-1] == "batch"


def test_tail_sampling_policies():
    for name in ["otel-collector.yaml", "otel-gateway.yaml"]:
        policies = {p["type"]: p for p in collector(name)["processors"]["tail_sampling"]["policies"]}
        assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
        assert "threshold_ms" in policies["latency"]["latency"]
        kinds = policies["string_attribute"]["string_attribute"]
        assert kinds["key"] == "trading.span.kind" and {"order", "execution"} <= set(kinds["values"])
        assert "sampling_percentage" in policies["probabilistic"]["probabilistic"]


def test_redaction_masks_secret_looking_attributes():
    red = collector("otel-collector.yaml")["processors"]["redaction"]
    assert red["allow_all_keys"] is True
    for pattern in red["blocked_key_patterns"] + red["blocked_values"]:  # Go's RE2: no lookaround, no backrefs
        assert not re.search(r"\(\?<?[=!]|\\[1-9]", pattern), pattern
    keys = [re.compile(p.replace("(?i)", ""), re.I) for p in red["blocked_key_patterns"]]
    for key in ["db.password", "api_key", "http.request.header.authorization", "exchange.secret", "auth_token", "x-api-key"]:
        assert any(k.fullmatch(key) for k in keys), key
    for key in ["trading.venue", "trading.order.id", "trading.account.alias", "service.name"]:
        assert not any(k.fullmatch(key) for k in keys), key
    values = [re.compile(v.replace("(?i)", ""), re.I) for v in red["blocked_values"]]
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    for secret in [jwt, "Bearer abcdefghijklmnopqrstuvwxyz012345", "AKIAIOSFODNN7EXAMPLE"]:
        assert any(v.search(secret) for v in values), secret
    assert not any(v.search("BTC-USD limit buy 0.5 @ 64000.5 order 1234") for v in values)


def test_same_metric_translation_in_single_node_and_scale_out():
    single, agent = collector("otel-collector.yaml"), collector("otel-agent.yaml")
    prom = single["exporters"]["prometheus"]
    # The flags that make the collector name metrics exactly as the Python prometheus
    # exporter does: unit + _total suffixes, no namespace prefix, no resource labels
    # (job/instance come from service.name/service.instance.id, the rest is target_info).
    assert prom["add_metric_suffixes"] is True
    assert "namespace" not in prom and "translation_strategy" not in prom
    assert prom["resource_to_telemetry_conversion"]["enabled"] is False
    assert prom["enable_open_metrics"] is True  # exemplars
    assert agent["exporters"]["prometheus"] == prom
    assert agent["connectors"]["spanmetrics"] == single["connectors"]["spanmetrics"]
    sm = single["connectors"]["spanmetrics"]
    assert sm["namespace"] == "traces.span.metrics" and sm["histogram"]["unit"] == "ms"
    assert sm["exemplars"]["enabled"] is True
    gateway = collector("otel-gateway.yaml")
    assert gateway["processors"]["tail_sampling"] == single["processors"]["tail_sampling"]


def test_prometheus_scrapes_the_collector_with_honor_labels():
    prom = load(CC / "prometheus" / "prometheus.yml")
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["otel-collector-exported"]["honor_labels"] is True
    assert jobs["otel-collector-exported"]["static_configs"][0]["targets"] == ["otel-collector:8889"]
    assert jobs["otel-agent-exported"]["honor_labels"] is True
    assert jobs["otel-collector"]["static_configs"][0]["targets"] == ["otel-collector:8888"]


# ----------------------------------------------------------------------------- grafana
@pytest.fixture(scope="module")
def datasources() -> dict:
    ds = load(GRAFANA / "provisioning" / "datasources" / "datasources.yaml")["datasources"]
    return {d["uid"]: d for d in ds}


def walk(node, found: list):
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            found.append(node["datasource"])
        for v in node.values():
            walk(v, found)
    elif isinstance(node, list):
        for v in node:
            walk(v, found)
    return found


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def test_datasources_and_links(datasources):
    assert set(datasources) == {"prometheus", "jaeger", "loki", "alertmanager"}
    prom, jaeger, loki = datasources["prometheus"], datasources["jaeger"], datasources["loki"]
    assert prom["url"] == "http://prometheus:9090" and prom["isDefault"] is True
    assert prom["jsonData"]["exemplarTraceIdDestinations"][0] == {
        "name": "trace_id", "datasourceUid": "jaeger", "urlDisplayLabel": "Open trace in Jaeger"}
    assert jaeger["url"] == "http://jaeger:16686"
    assert jaeger["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert jaeger["jsonData"]["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert loki["url"] == "http://loki:3100"
    assert loki["jsonData"]["derivedFields"][0]["datasourceUid"] == "jaeger"


def test_grafana_provisioning_escapes_template_variables():
    # Grafana expands $VAR/${VAR} from the environment in provisioning files: every
    # Grafana template variable must be written $$ so it survives.
    text = (GRAFANA / "provisioning" / "datasources" / "datasources.yaml").read_text()
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        single = re.findall(r"(?<!\$)\$(?!\$)", line.replace("$$", ""))
        assert not single, f"unescaped $ in datasources.yaml: {line.strip()}"


def test_dashboard_provider_matches_compose_mount(compose):
    provider = load(GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml")["providers"][0]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_dashboards_use_provisioned_datasource_uids(datasources):
    boards = dashboards()
    assert len(boards) == 6
    uids = set()
    for name, board in boards.items():
        assert board["uid"] not in uids
        uids.add(board["uid"])
        refs = walk(board, [])
        assert refs, name
        for ref in refs:
            assert ref["uid"] in datasources, f"{name}: datasource uid {ref['uid']}"
            assert ref["type"] == datasources[ref["uid"]]["type"], f"{name}: {ref}"
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"


def test_dashboards_are_generated_from_the_generator():
    spec = importlib.util.spec_from_file_location("generate_dashboards", GRAFANA / "generate_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered = module.render()
    on_disk = {p.name: p.read_text() for p in (GRAFANA / "dashboards").glob("*.json")}
    assert rendered == on_disk, "run: python grafana/generate_dashboards.py"


def test_dashboard_template_variables_are_defined_and_used():
    for name, board in dashboards().items():
        variables = {v["name"] for v in board["templating"]["list"]}
        text = json.dumps(board["panels"])
        for var in re.findall(r"\$(\w+)", text):
            if var.startswith("__"):
                continue
            assert var in variables, f"{name}: ${var} is not defined"
        for var in variables:
            assert f"${var}" in text or f"${{{var}" in text, f"{name}: ${var} is never used"
    for name in ["trading-overview.json", "order-latency.json"]:
        assert {"service", "strategy", "venue"} <= {v["name"] for v in dashboards()[name]["templating"]["list"]}


def test_dashboards_answer_the_questions_in_the_issue():
    text = {n: json.dumps(b) for n, b in dashboards().items()}
    expect = {
        "trading-overview.json": ["trading_orders_total", "trading_fills_total", "trading_order_rejections_total",
                                  "trading_reject_reason", "trading_pnl", "trading_positions_open"],
        "order-latency.json": ["trading_order_ack_duration_seconds_bucket", "trading_order_fill_duration_seconds_bucket",
                               "trading_tick_to_trade_duration_seconds_bucket", "trading_order_slippage_bucket"],
        "pipeline-health.json": ["trading_pipeline_stage_processed_total", "trading_pipeline_stage_lag_seconds_bucket",
                                 "trading_pipeline_stage_staleness_seconds"],
        "service-red.json": ["traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds_bucket",
                             "STATUS_CODE_ERROR"],
        "bot-health.json": ["trading_heartbeat_seconds", "trading_health_status", "job_strategy:trading_trades_win:ratio_rate1h",
                            "trading_trade_pnl_bucket", "trading_exposure", "trading_notional", "trading_portfolio_value",
                            "trading_drawdown_ratio", "trading_drawdown_limit_ratio", "trading_market_data_latency_seconds_bucket",
                            "trading_errors_total", "system_cpu_utilization", "system_memory_usage_bytes",
                            "system_disk_io_bytes_total", "process_memory_usage_bytes", '"alertlist"'],
        "telemetry-pipeline.json": ["otelcol_receiver_accepted_spans_total", "otelcol_receiver_refused_",
                                    "otelcol_exporter_send_failed_", "otel_sdk_processor_span_processed_total",
                                    "otelcol_processor_tail_sampling_", "trading_sampler_decisions_total"],
    }
    for name, needles in expect.items():
        for needle in needles:
            assert needle in text[name], f"{name} lacks {needle}"


def test_env_example_documents_every_compose_variable():
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    documented = set(re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used == documented, f"undocumented: {used - documented}, unused: {documented - used}"


def test_prometheus_flags_exist_in_prometheus_3(compose):
    # console templates/libraries were removed in Prometheus 3.0; the flag would stop it.
    flags = compose["services"]["prometheus"]["command"]
    assert compose["services"]["prometheus"]["image"].startswith("prom/prometheus:v3.")
    assert not [f for f in flags if f.startswith("--web.console")]
    assert "--enable-feature=exemplar-storage" in flags


ORDER_FLOW_HISTOGRAMS = ("trading_order_ack_duration_seconds", "trading_order_fill_duration_seconds", "trading_tick_to_trade_duration_seconds")


def test_exemplars_land_on_kept_traces_or_the_panel_says_why_not():
    """Tail sampling keeps every order/execution flow; exemplars elsewhere may point at dropped traces."""
    kept_kinds = yaml.safe_load((CC / "otel-collector.yaml").read_text())["processors"]["tail_sampling"]["policies"]
    kinds = next(p["string_attribute"]["values"] for p in kept_kinds if p["type"] == "string_attribute")
    assert {"order", "execution"} <= set(kinds)
    exemplar_panels = 0
    for name, board in dashboards().items():
        for panel in board["panels"]:
            if not any(t.get("exemplar") for t in panel.get("targets", [])):
                continue
            exemplar_panels += 1
            exprs = " ".join(t["expr"] for t in panel["targets"])
            if all(any(h in e for h in ORDER_FLOW_HISTOGRAMS) for e in (t["expr"] for t in panel["targets"])):
                assert "tail sampling always keeps" in panel["description"], (name, panel["title"])
            else:
                assert "trace not found" in panel["description"], f"{name}: {panel['title']} ({exprs}) does not say why an exemplar may not resolve"
    assert exemplar_panels >= 5


# ---- Jaeger -> Loki / Prometheus links, expanded the way Grafana 12 does -------------------
# Grafana (public/app/features/explore/TraceView/createSpanLink.tsx, crossSignalConfig.ts)
# builds $__tags from span.process.tags + span.tags (+ spanId, traceId, name, duration) only;
# Jaeger's API keeps service.name out of process.tags (it is process.serviceName).
JAEGER_SPAN = {
    "traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spanID": "00f067aa0ba902b7", "operationName": "order.submit",
    "duration": 1200, "process": {"serviceName": "demo-trading-bot", "tags": [{"key": "host.name", "value": "box-1"}]},
    "tags": [{"key": "trading.span.kind", "value": "order"}],
}


def grafana_expand(template: str, tags_config: list[dict], span: dict) -> str:
    """Grafana's provisioning $$ -> $, then $__tags / ${__tags}, ${__span.*}, ${__trace.*}."""
    template = template.replace("$$", "$")
    all_tags = [*span["process"]["tags"], *span["tags"], {"key": "spanId", "value": span["spanID"]},
                {"key": "traceId", "value": span["traceID"]}, {"key": "name", "value": span["operationName"]}]
    wanted = {t["key"]: t.get("value") or t["key"] for t in tags_config}
    formatted = ", ".join(f'{wanted[t["key"]]}="{t["value"]}"' for t in all_tags if t["key"] in wanted)
    values = {"__tags": formatted, "__span.name": span["operationName"], "__span.spanId": span["spanID"],
              "__trace.traceId": span["traceID"], "__span.traceId": span["traceID"]}
    out = re.sub(r"\$\{([\w.]+)\}", lambda m: str(values[m.group(1)]), template)
    out = re.sub(r"\$(__tags)\b", lambda m: values[m.group(1)], out)
    assert "$" not in out, out
    return out


def loki_selector_is_valid(query: str) -> bool:
    """Loki's rule: a stream selector needs at least one matcher that does not match the empty string."""
    m = re.match(r"\{([^}]*)\}", query.strip())
    if not m or not m.group(1).strip():
        return False
    matchers = re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', m.group(1))
    if len(matchers) != len([part for part in m.group(1).split(",") if part.strip()]):
        return False
    return any((op == "=" and value) or (op == "=~" and not re.fullmatch(value, "")) for _, op, value in matchers)


def test_trace_to_logs_link_expands_to_a_valid_loki_query(datasources):
    logs = datasources["jaeger"]["jsonData"]["tracesToLogsV2"]
    query = grafana_expand(logs["query"], logs.get("tags", []), JAEGER_SPAN)
    assert loki_selector_is_valid(query), query
    assert f'trace_id="{JAEGER_SPAN["traceID"]}"' in query
    # the template this replaces expanded to an empty selector
    assert not loki_selector_is_valid(grafana_expand('{$${__tags}} | trace_id="x"', [{"key": "service.name", "value": "service_name"}], JAEGER_SPAN))


def test_trace_to_metrics_links_expand_to_valid_promql(datasources):
    config = datasources["jaeger"]["jsonData"]["tracesToMetrics"]
    queries = [grafana_expand(q["query"], config.get("tags", []), JAEGER_SPAN) for q in config["queries"]]
    assert len(queries) == 3
    for query in queries:
        assert 'span_name="order.submit"' in query and "{," not in query and ", }" not in query
    promtool = require_binary("promtool")
    rules = {"groups": [{"name": "links", "rules": [{"record": f"link:{i}", "expr": q} for i, q in enumerate(queries)]}]}
    broken = {"groups": [{"name": "old", "rules": [{"record": "old", "expr": grafana_expand(
        'sum(rate(traces_span_metrics_calls_total{$$__tags, span_name="$${__span.name}"}[5m]))',
        [{"key": "service.name", "value": "service_name"}], JAEGER_SPAN)}]}]}
    with tempfile.TemporaryDirectory() as tmp:
        good, bad = Path(tmp) / "good.yml", Path(tmp) / "bad.yml"
        good.write_text(yaml.safe_dump(rules))
        bad.write_text(yaml.safe_dump(broken))
        assert subprocess.run([promtool, "check", "rules", str(good)], capture_output=True).returncode == 0
        assert subprocess.run([promtool, "check", "rules", str(bad)], capture_output=True).returncode != 0


def test_replay_profile_reads_the_files_the_local_exporters_write(compose):
    from otel_trading.export import localfiles

    service = compose["services"]["otel-replay"]
    assert service["profiles"] == ["replay"] and service["image"] == COLLECTOR_IMAGE
    assert service["volumes"][0].startswith("./collector-config/otel-replay.yaml:")
    assert service["volumes"][1].endswith(":/data:ro") and "OTEL_TRADING_LOCAL_DIR" in service["volumes"][1]
    cfg = collector("otel-replay.yaml")
    receivers = cfg["receivers"]
    assert {component_type(r) for r in receivers} == {"otlpjsonfile"}
    patterns = {pattern for r in receivers.values() for pattern in r["include"]}
    assert patterns == {f"/data/{signal}.*.jsonl" for signal in localfiles._SIGNALS}  # the names the exporters write
    assert all(r["start_at"] == "beginning" for r in receivers.values())
    assert cfg["exporters"]["otlp_grpc"]["endpoint"] == "otel-collector:4317"
    pipelines = cfg["service"]["pipelines"]
    assert set(pipelines) == SIGNALS
    for name, pipe in pipelines.items():
        assert pipe["processors"][0] == "memory_limiter" and pipe["exporters"] == ["otlp_grpc"]
        assert pipe["receivers"] == [f"otlpjsonfile/{name}"]
