"""Prometheus config, recording/alert rules and their unit tests, with the real
promtool (Debian's `prometheus` package) and amtool (`prometheus-alertmanager`).

In CI (CI=true) a missing binary is a failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from support import require_binary

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "collector-config" / "prometheus"
RULES = sorted((PROM / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROM / "tests").glob("*.test.yml"))


def run(*cmd: str) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
    return result


def alert_rules() -> list[dict]:
    rules = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def test_promtool_check_config():
    run(require_binary("promtool"), "check", "config", str(PROM / "prometheus.yml"))


def test_promtool_check_rules():
    assert RULES
    run(require_binary("promtool"), "check", "rules", *map(str, RULES))


@pytest.mark.slow
def test_promtool_test_rules():
    assert RULE_TESTS
    out = run(require_binary("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert "FAILED" not in out.stdout + out.stderr


RENDER = ROOT / "collector-config" / "alertmanager" / "render.sh"
EMAIL = {"ALERT_EMAIL_TO": "ops@example.com", "ALERT_EMAIL_SMARTHOST": "smtp.example.com:587", "ALERT_EMAIL_USERNAME": "bot"}


def render(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    out = tmp_path / "alertmanager.yml"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALERT_")}
    return subprocess.run(["sh", str(RENDER), str(out)], env={**clean, **env}, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("receivers", ["", "slack", "email", "pagerduty", "webhook", "slack,email,pagerduty,webhook"])
def test_rendered_alertmanager_config_is_valid(tmp_path, receivers):
    """Every receiver selection renders a config amtool accepts; secrets only as *_file paths."""
    # Debian's Alertmanager 0.25 predates webhook url_file (0.26+, the compose image is 0.28):
    # amtool checks the url variant; the url_file variant is checked as text below.
    result = render(tmp_path, ALERT_RECEIVERS=receivers, ALERT_WEBHOOK_URL="http://127.0.0.1:9/hook", **EMAIL)
    assert result.returncode == 0, result.stderr
    run(require_binary("amtool"), "check-config", str(tmp_path / "alertmanager.yml"))
    config = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())
    by_name = {r["name"]: r for r in config["receivers"]}
    for name in receivers.split(",") if receivers else []:
        key = {"email": "email_configs", "slack": "slack_configs", "pagerduty": "pagerduty_configs", "webhook": "webhook_configs"}[name]
        assert key in by_name["critical"], name
        assert (key in by_name["warning"]) == (name != "pagerduty"), name  # pages only for critical
    assert config["route"]["routes"][0]["matchers"] == ['severity="critical"']
    text = (tmp_path / "alertmanager.yml").read_text()
    for secret_key in ("api_url:", "routing_key:", "auth_password:", "service_key:"):
        assert secret_key not in text


def test_rendered_webhook_secret_url_comes_from_a_file(tmp_path):
    assert render(tmp_path, ALERT_RECEIVERS="webhook").returncode == 0
    hook = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())["receivers"][0]["webhook_configs"][0]
    assert hook == {"url_file": "/etc/alertmanager/secrets/webhook_url", "send_resolved": True}


def test_render_rejects_unknown_receivers_and_missing_settings(tmp_path):
    bad = render(tmp_path, ALERT_RECEIVERS="slack,sms")
    assert bad.returncode == 1 and "unknown receiver 'sms'" in bad.stderr
    missing = render(tmp_path, ALERT_RECEIVERS="email")
    assert missing.returncode == 1 and "ALERT_EMAIL_TO is required" in missing.stderr
    assert not (tmp_path / "alertmanager.yml").exists()


def test_rendered_cooldowns_follow_the_variables(tmp_path):
    render(tmp_path, ALERT_GROUP_WAIT="10s", ALERT_GROUP_INTERVAL="1m", ALERT_REPEAT_INTERVAL="12h", ALERT_CRITICAL_REPEAT_INTERVAL="30m")
    route = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("10s", "1m", "12h")
    assert route["routes"][0]["repeat_interval"] == "30m"


def test_alerts_cover_the_issue_and_have_for_and_severity():
    rules = alert_rules()
    names = {r["alert"] for r in rules}
    assert {
        "TradingServiceHighErrorRate",       # error rate
        "TradingPipelineStageStale",         # stale pipeline stage
        "TradingOrderRejectionSpike",        # order rejection spike
        "TradingOrderLatencySLOBurnFast",    # order latency SLO burn
        "TradingOrderLatencySLOBurnSlow",
        "TradingDrawdownLimit",              # drawdown
        "OtelSdkTelemetryDropped",           # telemetry drops
        "OtelSdkExportFailures",             # exporter failures (SDK)
        "OtelCollectorExportFailures",       # exporter failures (collector)
        "OtelCollectorRefusingData",         # collector refusing data
        "TradingBotDown",                    # dead-man's switch: scrape target down
        "TradingBotMetricsVanished",         # dead-man's switch: series vanished
        "TradingHeartbeatStopped",           # dead-man's switch: heartbeat not advancing
        "TradingNoBotReporting",             # absent_over_time
        "TradingHealthUnhealthy",            # health checks
        "TradingMarketDataLatencyHigh",      # market-data latency
    } <= names
    for rule in rules:
        assert rule.get("for"), f"{rule['alert']} has no for: window"
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_every_alert_is_tested_firing_and_not_firing():
    firing, quiet = set(), set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                (firing if t.get("exp_alerts") else quiet).add(t["alertname"])
    for rule in alert_rules():
        assert rule["alert"] in firing, f"no promtool case shows {rule['alert']} firing"
        assert rule["alert"] in quiet, f"no promtool case shows {rule['alert']} not firing"


def test_recording_rules_are_used():
    used_in = "".join(p.read_text() for p in [*RULES, *(ROOT / "grafana" / "dashboards").glob("*.json")])
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    assert used_in.count(rule["record"]) >= 2, f"{rule['record']} is recorded but never queried"
