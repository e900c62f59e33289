"""Every setting otel-trading reads, defined once.

Each row names the ``configure()`` keyword, the environment variable, how a value
is parsed, its default and one line of documentation. Env parsing, validation,
``configure()`` keywords, ``otel-trading doctor`` and the README table are all
derived from ``SETTINGS``.

Standard ``OTEL_*`` variables are validated here but read by the SDK itself:
a bad value is removed from the environment (so the SDK falls back to its own
default, or ours), and reported once on stderr naming the variable. Nothing here
raises into the user's process.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlparse

from opentelemetry.util._importlib_metadata import entry_points


@dataclass(frozen=True)
class Parser:
    """Turns an env string into a value; ``accepted`` is shown when it cannot."""

    parse: Callable[[str], Any]
    accepted: str
    format: Callable[[Any], str] = str


def _check(ok: bool) -> None:
    if not ok:
        raise ValueError


def _int(text: str, low: int | None, high: int | None) -> int:
    value = int(text.strip())
    _check((low is None or value >= low) and (high is None or value <= high))
    return value


def integer(low: int | None = None, high: int | None = None) -> Parser:
    bounds = " and ".join(b for b in (low is not None and f">= {low}", high is not None and f"<= {high}") if b)
    return Parser(lambda t: _int(t, low, high), f"an integer {bounds}".strip())


def _number(text: str, low: float, low_inclusive: bool) -> float:
    value = float(text.strip())
    _check(value == value and (value >= low if low_inclusive else value > low))
    return value


def number(low: float = 0.0, low_inclusive: bool = False) -> Parser:
    return Parser(lambda t: _number(t, low, low_inclusive), f"a number {'>=' if low_inclusive else '>'} {low:g}", repr)


def up_to(high: float) -> Parser:
    """A finite number > 0 and <= ``high``."""

    def parse(text: str) -> float:
        value = _number(text, 0.0, False)
        _check(value <= high)
        return value

    return Parser(parse, f"a number > 0 and <= {high:g}", repr)


def _bool(text: str) -> bool:
    value = text.strip().lower()
    _check(value in ("true", "false", "1", "0", "yes", "no", "on", "off"))
    return value in ("true", "1", "yes", "on")


BOOLEAN = Parser(_bool, "true or false", lambda v: "true" if v else "false")
TEXT = Parser(str.strip, "any text")


def choice(*options: str) -> Parser:
    def parse(text: str) -> str:
        value = text.strip().lower()
        _check(value in options)
        return value

    return Parser(parse, "one of " + ", ".join(options))


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


NAMES = Parser(_names, "a comma-separated list of names", lambda v: v if isinstance(v, str) else ",".join(v))


def _floats(text: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in _names(text))
    _check(bool(values) and all(b > 0 for b in values) and list(values) == sorted(set(values)))
    return values


FLOATS = Parser(
    _floats,
    "comma-separated positive numbers in increasing order",
    lambda v: v if isinstance(v, str) else ",".join(f"{b:g}" for b in v),
)


def _pairs(text: str) -> dict[str, str]:
    pairs = {}
    for item in _names(text):
        key, sep, value = item.partition("=")
        _check(bool(sep and key.strip()))
        pairs[key.strip()] = value.strip()
    return pairs


PAIRS = Parser(
    _pairs,
    "comma-separated key=value pairs",
    lambda v: v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in v.items()),
)


LOG_LEVELS = ("debug", "info", "business", "audit", "warning", "error", "critical")


def _channels(text: str) -> dict[str, str]:
    channels = {name: level.lower() for name, level in _pairs(text).items()}
    _check(all(level in LOG_LEVELS for level in channels.values()))
    return channels


CHANNELS = Parser(_channels, "comma-separated channel=level pairs; levels: " + ", ".join(LOG_LEVELS), PAIRS.format)


def _hook(text: str) -> str:
    _check(re.fullmatch(r"(?:[A-Za-z_][\w.]*:[A-Za-z_][\w.]*)?", text.strip()) is not None)
    return text.strip()


HOOK = Parser(
    _hook,
    "`package.module:function` (or, in `configure()`, a module-level function)",
    lambda v: v if isinstance(v, str) else f"{v.__module__}:{v.__qualname__}",
)


def _url(text: str) -> str:
    parsed = urlparse(text.strip())
    _check(parsed.scheme in ("http", "https") and bool(parsed.netloc))
    return text.strip()


URL = Parser(_url, "an http:// or https:// URL with a host, e.g. http://localhost:4317")


def _file(text: str) -> str:
    _check(os.path.isfile(text.strip()))
    return text.strip()


FILE = Parser(_file, "the path of a readable file")


def entry_point_names(group: str, *extra: str, single: bool = False) -> Parser:
    """Names registered in an entry point group (exporters, samplers), looked up only when used."""

    def known() -> set[str]:
        return {ep.name for ep in entry_points(group=group)} | set(extra)

    def parse(text: str) -> tuple[str, ...] | str:
        names = tuple(n.lower() for n in _names(text))
        _check(bool(names) and (len(names) == 1 or not single) and all(n in known() for n in names))
        return names[0] if single else names

    def accepted() -> str:
        return ("one of: " if single else "a comma-separated list of: ") + ", ".join(sorted(known()))

    return Parser(parse, _Lazy(accepted), NAMES.format)


class _Lazy(str):
    """An ``accepted`` text computed only when an error is reported."""

    def __new__(cls, compute: Callable[[], str]):
        self = super().__new__(cls, "")
        self.compute = compute
        return self

    def __str__(self) -> str:
        return self.compute()


@dataclass(frozen=True)
class Setting:
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

SETTINGS: tuple[Setting, ...] = (
    # --- standard OpenTelemetry variables (read by the SDK; validated here) ---
    Setting("sdk_disabled", "OTEL_SDK_DISABLED", BOOLEAN, False, "Disable all telemetry: no providers are installed."),
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
    *_per_signal("otlp_timeout", "OTEL_EXPORTER_OTLP_TIMEOUT", number(), "OTLP export timeout in milliseconds, as the spec says (default 10000)"),
    Setting("traces_sampler", "OTEL_TRACES_SAMPLER", entry_point_names("opentelemetry_traces_sampler", single=True), None, "Sampler: `parentbased_trading` for trading-aware sampling, or any standard one (SDK default `parentbased_always_on`)."),
    Setting("traces_sampler_arg", "OTEL_TRACES_SAMPLER_ARG", TEXT, None, "Sampler argument (ratio for `traceidratio`; rules for `trading`, see Sampling)."),
    Setting("propagators", "OTEL_PROPAGATORS", NAMES, None, "Propagators (SDK default `tracecontext,baggage`)."),
    Setting("bsp_schedule_delay", "OTEL_BSP_SCHEDULE_DELAY", integer(0), None, "Span batch delay, ms (SDK default 5000)."),
    Setting("bsp_export_timeout", "OTEL_BSP_EXPORT_TIMEOUT", integer(0), None, "Span batch export timeout, ms (SDK default 30000)."),
    Setting("bsp_max_queue_size", "OTEL_BSP_MAX_QUEUE_SIZE", integer(1), 8192, "Span queue size; spans beyond it are dropped and counted (SDK default 2048 drops under load)."),
    Setting("bsp_max_export_batch_size", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", integer(1), 2048, "Spans per export batch, at most the queue size (SDK default 512: small batches cost the export thread more GIL hand-offs per item)."),
    Setting("blrp_schedule_delay", "OTEL_BLRP_SCHEDULE_DELAY", integer(0), None, "Log batch delay, ms (SDK default 1000)."),
    Setting("blrp_export_timeout", "OTEL_BLRP_EXPORT_TIMEOUT", integer(0), None, "Log batch export timeout, ms (SDK default 30000)."),
    Setting("blrp_max_queue_size", "OTEL_BLRP_MAX_QUEUE_SIZE", integer(1), 8192, "Log record queue size; records beyond it are dropped and counted (SDK default 2048)."),
    Setting("blrp_max_export_batch_size", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", integer(1), 2048, "Log records per export batch, at most the queue size (SDK default 512: small batches cost the export thread more GIL hand-offs per item)."),
    Setting("metric_export_interval", "OTEL_METRIC_EXPORT_INTERVAL", integer(1), None, "Metric export interval, ms (SDK default 60000)."),
    Setting("metric_export_timeout", "OTEL_METRIC_EXPORT_TIMEOUT", integer(1), None, "Metric export timeout, ms (SDK default 30000)."),
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
    Setting("sdk_internal_metrics", "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", BOOLEAN, True, "SDK self-metrics: spans and log records processed, dropped (`error.type=queue_full`) and failed to export."),
    Setting("resource_detectors", "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", NAMES, ("otel", "host", "os", "process"), "Resource detectors: host name, OS, process id/runtime/command line (SDK default `otel` only)."),
    # --- resource (lead) ---
    Setting("desk", "OTEL_TRADING_DESK", TEXT, "", "Resource attribute `trading.desk`."),
    Setting("strategy_set", "OTEL_TRADING_STRATEGY_SET", TEXT, "", "Resource attribute `trading.strategy_set`: the strategies this process runs."),
    Setting("venue", "OTEL_TRADING_VENUE", TEXT, "", "Resource attribute `trading.venue`: the venue or broker this process trades on."),
    Setting("account_alias", "OTEL_TRADING_ACCOUNT_ALIAS", TEXT, "", "Resource attribute `trading.account.alias` (an alias, never the account number)."),
    # --- metrics views (lead) ---
    Setting("latency_buckets", "OTEL_TRADING_LATENCY_BUCKETS", FLOATS, (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), "Histogram bucket bounds, seconds, for every duration histogram (10 us .. 10 s)."),
    Setting("cardinality_limit", "OTEL_TRADING_CARDINALITY_LIMIT", integer(1), 2000, "Most attribute sets kept per metric; the rest fold into one overflow series (`otel.metric.overflow=true`)."),
    # --- lifecycle (lead) ---
    Setting("shutdown_timeout", "OTEL_TRADING_SHUTDOWN_TIMEOUT", number(), 5.0, "Seconds the exit / SIGTERM flush may take at most, even with a hung collector."),
    # --- export path (PERF) ---
    Setting("fast_export", "OTEL_TRADING_FAST_EXPORT", BOOLEAN, True, "Encode OTLP spans and log records (gRPC and HTTP) with otel-trading's direct encoder: the same bytes as the stock encoder, several times cheaper; `false` = the stock exporters."),
    Setting("drop_report_interval", "OTEL_TRADING_DROP_REPORT_INTERVAL", number(), 10.0, "Seconds between the warnings that count spans / log records dropped because the export queue was full."),
    # --- tracing helpers and trading metrics (TRADING) ---
    Setting("strict", "OTEL_TRADING_STRICT", BOOLEAN, False, "Raise on bad input to the tracing helpers instead of warning once and carrying on."),
    Setting("order_registry_size", "OTEL_TRADING_ORDER_REGISTRY_SIZE", integer(1), 10000, "Open orders remembered (LRU) so later fills and cancels link to the order's span."),
    Setting("per_symbol_metrics", "OTEL_TRADING_PER_SYMBOL_METRICS", BOOLEAN, False, "Add `trading.symbol` to trading metrics (one series per symbol, capped by OTEL_TRADING_CARDINALITY_LIMIT)."),
    Setting("system_metrics", "OTEL_TRADING_SYSTEM_METRICS", BOOLEAN, False, "Export CPU, memory, GC and thread metrics (upstream system-metrics instrumentation)."),
    # --- health and KPIs ---
    Setting("health_port", "OTEL_TRADING_HEALTH_PORT", integer(0, 65535), 0, "Port of the health server (`/livez`, `/readyz`, `/healthz`); 0 = not served."),
    Setting("health_host", "OTEL_TRADING_HEALTH_HOST", TEXT, "127.0.0.1", "Address the health server binds; loopback by default (`0.0.0.0` for Kubernetes probes from outside the pod)."),
    Setting("health_interval", "OTEL_TRADING_HEALTH_INTERVAL", up_to(3600), 5.0, "Seconds between heartbeats (`trading.heartbeat`) and, by default, between runs of each health check."),
    Setting("drawdown_limit", "OTEL_TRADING_DRAWDOWN_LIMIT", up_to(100), 10.0, "Drawdown limit, percent of the running peak of portfolio value; exported as `trading.drawdown.limit` for the TradingDrawdownLimit alert."),
    # --- logs (LOGS) ---
    Setting("log_format", "OTEL_TRADING_LOG_FORMAT", choice("auto", "json", "console"), "auto", "Rendered log format: `json` (one JSON object per line), `console` (coloured, for humans) or `auto` (console on a TTY, else json)."),
    Setting("log_level", "OTEL_TRADING_LOG_LEVEL", choice(*LOG_LEVELS), "info", "Lowest level logged by the default structlog setup and exported from stdlib logging (`business`=22 and `audit`=23 sit between info and warning)."),
    Setting("redact", "OTEL_TRADING_REDACT", BOOLEAN, True, "Mask secret-looking keys and values (passwords, tokens, API keys, card/account numbers, ...) in rendered logs, exported logs and span attributes."),
    Setting("redact_keys", "OTEL_TRADING_REDACT_KEYS", NAMES, (), "Extra key names to mask, comma-separated; matched as substrings of the key lowercased without `_`, `-`, `.`."),
    Setting("redact_allow", "OTEL_TRADING_REDACT_ALLOW", NAMES, (), "Key names never masked by key (their values are still scanned), comma-separated."),
    Setting("redact_hook", "OTEL_TRADING_REDACT_HOOK", HOOK, "", "Custom redaction `hook(mapping)` run on every log event dict and span attribute dict after the built-in rules; may change it in place."),
    Setting("log_dir", "OTEL_TRADING_LOG_DIR", TEXT, "logs", "Directory of the per-channel log files (created when needed)."),
    Setting("log_files", "OTEL_TRADING_LOG_FILES", CHANNELS, {}, "Per-channel JSON-lines files in `OTEL_TRADING_LOG_DIR`, e.g. `trading=info,market_data=warning,audit=audit`; a record goes to a channel named like its logger (or a parent), its `channel` key, or its level. Empty: no files."),
    Setting("log_file_max_bytes", "OTEL_TRADING_LOG_FILE_MAX_BYTES", integer(1024), 50_000_000, "Size in bytes at which a channel file is rotated."),
    Setting("log_file_backups", "OTEL_TRADING_LOG_FILE_BACKUPS", integer(0), 10, "Rotated files kept per channel (`audit.log.1` ... `.N`)."),
    # --- sampler and demo (SAMPLER) ---
    Setting("local_dir", "OTEL_TRADING_LOCAL_DIR", TEXT, "otel-trading-data", "Folder the `local` exporters (`OTEL_TRACES_EXPORTER=local`, ...) write JSON-lines files to; `otel-trading traces` reads it."),
)

BY_NAME = {s.name: s for s in SETTINGS}


class Settings:
    """The effective settings: attribute per setting, where each came from, what was wrong."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str], problems: list[str]):
        self.__dict__.update(values)
        self.sources = sources
        self.problems = problems

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={getattr(self, k)!r}' for k in BY_NAME)})"


