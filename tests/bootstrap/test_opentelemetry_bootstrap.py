"""`pip install otel-trading flask requests && opentelemetry-bootstrap -a install` works:
the pinned OpenTelemetry release set has every contrib instrumentation bootstrap asks for."""

import os
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


@pytest.mark.slow
@pytest.mark.registry
@pytest.mark.timeout(900)  # pip downloads and installs: minutes on a loaded machine
def test_bootstrap_installs_matching_instrumentations(tmp_path):
    venv.create(tmp_path / "venv", with_pip=True)
    bin_dir = tmp_path / "venv" / "bin"

    def run(*command, env=None):
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    run(str(bin_dir / "pip"), "install", "-q", str(REPO), "flask", "requests")
    run(str(bin_dir / "opentelemetry-bootstrap"), "-a", "install")
    run(str(bin_dir / "pip"), "check")
    installed = run(str(bin_dir / "pip"), "list", "--format=freeze")
    for package in ("opentelemetry-instrumentation-flask", "opentelemetry-instrumentation-requests", "opentelemetry-instrumentation-urllib3"):
        assert f"{package}==0.66b1" in installed, installed
    # and the instrumented app still starts with our distro and configurator
    no_export = {**os.environ, "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    code = "from opentelemetry import trace; print(type(trace.get_tracer_provider()).__name__)"
    launched = subprocess.run([str(bin_dir / "opentelemetry-instrument"), str(bin_dir / "python"), "-c", code], capture_output=True, text=True, timeout=120, env=no_export)
    assert launched.returncode == 0 and launched.stdout.strip() == "TracerProvider", launched.stderr[-3000:]
    # our ccxt and alpaca instrumentors are registered beside the contrib ones and stay off, silently,
    # where their libraries are not installed
    assert "ccxt" not in launched.stderr and "alpaca" not in launched.stderr, launched.stderr[-3000:]
    entry_points = "from importlib.metadata import entry_points; print(sorted(e.name for e in entry_points(group='opentelemetry_instrumentor')))"
    assert {"'ccxt'", "'alpaca'", "'flask'"} <= set(run(str(bin_dir / "python"), "-c", entry_points).strip("[]\n").split(", "))
