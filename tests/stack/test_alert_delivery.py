"""Alerts reach someone, for real: Debian's Prometheus and Alertmanager on loopback, the
shipped rules, the Alertmanager configuration render.sh writes for a webhook receiver,
a bot (launched like users launch theirs) that crashes and comes back, and a local
webhook receiver that must get the firing alert, then the resolved one, once each.

Only the clock is changed in the test's copies: scrape/evaluation every second, the
rules' `for:` windows 1 s, group_wait / group_interval 1 s (ALERT_GROUP_* variables,
as a user would set them); the repeat interval stays long, so a second notification
of the same state would be a duplicate. Every server is started here and stopped by PID.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from support import clean_env, require_binary
from test_live import Prom, free_port, kill

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RULES = sorted((ROOT / "collector-config" / "prometheus" / "rules").glob("*.yml"))
RENDER = ROOT / "collector-config" / "alertmanager" / "render.sh"
JOB = "alert-bot"
WATCHED = {"TradingBotDown", "TradingBotMetricsVanished"}


class Webhook:
    """Alertmanager's generic webhook receiver: records (alertname, status) per alert notified."""

    def __init__(self) -> None:
        self.notified: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    for alert in body["alerts"]:
                        outer.notified.append((alert["labels"]["alertname"], alert["status"], time.monotonic()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def seen(self, alertname: str, status: str) -> int:
        with self.lock:
            return sum(1 for a, s, _ in self.notified if a == alertname and s == status)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(predicate, timeout: float, what: str, output=lambda: "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{output()}")


def ready(url: str) -> bool:
    """The server answers 200 (Prometheus answers 503 while its storage starts)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def fast_rules(folder: Path) -> list[str]:
    """The shipped rule files with every `for:` window cut to 1 s (expressions unchanged)."""
    paths = []
    for path in RULES:
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "1s"
        out = folder / path.name
        out.write_text(yaml.safe_dump(doc))
        paths.append(str(out))
    return paths


def start_bot(port: int, log) -> subprocess.Popen:
    env = clean_env(
        OTEL_SERVICE_NAME=JOB, OTEL_METRICS_EXPORTER="prometheus", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port), OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
        OTEL_TRADING_HEALTH_INTERVAL="0.5",
    )
    code = "import time\nwhile True: time.sleep(1)"
    return subprocess.Popen([str(BIN / "opentelemetry-instrument"), sys.executable, "-c", code],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_bot_crash_is_delivered_firing_then_resolved_once_each():
    prometheus = require_binary("prometheus")
    alertmanager = require_binary("prometheus-alertmanager")
    tmp = tempfile.TemporaryDirectory(prefix="otel-trading-alerts-")
    folder = Path(tmp.name)
    webhook = Webhook()
    bot_port, prom_port, am_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen] = []
    log = open(folder / "processes.log", "w+")

    def output() -> str:
        log.flush()
        return (folder / "processes.log").read_text()[-4000:] + f"\nwebhook got: {webhook.notified}"

    try:
        rendered = subprocess.run(
            ["sh", str(RENDER), str(folder / "alertmanager.yml")], capture_output=True, text=True, timeout=30,
            env=clean_env(ALERT_RECEIVERS="webhook", ALERT_WEBHOOK_URL=webhook.url, ALERT_GROUP_WAIT="1s",
                          ALERT_GROUP_INTERVAL="1s", ALERT_REPEAT_INTERVAL="1h", ALERT_CRITICAL_REPEAT_INTERVAL="1h"))
        assert rendered.returncode == 0, rendered.stderr
        procs.append(subprocess.Popen(
            [alertmanager, f"--config.file={folder / 'alertmanager.yml'}", f"--storage.path={folder / 'am'}",
             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT))
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": fast_rules(folder),
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{bot_port}"]}]}],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        procs.append(subprocess.Popen(
            [prometheus, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT))
        bot = start_bot(bot_port, log)
        procs.append(bot)
        wait_for(lambda: ready(f"http://127.0.0.1:{am_port}/-/ready"), 30, "Alertmanager ready", output)
        wait_for(lambda: ready(f"http://127.0.0.1:{prom_port}/-/ready"), 30, "Prometheus ready", output)
        prom = Prom(prom_port)
        beating = f'trading_heartbeat_seconds{{job="{JOB}"}}'
        wait_for(lambda: prom.query(beating)["data"]["result"], 30, "the bot's heartbeat in Prometheus", output)

        bot.send_signal(signal.SIGKILL)  # a crash: nothing is flushed, the series just stop
        bot.wait(10)
        for name in WATCHED:
            wait_for(lambda n=name: webhook.seen(n, "firing"), 30, f"{name} firing at the webhook", output)
        assert prom.query(beating)["data"]["result"] == []

        bot = start_bot(bot_port, log)  # back: both alerts resolve
        procs.append(bot)
        for name in WATCHED:
            wait_for(lambda n=name: webhook.seen(n, "resolved"), 40, f"{name} resolved at the webhook", output)
        time.sleep(5)  # five more group intervals and Prometheus re-sends: nothing new may arrive

        for name in WATCHED:
            assert (webhook.seen(name, "firing"), webhook.seen(name, "resolved")) == (1, 1), output()
            fired = min(t for a, s, t in webhook.notified if a == name and s == "firing")
            resolved = min(t for a, s, t in webhook.notified if a == name and s == "resolved")
            assert fired < resolved
    finally:
        for proc in procs:
            kill(proc)
        webhook.stop()
        log.close()
        tmp.cleanup()
