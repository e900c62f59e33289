"""``python -m otel_trading.demo`` / ``otel-trading demo``: a simulated trading pipeline.

Runs for ``--duration`` seconds and stops by itself. Telemetry goes wherever
the process is configured to send it:

* under ``opentelemetry-instrument`` (or after the app called ``configure()``):
  unchanged, to that configuration;
* alone, with a collector answering at the OTLP endpoint: OTLP, via ``configure()``;
* alone, with no collector (or ``--local``): the embedded default, JSON-lines
  files under ``--dir`` (default ``./otel-trading-demo``) and a report on the
  terminal at the end: order traces as trees, sampling decisions, metric totals.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from otel_trading.export.localfiles import DEMO_DIR as DEFAULT_DIR

DEFAULT_SAMPLER_ARG = "market_data=0.05"

__all__ = ["main", "parse_args", "collector_reachable"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="otel-trading demo",
        description="Run a simulated trading pipeline (feed -> strategy -> risk -> order -> venue ack/fill -> portfolio) "
        "instrumented with otel-trading. With no collector reachable it writes telemetry to local files and prints a report.",
    )
    parser.add_argument("--duration", type=float, default=5.0, metavar="SECONDS", help="how long to run (default 5)")
    parser.add_argument("--rate", type=float, default=200.0, metavar="TICKS", help="market data ticks per second (default 200)")
    parser.add_argument("--seed", type=int, default=42, help="random seed: same seed, same orders and outcomes (default 42)")
    parser.add_argument("--local", action="store_true", help="write telemetry to local files even if a collector is reachable")
    parser.add_argument("--dir", default=None, metavar="DIR", help=f"folder for the local files (default ./{DEFAULT_DIR})")
    parser.add_argument("--traces", type=int, default=3, metavar="N", help="order traces to print in the report (default 3)")
    parser.add_argument("--verbose", action="store_true", help="print every log line while running (default: warnings and errors)")
    parser.add_argument(
        "--exchange",
        choices=("sim", "ccxt"),
        default="sim",
        help="where orders go: the in-process simulated venue (default) or ccxt against a local fake exchange "
        "(needs `pip install otel-trading[ccxt]`; traced by otel-trading's ccxt instrumentation)",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.duration <= 0 or args.rate <= 0:
        parser.error("--duration and --rate must be positive")
    return args


def _endpoint() -> str:
    env = os.environ
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        return endpoint
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
    return "http://localhost:4318" if protocol.startswith("http") else "http://localhost:4317"


def collector_reachable(endpoint: str | None = None, timeout: float = 0.3) -> bool:
    """True when something accepts a TCP connection at the OTLP endpoint (a quick check, < timeout)."""
    parsed = urlparse(endpoint or _endpoint())
    host = parsed.hostname or "localhost"
    port = parsed.port or (443 if parsed.scheme == "https" else 4317)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _configure_structlog(verbose: bool) -> None:
    """The demo configures structlog as an app would: console lines, warnings and errors only unless --verbose.

    otel-trading's processor goes in before the app's renderer, so every event is
    still exported (to the collector or the local files) whatever is printed.
    """
    import logging

    import structlog

    renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    quiet = {"debug", "info", "msg", "business", "audit"}

    def render(logger, method_name, event_dict):
        if not verbose and method_name in quiet:
            raise structlog.DropEvent
        return renderer(logger, method_name, event_dict)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S.%f", utc=False),
            render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def _already_configured() -> bool:
    """True under opentelemetry-instrument or when the app set up an SDK TracerProvider itself."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    return isinstance(trace.get_tracer_provider(), TracerProvider)


def _local_exporters_registered() -> bool:
    from opentelemetry.util._importlib_metadata import entry_points

    return all(
        any(ep.name == "local" for ep in entry_points(group=f"opentelemetry_{signal}_exporter"))
        for signal in ("traces", "metrics", "logs")
    )


