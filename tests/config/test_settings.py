"""The settings table: parsing, validation messages, defaults, README table."""

from pathlib import Path

import pytest

from otel_trading import config as settings


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
        ("OTEL_TRADING_SHUTDOWN_TIMEOUT", "nan", "a number > 0"),
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
    assert environ["OTEL_BLRP_MAX_QUEUE_SIZE"] == "65536"
    assert environ["OTEL_TRACES_EXPORTER"] == "otlp"
    assert environ["OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"] == "true"
    assert "OTEL_TRADING_DESK" not in environ and "OTEL_EXPORTER_OTLP_ENDPOINT" not in environ


def test_every_setting_is_documented_in_the_readme_table():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert settings.markdown_table() in readme, "README settings table is stale: run `otel-trading settings` and paste it"