def _report(message: str) -> None:
    print(f"otel-trading: {message}", file=sys.stderr, flush=True)


def load(environ: os._Environ | dict | None = None, **overrides: Any) -> Settings:
    """Read every setting from ``environ`` (default ``os.environ``) and ``overrides``.

    Overrides (``configure()`` keywords) win over the environment. Standard
    settings given as overrides are written to the environment, so the SDK reads
    them exactly as it reads variables. A bad value is reported, dropped from
    the environment and replaced by the default.
    """
    environ = os.environ if environ is None else environ
    unknown = set(overrides) - set(BY_NAME)
    if unknown:
        raise TypeError(f"unknown setting(s) {', '.join(sorted(unknown))}; see otel_trading.settings.SETTINGS")
    values, sources, problems = {}, {}, []
    for setting in SETTINGS:
        if setting.name in overrides and overrides[setting.name] is not None:
            raw, source = overrides[setting.name], "argument"
            raw = raw if isinstance(raw, str) else setting.parser.format(raw)
        elif setting.env in environ:
            raw, source = environ[setting.env], "env"
        else:
            values[setting.name], sources[setting.name] = setting.default, "default"
            continue
        try:
            values[setting.name] = setting.parser.parse(raw)
            sources[setting.name] = source
            if setting.standard and source == "argument":
                environ[setting.env] = raw
        except (ValueError, TypeError):
            shown = "***" if setting.secret else repr(raw)
            problem = f"{setting.env}={shown} is invalid: accepted {setting.parser.accepted}; using default {_shown_default(setting)}"
            problems.append(problem)
            _report(problem)
            values[setting.name], sources[setting.name] = setting.default, "default"
            environ.pop(setting.env, None)  # reported once; whoever reads the environment next sees the default
            if setting.standard and setting.default is not None:
                environ[setting.env] = setting.parser.format(setting.default)
    return Settings(values, sources, problems)


def _shown_default(setting: Setting) -> str:
    if setting.default is None:
        return "(the SDK's)"
    return setting.parser.format(setting.default) if setting.default not in ("", (), {}) else "(empty)"


def apply_defaults(environ: os._Environ | dict | None = None) -> None:
    """Set otel-trading's defaults for standard variables the user left unset."""
    environ = os.environ if environ is None else environ
    for setting in SETTINGS:
        if setting.standard and setting.default is not None:
            environ.setdefault(setting.env, setting.parser.format(setting.default))


def markdown_table() -> str:
    """The README settings table."""
    lines = ["| Variable | `configure()` keyword | Accepted | Default | What it does |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        default = "SDK's" if s.default is None else f"`{_shown_default(s)}`"
        lines.append(f"| `{s.env}` | `{s.name}` | {s.parser.accepted} | {default} | {s.doc} |")
    return "\n".join(lines)
