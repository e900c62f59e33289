"""``otel-trading doctor``: the effective configuration, where each value came
from, what is invalid, and whether the OTLP endpoints accept a connection."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Sequence
from urllib.parse import urlparse

from otel_trading import config as settings_module

_DEFAULT_ENDPOINTS = {"grpc": "http://localhost:4317", "http/protobuf": "http://localhost:4318"}


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="otel-trading doctor",
        description="Show the effective configuration and where each value came from, report invalid values, "
        "and check that the OTLP endpoints accept a connection. Exit status 1 when something is wrong.",
    ).parse_args(argv)
    effective = settings_module.load(dict(os.environ))  # a copy: doctor reports (bad values are also dropped from os.environ)
    print("otel-trading doctor\n\nEffective configuration (value, source):")
    for s in settings_module.SETTINGS:
        value = getattr(effective, s.name)
        source = effective.sources[s.name]
        if value is None:
            continue
        shown = settings_module.shown(s, value, limit=None).strip("'")  # secrets, passwords in URLs, tokens masked
        print(f"  {s.env:45} {shown:40} ({source})")
    print(f"\n  sampler: {_sampler_description(effective)}")
    failures = [f"invalid: {p}" for p in effective.problems]
    for signal in ("traces", "metrics", "logs"):
        exporters = getattr(effective, f"{signal}_exporter")
        if not any(name.startswith("otlp") for name in exporters):
            continue
        from otel_trading.redaction import (
            get_redactor,  # late: SDK modules read the (now checked) environment
        )

        ok = _reachable(_endpoint(effective, signal))
        endpoint = get_redactor().redact_text(_endpoint(effective, signal))
        print(f"  {signal:8} OTLP endpoint {endpoint}: {'accepts connections' if ok else 'NOT reachable'}")
        if not ok:
            failures.append(f"{signal}: OTLP endpoint {endpoint} does not accept a connection")
    if failures:
        print("\nProblems:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print("\nNo problems found.")
    return 0


def _sampler_description(effective) -> str:
    """What the providers build from OTEL_TRADING_SAMPLER / _ARG, with its effective rules."""
    from otel_trading.bootstrap.providers import sampler

    built = sampler(effective)
    return built.get_description() if built is not None else "ParentBased{root:AlwaysOnSampler} (the SDK's default)"


def _endpoint(effective, signal: str) -> str:
    protocol = getattr(effective, f"otlp_{signal}_protocol") or effective.otlp_protocol or "grpc"
    return getattr(effective, f"otlp_{signal}_endpoint") or effective.otlp_endpoint or _DEFAULT_ENDPOINTS[protocol]


def _reachable(endpoint: str, timeout: float = 1.0) -> bool:
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False
