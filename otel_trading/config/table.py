"""Every setting otel-trading reads, defined once.

Each row names the ``configure()`` keyword, the environment variable, how a value
is parsed, its default and one line of documentation. Env parsing, validation,
``configure()`` keywords, ``otel-trading doctor`` and the docs' settings reference
are all derived from ``SETTINGS``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from otel_trading.config.parsers import (
    BOOLEAN,
    CHANNELS,
    FILE,
    FLOATS,
    HOOK,
    LOG_LEVELS,
    NAMES,
    PAIRS,
    TEXT,
    URL,
    Parser,
    choice,
    entry_point_names,
    integer,
    names_from,
    number,
    up_to,
)


class Setting(NamedTuple):
    """One row of the table (a NamedTuple: the rows are built at every start, and a frozen dataclass
    costs several times more to define and to fill)."""

    name: str  # configure() keyword and Settings attribute
    env: str
    parser: Parser
    default: Any  # for OTEL_* rows: None means "the SDK's own default" (described in doc)
    doc: str
    secret: bool = False

    @property
    def standard(self) -> bool:
        return not self.env.startswith("OTEL_TRADING_")


def _per_signal(name: str, env: str, parser: Parser, doc: str, secret: bool = False) -> list[Setting]:
    rows = [Setting(name, env, parser, None, doc, secret)]
    for signal in ("traces", "metrics", "logs"):
        rows.append(
            Setting(
                name.replace("otlp_", f"otlp_{signal}_"),
                env.replace("OTLP_", f"OTLP_{signal.upper()}_"),
                parser,
                None,
                f"{doc} ({signal} only, overrides the general one)",
                secret,
            )
        )
    return rows


_EXPORTERS = {"traces": "opentelemetry_traces_exporter", "metrics": "opentelemetry_metrics_exporter", "logs": "opentelemetry_logs_exporter"}
_COMPRESSION = choice("gzip", "deflate", "none")
_PROTOCOL = choice("grpc", "http/protobuf")
# Ranges that work: the SDK's batch thread needs a positive delay and overflows past ~292 years;
# a timeout below 1 s fails exports a loaded collector (or machine) answers a little late, and loses them.
_DELAY_MS = integer(1, 3_600_000)
_TIMEOUT_MS = integer(1000, 600_000)
_TIMEOUT_MS_NUMBER = number(1000.0, 600_000.0, low_inclusive=True)
_QUEUE = integer(1, 10_000_000)

SETTINGS: tuple[Setting, ...] = (
    # --- standard OpenTelemetry variables (read by the SDK; validated here) ---
    Setting("sdk_disabled", "OTEL_SDK_DISABLED", BOOLEAN, False, "Disable all telemetry: no providers are installed."),
    Setting("config_file", "OTEL_CONFIG_FILE", FILE, None, "Declarative configuration file (YAML/JSON; needs `otel-trading[declarative]`): the SDK builds the providers from it and otel-trading adds what the file allows (see Declarative configuration)."),
    Setting("service_name", "OTEL_SERVICE_NAME", TEXT, None, "`service.name` of the resource (SDK default `unknown_service`)."),
    Setting("resource_attributes", "OTEL_RESOURCE_ATTRIBUTES", PAIRS, None, "Extra resource attributes, `key=value,...` (service.version, service.namespace, deployment.environment.name, ...)."),
    *(
        Setting(f"{s}_exporter", f"OTEL_{s.upper()}_EXPORTER", entry_point_names(_EXPORTERS[s], "otlp", "none"), ("otlp",), f"Exporters for {s}: `otlp`, `console`, `local` (JSON-lines files), `none`" + (", `prometheus`" if s == "metrics" else "") + "; a list such as `otlp,console`.")
        for s in ("traces", "metrics", "logs")
    ),
    *_per_signal("otlp_endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", URL, "OTLP endpoint (SDK default `http://localhost:4317` for grpc, `http://localhost:4318` for http/protobuf: the bundled collector)"),
    *_per_signal("otlp_protocol", "OTEL_EXPORTER_OTLP_PROTOCOL", _PROTOCOL, "OTLP protocol: `grpc` (SDK default) or `http/protobuf`"),
    *_per_signal("otlp_headers", "OTEL_EXPORTER_OTLP_HEADERS", PAIRS, "OTLP request headers, `key=value,...` (secrets go here; masked by `doctor`)", secret=True),
    *_per_signal("otlp_certificate", "OTEL_EXPORTER_OTLP_CERTIFICATE", FILE, "CA certificate file for TLS to the collector"),
    *_per_signal("otlp_client_key", "OTEL_EXPORTER_OTLP_CLIENT_KEY", FILE, "Client private key file for mTLS"),
    *_per_signal("otlp_client_certificate", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", FILE, "Client certificate file for mTLS"),
    *_per_signal("otlp_compression", "OTEL_EXPORTER_OTLP_COMPRESSION", _COMPRESSION, "OTLP compression"),
    *_per_signal("otlp_timeout", "OTEL_EXPORTER_OTLP_TIMEOUT", _TIMEOUT_MS_NUMBER, "OTLP export timeout in milliseconds, as the spec says (default 10000; below 1000 ms exports to a loaded collector fail and are lost)"),
    Setting("traces_sampler", "OTEL_TRACES_SAMPLER", entry_point_names("opentelemetry_traces_sampler", single=True), None, "Sampler: `parentbased_trading` for trading-aware sampling, or any standard one (SDK default `parentbased_always_on`)."),
    Setting("traces_sampler_arg", "OTEL_TRACES_SAMPLER_ARG", TEXT, None, "Sampler argument (ratio for `traceidratio`; rules for `trading`, see Sampling)."),
    Setting("propagators", "OTEL_PROPAGATORS", entry_point_names("opentelemetry_propagator", "none"), None, "Propagators (SDK default `tracecontext,baggage`)."),
    Setting("bsp_schedule_delay", "OTEL_BSP_SCHEDULE_DELAY", _DELAY_MS, None, "Span batch delay, ms (SDK default 5000)."),
    Setting("bsp_export_timeout", "OTEL_BSP_EXPORT_TIMEOUT", _TIMEOUT_MS, None, "Span batch export timeout, ms (SDK default 30000)."),
    Setting("bsp_max_queue_size", "OTEL_BSP_MAX_QUEUE_SIZE", _QUEUE, 8192, "Span queue size; spans beyond it are dropped and counted (SDK default 2048 drops under load)."),
    Setting("bsp_max_export_batch_size", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", _QUEUE, 2048, "Spans per export batch, at most the queue size (SDK default 512: small batches cost the export thread more GIL hand-offs per item)."),
    Setting("blrp_schedule_delay", "OTEL_BLRP_SCHEDULE_DELAY", _DELAY_MS, None, "Log batch delay, ms (SDK default 1000)."),
    Setting("blrp_export_timeout", "OTEL_BLRP_EXPORT_TIMEOUT", _TIMEOUT_MS, None, "Log batch export timeout, ms (SDK default 30000)."),
    Setting("blrp_max_queue_size", "OTEL_BLRP_MAX_QUEUE_SIZE", _QUEUE, 8192, "Log record queue size; records beyond it are dropped and counted (SDK default 2048)."),
    Setting("blrp_max_export_batch_size", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", _QUEUE, 2048, "Log records per export batch, at most the queue size (SDK default 512: small batches cost the export thread more GIL hand-offs per item)."),
    Setting("metric_export_interval", "OTEL_METRIC_EXPORT_INTERVAL", integer(100, 86_400_000), None, "Metric export interval, ms (SDK default 60000)."),
    Setting("metric_export_timeout", "OTEL_METRIC_EXPORT_TIMEOUT", _TIMEOUT_MS, None, "Metric export timeout, ms (SDK default 30000)."),
    *(
        Setting(env[5:].lower(), env, integer(0), None, f"Attribute limit {env} (SDK default {d}).")
        for env, d in (
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "none"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", 128),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "none"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", 128),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", 128),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", 128),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", 128),
            ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", 128),
        )
    ),
    Setting("prometheus_host", "OTEL_EXPORTER_PROMETHEUS_HOST", TEXT, None, "Host the Prometheus `/metrics` endpoint binds (SDK default `localhost`)."),
    Setting("prometheus_port", "OTEL_EXPORTER_PROMETHEUS_PORT", integer(0, 65535), None, "Port of the Prometheus `/metrics` endpoint (SDK default 9464)."),
    Setting("sdk_internal_metrics", "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", BOOLEAN, False, "SDK self-metrics (opt-in: a counter update per span and log record): spans started/live, items processed, queue sizes, exporter outcomes. Drops and failed exports are counted either way, at no per-item cost, in `otel_trading.export.dropped` / `otel_trading.export.failed`."),
    Setting("resource_detectors", "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", entry_point_names("opentelemetry_resource_detector"), ("host", "os", "process", "otel"), "Resource detectors, merged in this order (a later one wins): host name, OS, process id/runtime, then `otel` (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME) so your own values win (SDK default `otel` only)."),
    # --- resource (lead) ---
    Setting("desk", "OTEL_TRADING_DESK", TEXT, "", "Resource attribute `trading.desk`."),
    Setting("strategy_set", "OTEL_TRADING_STRATEGY_SET", TEXT, "", "Resource attribute `trading.strategy_set`: the strategies this process runs."),
    Setting("venue", "OTEL_TRADING_VENUE", TEXT, "", "Resource attribute `trading.venue`: the venue or broker this process trades on."),
    Setting("account_alias", "OTEL_TRADING_ACCOUNT_ALIAS", TEXT, "", "Resource attribute `trading.account.alias` (an alias, never the account number)."),
    # --- metrics views (lead) ---
    Setting("latency_buckets", "OTEL_TRADING_LATENCY_BUCKETS", FLOATS, (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), "Histogram bucket bounds, seconds, for every duration histogram (10 us .. 10 s)."),
    Setting("cardinality_limit", "OTEL_TRADING_CARDINALITY_LIMIT", integer(1), 2000, "Most attribute sets kept per metric; the rest fold into one overflow series (`otel.metric.overflow=true`)."),
    # --- lifecycle (lead) ---
    Setting("shutdown_timeout", "OTEL_TRADING_SHUTDOWN_TIMEOUT", number(0.1, 3600.0, low_inclusive=True), 5.0, "Seconds the exit / SIGTERM flush may take at most, even with a hung collector."),
    # --- export path (PERF) ---
    Setting("fast_export", "OTEL_TRADING_FAST_EXPORT", BOOLEAN, True, "Encode OTLP spans and log records (gRPC and HTTP) with otel-trading's direct encoder: the same bytes as the stock encoder, several times cheaper; `false` = the stock exporters."),
    Setting("export_process", "OTEL_TRADING_EXPORT_PROCESS", BOOLEAN, False, "`true`: export spans and log records from a helper process (one per app process) so encoding and sending never compete with the app for the GIL (no loss under a busy producer); `false`: the SDK's batch processors in the app's process."),
    Setting("export_full_policy", "OTEL_TRADING_EXPORT_FULL_POLICY", choice("block", "drop"), "block", "With the export helper process, when OTEL_BSP_MAX_QUEUE_SIZE / OTEL_BLRP_MAX_QUEUE_SIZE items are held: `block` waits up to OTEL_TRADING_EXPORT_BLOCK_TIMEOUT for room (once per overflow, then drops and counts until half is free again); `drop` drops and counts at once."),
    Setting("export_block_timeout", "OTEL_TRADING_EXPORT_BLOCK_TIMEOUT", number(), 0.5, "Seconds the `block` policy may hold the emitting thread at most, per overflow."),
    Setting("spool", "OTEL_TRADING_SPOOL", BOOLEAN, True, "Keep span and log batches the OTLP collector cannot take (down, refusing, too slow) in an on-disk spool and send them, oldest first, when it answers again, from this process or the next one of the same service; `false` = retry in memory, then drop (counted)."),
    Setting("spool_dir", "OTEL_TRADING_SPOOL_DIR", TEXT, "", "Folder of the spool, one SQLite file per service (`<service>.sqlite`); empty: `~/.cache/otel-trading/spool`."),
    Setting("spool_max_bytes", "OTEL_TRADING_SPOOL_MAX_BYTES", integer(1024), 256 * 1024 * 1024, "Size cap of a service's spool in bytes; when full the oldest batches are evicted, counted and reported."),
    Setting("local_fallback", "OTEL_TRADING_LOCAL_FALLBACK", BOOLEAN, True, "With no OTLP endpoint configured and nothing answering at the default one (localhost:4317 / 4318) at start, write the signals set to `otlp` to local files (`OTEL_TRADING_LOCAL_DIR`) instead, and say so on stderr; `false` = OTLP regardless."),
    Setting("drop_report_interval", "OTEL_TRADING_DROP_REPORT_INTERVAL", number(), 10.0, "Seconds between the warnings that count spans / log records dropped because the export queue was full."),
    # --- tracing helpers and trading metrics (TRADING) ---
    Setting("strict", "OTEL_TRADING_STRICT", BOOLEAN, False, "Raise on bad input to the tracing helpers instead of warning once and carrying on."),
    Setting("order_registry_size", "OTEL_TRADING_ORDER_REGISTRY_SIZE", integer(1), 10000, "Open orders remembered (LRU) so later fills and cancels link to the order's span."),
    Setting("per_symbol_metrics", "OTEL_TRADING_PER_SYMBOL_METRICS", BOOLEAN, False, "Add `trading.symbol` to trading metrics (one series per symbol, capped by OTEL_TRADING_CARDINALITY_LIMIT)."),
    Setting("system_metrics", "OTEL_TRADING_SYSTEM_METRICS", BOOLEAN, False, "Export CPU, memory, GC and thread metrics (upstream system-metrics instrumentation; needs `pip install 'otel-trading[system]'`)."),
    Setting("system_metrics_excluded_metrics", "OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS", NAMES, None, "Upstream system-metrics exclusions (glob patterns); when set, the upstream instrumentation chooses the metrics instead of otel-trading's trading-box selection."),
    # --- health and KPIs ---
    Setting("health_port", "OTEL_TRADING_HEALTH_PORT", integer(0, 65535), 0, "Port of the health server (`/livez`, `/readyz`, `/healthz`); 0 = not served."),
    Setting("health_host", "OTEL_TRADING_HEALTH_HOST", TEXT, "127.0.0.1", "Address the health server binds; loopback by default (`0.0.0.0` for Kubernetes probes from outside the pod)."),
    Setting("health_interval", "OTEL_TRADING_HEALTH_INTERVAL", up_to(3600), 5.0, "Seconds between heartbeats (`trading.heartbeat`) and, by default, between runs of each health check."),
    Setting("drawdown_limit", "OTEL_TRADING_DRAWDOWN_LIMIT", up_to(100), 10.0, "Drawdown limit, percent of the running peak of portfolio value; exported as `trading.drawdown.limit.ratio` (a fraction) for the TradingDrawdownLimit alert."),
    # --- logs (LOGS) ---
    Setting("log_format", "OTEL_TRADING_LOG_FORMAT", choice("auto", "json", "console"), "auto", "Rendered log format: `json` (one JSON object per line), `console` (coloured, for humans) or `auto` (console on a TTY, else json)."),
    Setting("log_level", "OTEL_TRADING_LOG_LEVEL", choice(*LOG_LEVELS), "info", "Lowest level logged by the default structlog setup and exported from stdlib logging (`business`=22 and `audit`=23 sit between info and warning); `audit` records are kept at every level."),
    Setting("redact", "OTEL_TRADING_REDACT", BOOLEAN, True, "Mask secret-looking keys and values (passwords, tokens, API keys, card/account numbers, ...) in rendered logs, exported logs, span attributes, metric attributes, resource attributes (command-line options too) and Python's own tracebacks."),
    Setting("redact_keys", "OTEL_TRADING_REDACT_KEYS", NAMES, (), "Extra key names to mask, comma-separated; matched as substrings of the key lowercased without `_`, `-`, `.`."),
    Setting("redact_allow", "OTEL_TRADING_REDACT_ALLOW", NAMES, (), "Key names never masked by key (their values are still scanned), comma-separated."),
    Setting("redact_pii_allow", "OTEL_TRADING_REDACT_PII_ALLOW", names_from("email", "phone"), (), "Personal data left unmasked: `email`, `phone` (both masked by default: `***@domain`, `***`)."),
    Setting("redact_hook", "OTEL_TRADING_REDACT_HOOK", HOOK, "", "Custom redaction `hook(mapping)` run on every log event dict, span attribute dict and metric attribute set after the built-in rules; may change it in place."),
    Setting("log_dir", "OTEL_TRADING_LOG_DIR", TEXT, "logs", "Directory of the per-channel log files (created when needed)."),
    Setting("log_files", "OTEL_TRADING_LOG_FILES", CHANNELS, {}, "Per-channel JSON-lines files in `OTEL_TRADING_LOG_DIR`, e.g. `trading=info,market_data=warning,audit=audit`; a record goes to a channel named like its logger (or a parent), its `channel` key, or its level. Empty: no files."),
    Setting("log_file_max_bytes", "OTEL_TRADING_LOG_FILE_MAX_BYTES", integer(1024), 50_000_000, "Size in bytes at which a channel file is rotated (and an audit file continues in its next part; audit files are never deleted)."),
    Setting("log_file_backups", "OTEL_TRADING_LOG_FILE_BACKUPS", integer(0, 1000), 10, "Rotated files kept per channel (`audit.log.1` ... `.N`)."),
    # --- audit trail (AUDIT) ---
    Setting("audit_file", "OTEL_TRADING_AUDIT_FILE", BOOLEAN, True, "Append every `audit` record (never filtered by a log level) to the hash-chained audit trail in OTEL_TRADING_AUDIT_DIR, as well as exporting it; `false` keeps them on OTLP and the console only, and says so on stderr at start-up."),
    Setting("audit_dir", "OTEL_TRADING_AUDIT_DIR", TEXT, "", "Directory of the audit trail (created 0700, files 0600, one `audit-<start>-<pid>-<part>.log` chain per process, never deleted by otel-trading). Empty: `<OTEL_TRADING_LOG_DIR>/audit`."),
    Setting("audit_fsync", "OTEL_TRADING_AUDIT_FSYNC", choice("batch", "record", "off"), "batch", "When audit lines are forced to disk (power loss; a crashed process loses none either way, each line is written before the log call returns): `batch` = a background thread fsyncs them within OTEL_TRADING_AUDIT_FSYNC_INTERVAL, the log call never waits for the disk; `record` = before the log call returns (one disk flush per record: 0.3-1.8 ms on the bench's virtual disk, vs ~11 us for `batch`); `off` = the OS decides."),
    Setting("audit_fsync_interval", "OTEL_TRADING_AUDIT_FSYNC_INTERVAL", number(), 50.0, "Milliseconds a `batch` fsync waits to gather audit lines: at most this (plus one fsync) of records is exposed to a power loss."),
    # --- sampler and demo (SAMPLER) ---
    Setting("local_dir", "OTEL_TRADING_LOCAL_DIR", TEXT, "otel-trading-data", "Folder the `local` exporters (`OTEL_TRACES_EXPORTER=local`, ...) write JSON-lines files to; `otel-trading traces` reads it."),
)

BY_NAME = {s.name: s for s in SETTINGS}