def _setup(mode: str, folder: Path):
    """Configure telemetry for a demo run alone; returns the Telemetry handle."""
    from otel_trading.bootstrap import configure as sdk

    keywords: dict[str, Any] = {}
    if "OTEL_SERVICE_NAME" not in os.environ:
        keywords["service_name"] = "trading-demo"
    if "OTEL_TRACES_SAMPLER" not in os.environ:
        keywords["traces_sampler"] = "parentbased_trading"
        keywords["traces_sampler_arg"] = DEFAULT_SAMPLER_ARG
    if mode == "local":
        keywords["local_dir"] = str(folder)
        keywords.setdefault("metric_export_interval", 1000)
        registered = _local_exporters_registered()
        name = "local" if registered else "none"
        keywords.update(traces_exporter=name, metrics_exporter=name, logs_exporter=name)
        telemetry = sdk.configure(**keywords)
        if not registered:  # entry points not installed (running from a checkout): add the exporters by hand
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            from otel_trading.export.localfiles import (
                LocalLogExporter,
                LocalMetricExporter,
                LocalSpanExporter,
            )

            if telemetry.tracer_provider is not None:
                telemetry.tracer_provider.add_span_processor(BatchSpanProcessor(LocalSpanExporter(folder)))
            if telemetry.meter_provider is not None:
                telemetry.meter_provider.add_metric_reader(
                    PeriodicExportingMetricReader(LocalMetricExporter(folder), export_interval_millis=1000)
                )
            if telemetry.logger_provider is not None:
                telemetry.logger_provider.add_log_record_processor(BatchLogRecordProcessor(LocalLogExporter(folder)))
        return telemetry
    return sdk.configure(**keywords)


class _Minimal:
    """A stand-in Telemetry handle for ``_minimal_setup``."""

    def __init__(self, *providers):
        self.providers = providers

    def shutdown(self) -> None:
        for provider in self.providers:
            provider.shutdown()


