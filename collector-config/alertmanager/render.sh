#!/bin/sh
# Writes Alertmanager's configuration from ALERT_* variables (docker-compose passes them
# from .env), then starts Alertmanager with the remaining arguments (none: render only).
#   sh render.sh OUTPUT.yml [/bin/alertmanager flags...]
# Receivers: ALERT_RECEIVERS=slack,email,pagerduty,webhook (any subset; empty = alerts are
# only visible in the Alertmanager UI and in Grafana). Secrets are read from files at send
# time (*_FILE variables; docker-compose mounts ./secrets at /etc/alertmanager/secrets):
# none is written into the configuration, none is in the repository.
# Routing by severity: critical -> every selected receiver (PagerDuty pages only for these),
# warning and anything else -> the selected receivers except PagerDuty.
# Cooldowns: ALERT_GROUP_WAIT (first notification of a new group, default 30s),
# ALERT_GROUP_INTERVAL (new alerts joining a notified group, 5m), ALERT_REPEAT_INTERVAL
# (re-send of a still-firing warning, 4h), ALERT_CRITICAL_REPEAT_INTERVAL (critical, 1h).
set -eu
out=${1:?usage: render.sh OUTPUT.yml [/bin/alertmanager flags...]}
shift
receivers=",$(printf '%s' "${ALERT_RECEIVERS:-}" | tr -d ' '),"
secrets=/etc/alertmanager/secrets

fail() { echo "alertmanager render.sh: $*" >&2; exit 1; }
has() { case "$receivers" in *",$1,"*) return 0 ;; esac; return 1; }
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }  # a YAML single-quoted scalar

case "${ALERT_EMAIL_REQUIRE_TLS:-true}" in true|false) ;; *) fail "ALERT_EMAIL_REQUIRE_TLS must be true or false" ;; esac

for r in $(printf '%s' "$receivers" | tr ',' ' '); do
    case "$r" in slack|email|pagerduty|webhook) ;; *) fail "ALERT_RECEIVERS: unknown receiver '$r' (accepted: slack, email, pagerduty, webhook)" ;; esac
done

integrations() {  # $1 = critical | warning
    if has slack; then
        cat <<YAML
    slack_configs:
      - api_url_file: $(q "${ALERT_SLACK_API_URL_FILE:-$secrets/slack_api_url}")
        channel: $(q "${ALERT_SLACK_CHANNEL:-#alerts}")
        send_resolved: true
        title: '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})'
        text: '{{ range .Alerts }}{{ .Annotations.summary }}: {{ .Annotations.description }}{{ "\n" }}{{ end }}'
YAML
    fi
    if has email; then
        [ -n "${ALERT_EMAIL_TO:-}" ] || fail "ALERT_EMAIL_TO is required with the email receiver"
        [ -n "${ALERT_EMAIL_SMARTHOST:-}" ] || fail "ALERT_EMAIL_SMARTHOST (host:port) is required with the email receiver"
        cat <<YAML
    email_configs:
      - to: $(q "$ALERT_EMAIL_TO")
        from: $(q "${ALERT_EMAIL_FROM:-$ALERT_EMAIL_TO}")
        smarthost: $(q "$ALERT_EMAIL_SMARTHOST")
        require_tls: ${ALERT_EMAIL_REQUIRE_TLS:-true}
        send_resolved: true
YAML
        if [ -n "${ALERT_EMAIL_USERNAME:-}" ]; then
            cat <<YAML
        auth_username: $(q "$ALERT_EMAIL_USERNAME")
        auth_password_file: $(q "${ALERT_EMAIL_PASSWORD_FILE:-$secrets/smtp_password}")
YAML
        fi
    fi
    if has pagerduty && [ "$1" = critical ]; then
        cat <<YAML
    pagerduty_configs:
      - routing_key_file: $(q "${ALERT_PAGERDUTY_ROUTING_KEY_FILE:-$secrets/pagerduty_routing_key}")
        send_resolved: true
        severity: critical
YAML
    fi
    if has webhook; then
        if [ -n "${ALERT_WEBHOOK_URL:-}" ]; then
            target="url: $(q "$ALERT_WEBHOOK_URL")"  # a URL without a secret in it
        else
            target="url_file: $(q "${ALERT_WEBHOOK_URL_FILE:-$secrets/webhook_url}")"
        fi
        cat <<YAML
    webhook_configs:
      - $target
        send_resolved: true
YAML
    fi
}

tmp="$out.tmp"
{
    cat <<YAML
# Rendered by render.sh from ALERT_* variables: edit .env, not this file.
route:
  receiver: warning
  group_by: [alertname, job, instance]
  group_wait: ${ALERT_GROUP_WAIT:-30s}
  group_interval: ${ALERT_GROUP_INTERVAL:-5m}
  repeat_interval: ${ALERT_REPEAT_INTERVAL:-4h}
  routes:
    - matchers: ['severity="critical"']
      receiver: critical
      repeat_interval: ${ALERT_CRITICAL_REPEAT_INTERVAL:-1h}

inhibit_rules:
  # A collector that is down also stops exporting: don't page twice.
  - source_matchers: ['alertname="OtelCollectorDown"']
    target_matchers: ['alertname=~"OtelCollector(ExportFailures|RefusingData)"']
    equal: [instance]
  # A bot that is gone is not also "stale" or "unhealthy".
  - source_matchers: ['alertname=~"TradingBot(Down|MetricsVanished)"']
    target_matchers: ['alertname=~"TradingHeartbeatStopped|TradingPipelineStageStale|TradingHealthUnhealthy"']
    equal: [job, instance]

receivers:
  - name: critical
YAML
    integrations critical
    echo "  - name: warning"
    integrations warning
} > "$tmp"
mv "$tmp" "$out"

[ "$#" -eq 0 ] || exec "$@"
