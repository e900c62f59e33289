"""Prometheus config, recording/alert rules and their unit tests, with the real
promtool (Debian's `prometheus` package) and amtool (`prometheus-alertmanager`).

In CI (CI=true) a missing binary is a failure, never a skip.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

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


def test_promtool_test_rules():
    assert RULE_TESTS
    out = run(require_binary("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert "FAILED" not in out.stdout + out.stderr


def test_amtool_check_alertmanager_config():
    run(require_binary("amtool"), "check-config", str(ROOT / "collector-config" / "alertmanager" / "alertmanager.yml"))


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