def _minimal_setup(folder: Path) -> _Minimal:
    """Providers with the local exporters and the trading sampler, without otel_trading.bootstrap.configure."""
    from opentelemetry import _logs, metrics, trace
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_trading.export.localfiles import (
        LocalLogExporter,
        LocalMetricExporter,
        LocalSpanExporter,
    )
    from otel_trading.sampling import parentbased_trading_sampler

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "trading-demo")})
    tracer_provider = TracerProvider(
        sampler=parentbased_trading_sampler(os.environ.get("OTEL_TRACES_SAMPLER_ARG", DEFAULT_SAMPLER_ARG)),
        resource=resource,
        shutdown_on_exit=False,
    )
    tracer_provider.add_span_processor(BatchSpanProcessor(LocalSpanExporter(folder)))
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(LocalMetricExporter(folder), export_interval_millis=1000)],
        shutdown_on_exit=False,
    )
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(LocalLogExporter(folder)))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _logs.set_logger_provider(logger_provider)
    return _Minimal(tracer_provider, logger_provider, meter_provider)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry of ``otel-trading demo`` and ``python -m otel_trading.demo``; returns the exit status."""
    args = parse_args(argv)
    folder = Path(args.dir or DEFAULT_DIR)
    if _already_configured():
        mode = "configured"
    elif args.local:
        mode = "local"
    elif collector_reachable():
        mode = "otlp"
    else:
        mode = "local"
        print(f"otel-trading demo: no collector at {_endpoint()}; writing telemetry to {folder}/ instead", file=sys.stderr)

    _configure_structlog(args.verbose)
    telemetry = None
    if mode == "local":
        from otel_trading.export import localfiles

        localfiles.clear(folder)  # a fresh report: only this run's files
    if mode != "configured":
        try:
            telemetry = _setup(mode, folder)
        except Exception as exc:  # noqa: BLE001 - the demo must run even if the set-up has a problem
            print(f"otel-trading demo: telemetry set-up failed ({exc!r}); using a minimal local set-up", file=sys.stderr)
            mode = "local"
            telemetry = _minimal_setup(folder)

    from otel_trading.demo import pipeline, report

    venue = None
    if args.exchange == "ccxt":
        try:
            venue, exchange = _ccxt_exchange()
        except ImportError:
            print("otel-trading demo: --exchange ccxt needs ccxt: pip install 'otel-trading[ccxt]'", file=sys.stderr)
            return 2
    config = pipeline.Config(duration=args.duration, rate=args.rate, seed=args.seed, exchange=exchange if venue else None)
    print(
        f"otel-trading demo: {args.duration:g} s of simulated trading at {args.rate:g} ticks/s, seed {args.seed} "
        f"({'telemetry to ' + str(folder) + '/' if mode == 'local' else 'telemetry via ' + mode + ' set-up'})",
        flush=True,
    )
    started = time.monotonic()
    try:
        stats = pipeline.run(config)
    finally:
        if venue is not None:
            venue.stop()
    elapsed = time.monotonic() - started

    if telemetry is not None:
        telemetry.force_flush()  # everything exported now; the exit hook shuts the providers down
    else:
        from otel_trading.bootstrap.configure import current

        handle = current()
        if handle is not None:
            handle.force_flush()  # bounded per signal by OTEL_TRADING_SHUTDOWN_TIMEOUT: a down collector cannot hold the report
        else:
            _flush_global()
        if handle is not None and handle.local_dir is not None:  # opentelemetry-instrument, no collector: the embedded default
            mode, folder = "local", handle.local_dir
        elif "local" in os.environ.get("OTEL_TRACES_EXPORTER", ""):  # e.g. opentelemetry-instrument with the local exporters
            from otel_trading.export import localfiles

            mode, folder = "local", localfiles.local_dir()
    if mode == "local":
        report.print_local_report(stats, folder, elapsed, traces=args.traces)
    else:
        report.print_brief_report(stats, elapsed, mode, _spooled())
    return 0


def _spooled() -> dict[str, int]:
    """Items of each signal this run put in the disk spool because the collector did not take them."""
    from otel_trading.bootstrap.configure import current

    handle = current()
    out: dict[str, int] = {}
    for signal, processors in (handle.processors if handle is not None else {}).items():
        for processor in processors:
            exporter = processor._batch_processor._exporter
            tally = getattr(exporter, "tally", None)
            if tally is None:
                continue
            exporter.force_flush(2000)  # the hand-off sent or spooled, so the count is this run's
            if tally.spooled:
                out[signal] = out.get(signal, 0) + tally.spooled
    return out


def _ccxt_exchange():
    """The local fake exchange and a factory of ccxt clients trading on it, instrumented as
    ``opentelemetry-instrument`` does (unless it already did)."""
    import ccxt

    from otel_trading.demo.fake_exchange import FakeExchange
    from otel_trading.instrumentation.ccxt import CcxtInstrumentor

    if not CcxtInstrumentor().is_instrumented_by_opentelemetry:
        CcxtInstrumentor().instrument()
    try:  # the HTTP calls under the ccxt spans, when the requests instrumentation is installed
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        if not RequestsInstrumentor().is_instrumented_by_opentelemetry:
            RequestsInstrumentor().instrument()
    except ImportError:
        pass
    venue = FakeExchange(slow_seconds=0.2).start()

    def exchange():
        client = venue.route(ccxt.binance(venue.ccxt_config(timeout=5_000)))
        client.load_markets()
        return client

    return venue, exchange


def _flush_global() -> None:
    """Under opentelemetry-instrument: flush so short runs export everything (the SDK also does at exit)."""
    from opentelemetry import metrics, trace

    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        flush = getattr(provider, "force_flush", None)
        if flush is not None:
            try:
                flush()
            except Exception:  # noqa: BLE001 - telemetry trouble must not fail the demo
                pass
    try:
        from opentelemetry._logs import get_logger_provider

        flush = getattr(get_logger_provider(), "force_flush", None)
        if flush is not None:
            flush()
    except Exception:  # noqa: BLE001
        pass
