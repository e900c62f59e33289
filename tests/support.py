"""Helpers shared by the test packages: clean environments, launching real programs, reading exported data."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_receiver import OtlpReceiver

BIN = Path(sys.executable).parent
# where launched programs keep their audit trail unless a test names one (set per session by conftest),
# so no test writes `logs/audit` into the checkout
AUDIT_DIR: Path | None = None


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any OTEL_* the developer may have set, except
    OTEL_TRADING_EXPORT_PROCESS: set for the run, every launched program exports through that path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") or k == "OTEL_TRADING_EXPORT_PROCESS"}
    env["PYTHONUNBUFFERED"] = "1"
    if AUDIT_DIR is not None:
        env["OTEL_TRADING_AUDIT_DIR"] = str(AUDIT_DIR)
    scratch = Path(tempfile.mkdtemp(prefix="otel-trading-test-"))
    env["OTEL_TRADING_SPOOL_DIR"] = str(scratch / "spool")  # a spool of its own: no test replays another's
    env["OTEL_TRADING_LOCAL_DIR"] = str(scratch / "local")  # the embedded default never writes into the checkout
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
    # its own process group: a program that times out is stopped with the children it started (a
    # multiprocessing pool's workers would otherwise outlive it, waiting for work forever)
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


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


# every trading instrument and its unit, as exported (CONTRACT.md "Metric names")
METRIC_UNITS = {
    "trading.orders": "{order}",
    "trading.order.rejections": "{order}",
    "trading.fills": "{fill}",
    "trading.order.ack.duration": "s",
    "trading.order.fill.duration": "s",
    "trading.tick_to_trade.duration": "s",
    "trading.order.slippage": "{bp}",
    "trading.pnl": "{currency}",
    "trading.positions.open": "{position}",
    "trading.market_data.ticks": "{tick}",
    "trading.pipeline.stage.processed": "{event}",
    "trading.pipeline.stage.lag": "s",
    "trading.pipeline.stage.staleness": "s",
}


class Spans:
    def __init__(self, sampler=None):
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def finished(self):
        return list(self.exporter.get_finished_spans())

    def named(self, name):
        found = [s for s in self.finished() if s.name == name]
        assert found, f"no span {name!r} in {[s.name for s in self.finished()]}"
        return found[-1]


def exported(reader) -> dict:
    """{metric name: Metric} from one collection."""
    data = reader.get_metrics_data()
    out = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = m
    return out


def accounted(delivered: int, dropped: int, total: int) -> bool:
    """Every item delivered or counted as dropped. The SDK's queue checks "full" and then appends
    without a lock, so a worker popping in between can make one count a drop that evicted nothing
    (or, with many producers, the reverse): allow that race a few items, never a silent loss of many."""
    return abs(delivered + dropped - total) <= max(3, total // 500)
