from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otlp_receiver import OtlpReceiver

BIN = Path(sys.executable).parent


@pytest.fixture
def otlp():
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any OTEL_* the developer may have set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def otlp_env(receiver: OtlpReceiver, protocol: str = "grpc", **extra: str) -> dict[str, str]:
    """Env pointing every signal at the loopback receiver, exporting quickly; ``extra`` wins."""
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_SERVICE_NAME": "test-bot",
    }
    return clean_env(**{**env, **extra})


def run_python(code: str, env: dict[str, str], instrumented: bool = True, args=(), timeout: float = 60, **kwargs):
    """Run ``code`` as a real program, under ``opentelemetry-instrument`` by default."""
    command = [str(BIN / "opentelemetry-instrument")] if instrumented else []
    command += [sys.executable, "-c", textwrap.dedent(code), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture
def run_instrumented(otlp):
    """Run a program under ``opentelemetry-instrument`` exporting to the ``otlp`` receiver."""

    def run(code: str, protocol: str = "grpc", instrumented: bool = True, args=(), timeout: float = 60, **env: str):
        return run_python(code, otlp_env(otlp, protocol, **env), instrumented=instrumented, args=args, timeout=timeout)

    return run


def require_binary(name: str) -> str:
    """The path of a tool the tests need; in CI its absence is a failure, never a skip."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI but is not installed (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return path


def counts_by_error_type(reader, name: str) -> dict[str, int]:
    """A counter's data points summed by ``error.type`` ('' for success), from an InMemoryMetricReader."""
    out: dict[str, int] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        key = point.attributes.get("error.type", "")
                        out[key] = out.get(key, 0) + point.value
    return out
