"""The settings table: parsing, validation messages, defaults (its generated docs: tests/docs/test_docs.py)."""

import re

import pytest
from support import clean_env, run_python

from otel_trading import config as settings
from otel_trading.config import SETTINGS, load


def test_valid_env_values_are_parsed_with_their_source():
    env = {"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_TRADING_DESK": "fx", "OTEL_TRACES_EXPORTER": "otlp,console"}
    s = settings.load(env)
    assert s.bsp_max_queue_size == 100 and s.sources["bsp_max_queue_size"] == "env"
    assert s.desk == "fx"
    assert s.traces_exporter == ("otlp", "console")
    assert s.cardinality_limit == 2000 and s.sources["cardinality_limit"] == "default"


@pytest.mark.parametrize(
    "env, value, accepted",
    [
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots", "an integer >= 1"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0", "an integer >= 1"),
        ("OTEL_SDK_DISABLED", "maybe", "true or false"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "one of grpc, http/protobuf"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317", "an http:// or https:// URL"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", "one of gzip, deflate, none"),
        ("OTEL_TRACES_EXPORTER", "otlp,zipkin", "console, "),
        ("OTEL_TRACES_SAMPLER", "sometimes", "parentbased_always_on"),
        ("OTEL_RESOURCE_ATTRIBUTES", "no-equals-sign", "key=value"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", "readable file"),
        ("OTEL_TRADING_LATENCY_BUCKETS", "0.1,0.01", "increasing order"),
        ("OTEL_TRADING_CARDINALITY_LIMIT", "-3", "an integer >= 1"),
        ("OTEL_TRADING_SHUTDOWN_TIMEOUT", "nan", "a number >= 0.1"),
        # values a looser check let through and the SDK could not use (issue 11)
        ("OTEL_TRADING_SHUTDOWN_TIMEOUT", "inf", "<= 3600"),
        ("OTEL_PROPAGATORS", "tracecontext,nope", "baggage, none, tracecontext"),
        ("OTEL_PROPAGATORS", "tracecontext,,baggage", "baggage, none, tracecontext"),
        ("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "otel,nope", "host, os, otel, process"),
        ("OTEL_BSP_SCHEDULE_DELAY", "0", "an integer >= 1 and <= 3600000"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "99999999999999", "an integer >= 1 and <= 3600000"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "99999999999999", "<= 86400000"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", str(2**64), "<= 9223372036854775807"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "inf", "a number >= 1000"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "5", "a number >= 1000"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "1", "an integer >= 1000"),
        ("OTEL_TRADING_LATENCY_BUCKETS", "0.1,inf", "finite positive numbers"),
        ("OTEL_TRADING_LATENCY_BUCKETS", "0.1,,1", "finite positive numbers"),
        ("OTEL_TRADING_LOG_FILE_BACKUPS", "1000000000", "<= 1000"),
    ],
)
def test_bad_value_is_reported_named_and_replaced_by_default(env, value, accepted, capsys):
    environ = {env: value}
    s = settings.load(environ)
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"otel-trading: {env}={value!r} is invalid: accepted ") and accepted in err
    row = next(r for r in settings.SETTINGS if r.env == env)
    assert getattr(s, row.name) == row.default
    assert s.problems == [err.strip().removeprefix("otel-trading: ")]
    # the SDK must not see the bad value: it gets ours, or none (its own default)
    expected = row.parser.format(row.default) if row.standard and row.default is not None else None
    assert environ.get(env) == expected


def test_secret_values_are_not_echoed():
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        settings.load({"OTEL_EXPORTER_OTLP_HEADERS": "authorization Bearer s3cr3t"})
    assert "OTEL_EXPORTER_OTLP_HEADERS=***" in err.getvalue() and "s3cr3t" not in err.getvalue()


def test_keyword_overrides_win_and_standard_ones_reach_the_environment():
    environ = {"OTEL_SERVICE_NAME": "from-env", "OTEL_TRADING_DESK": "env-desk"}
    s = settings.load(environ, service_name="from-kw", desk="kw-desk", bsp_max_queue_size=64)
    assert (s.service_name, s.desk, s.bsp_max_queue_size) == ("from-kw", "kw-desk", 64)
    assert environ["OTEL_SERVICE_NAME"] == "from-kw" and environ["OTEL_BSP_MAX_QUEUE_SIZE"] == "64"
    assert environ["OTEL_TRADING_DESK"] == "env-desk"  # ours are not written back
    assert s.sources["service_name"] == "argument"


def test_unknown_keyword_is_a_clear_error():
    with pytest.raises(TypeError, match="unknown setting.*servce_name"):
        settings.load({}, servce_name="x")


def test_defaults_fill_only_unset_standard_variables():
    environ = {"OTEL_BSP_MAX_QUEUE_SIZE": "10"}
    settings.apply_defaults(environ)
    assert environ["OTEL_BSP_MAX_QUEUE_SIZE"] == "10"
    assert environ["OTEL_BLRP_MAX_QUEUE_SIZE"] == "8192"
    assert environ["OTEL_TRACES_EXPORTER"] == "otlp"
    assert environ["OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"] == "true"
    assert "OTEL_TRADING_DESK" not in environ and "OTEL_EXPORTER_OTLP_ENDPOINT" not in environ


def _two_values(setting, tmp_path) -> tuple[str, str]:
    """Two env texts the setting accepts that parse to different values."""
    files = []
    for name in ("a.pem", "b.pem"):
        (tmp_path / name).write_text("x")
        files.append(str(tmp_path / name))
    candidates = ["true", "false", "1", "2", "1024", "4096", "0.5", "2.5", "http://a:1", "https://b:2", "a=1", "x=2",
                  "trading=info", "audit=audit", "0.1,1", "0.5,2", "os:getcwd", "os:getpid", *files]
    candidates += re.findall(r"[\w/.]+", str(setting.parser.accepted))  # choices and entry point names
    parsed: dict[str, object] = {}
    for text in candidates:
        try:
            value = setting.parser.parse(text)
        except (ValueError, TypeError):
            continue
        if all(value != other for other in parsed.values()):
            parsed[text] = value
    assert len(parsed) >= 2, f"no two accepted values found for {setting.env}"
    first, second = list(parsed)[:2]
    return first, second


def test_every_keyword_wins_over_its_env_var(tmp_path):
    for setting in SETTINGS:
        from_env, from_keyword = _two_values(setting, tmp_path)
        environ = {setting.env: from_env}
        effective = load(environ, **{setting.name: from_keyword})
        assert getattr(effective, setting.name) == setting.parser.parse(from_keyword), setting.env
        assert effective.sources[setting.name] == "argument", setting.env


def test_configure_local_dir_keyword_is_where_the_local_exporters_write(tmp_path):
    code = f"""
import otel_trading
from opentelemetry import trace
telemetry = otel_trading.configure(local_dir={str(tmp_path / 'kw')!r}, traces_exporter="local", metrics_exporter="none", logs_exporter="none")
trace.get_tracer("t").start_span("kept").end()
telemetry.shutdown()
"""
    result = run_python(code, clean_env(OTEL_TRADING_LOCAL_DIR=str(tmp_path / "env")), instrumented=False)
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "kw").glob("spans.*.jsonl")), result.stderr
    assert not (tmp_path / "env").exists()


def test_a_bad_value_is_echoed_short_and_masked(capsys):
    settings.load({"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://bob:hunter2@collector/" + "x" * 500})
    err = capsys.readouterr().err
    assert "hunter2" not in err and "bob:***@collector" in err
    assert len(err.split("'")[1]) <= 80  # at most ~80 characters of the value


def test_settings_repr_masks_secret_settings():
    s = settings.load({"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer tok-Zq81", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-key=tok-Zq82"})
    assert s.otlp_headers == {"authorization": "Bearer tok-Zq81"}  # the value itself is intact
    assert "tok-Zq8" not in repr(s)  # what Python prints when an atexit callback holding it is interrupted


def test_names_the_sdk_resolves_are_written_back_as_validated():
    environ = {"OTEL_EXPORTER_OTLP_PROTOCOL": " GRPC "}
    settings.load(environ)
    assert environ["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"  # the SDK compares it case-sensitively
