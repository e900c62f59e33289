"""`otel-trading doctor`: effective configuration, sources, invalid values, endpoint reachability."""

import socket
import subprocess

from support import BIN, clean_env, otlp_env


def doctor(env):
    return subprocess.run([str(BIN / "otel-trading"), "doctor"], env=env, capture_output=True, text=True, timeout=30)


def test_doctor_reports_sources_masks_secrets_and_reaches_the_collector(otlp):
    env = otlp_env(
        otlp,
        OTEL_EXPORTER_OTLP_HEADERS="api-key=topsecret",
        OTEL_TRADING_DESK="fx",
        OTEL_TRACES_SAMPLER="parentbased_trading",
        OTEL_TRACES_SAMPLER_ARG="market_data=0.25",
    )
    result = doctor(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "topsecret" not in result.stdout + result.stderr
    assert "OTEL_EXPORTER_OTLP_HEADERS" in result.stdout and "***" in result.stdout
    assert any("OTEL_TRADING_DESK" in l and "fx" in l and "(env)" in l for l in result.stdout.splitlines())
    assert any("OTEL_BSP_MAX_QUEUE_SIZE" in l and "8192" in l and "(default)" in l for l in result.stdout.splitlines())
    assert f"traces   OTLP endpoint {otlp.grpc_endpoint}: accepts connections" in result.stdout
    sampler_line = next(l for l in result.stdout.splitlines() if l.strip().startswith("sampler:"))
    assert "market_data" in sampler_line and "0.25" in sampler_line, sampler_line
    assert "No problems found." in result.stdout


def test_doctor_fails_on_invalid_values_and_an_unreachable_endpoint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    result = doctor(clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed}", OTEL_BSP_MAX_QUEUE_SIZE="huge"))
    assert result.returncode == 1
    assert "invalid: OTEL_BSP_MAX_QUEUE_SIZE='huge' is invalid: accepted an integer >= 1 and <= 10000000; using default 8192" in result.stdout
    assert f"OTLP endpoint http://127.0.0.1:{closed} does not accept a connection" in result.stdout
