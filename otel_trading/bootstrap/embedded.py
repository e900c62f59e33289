"""The embedded default: no collector configured and none running means local files, not lost telemetry.

Decided once per process, before any exporter is built: when no
``OTEL_EXPORTER_OTLP*_ENDPOINT`` is set and nothing accepts a TCP connection at
the default endpoint (localhost:4317 for grpc, 4318 for http/protobuf; a
bounded ~150 ms check, answered at once by a refusing loopback), the signals set
to ``otlp`` use the ``local`` exporters (OTLP/JSON lines under
OTEL_TRADING_LOCAL_DIR) and one line on stderr says where they go.
"""

from __future__ import annotations

import socket
from pathlib import Path

from otel_trading.config import Settings
from otel_trading.report import report

PROBE_SECONDS = 0.15
_SIGNALS = ("traces", "metrics", "logs")
_decided: dict[tuple, bool] = {}


def _key(settings: Settings) -> tuple:
    return tuple(
        (getattr(settings, f"{s}_exporter"), getattr(settings, f"otlp_{s}_endpoint"), getattr(settings, f"otlp_{s}_protocol"))
        for s in _SIGNALS
    ) + (settings.otlp_endpoint, settings.otlp_protocol, settings.local_fallback, settings.local_dir)


def _port(settings: Settings, signal: str) -> int:
    protocol = getattr(settings, f"otlp_{signal}_protocol") or settings.otlp_protocol or "grpc"
    return 4318 if protocol.startswith("http") else 4317


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("localhost", port), timeout=PROBE_SECONDS):
            return True
    except OSError:
        return False


def use_local(settings: Settings) -> bool:
    """True when the OTLP signals go to local files instead (said once on stderr)."""
    key = _key(settings)
    if key not in _decided:
        _decided[key] = _decide(settings)
    return _decided[key]


def _decide(settings: Settings) -> bool:
    otlp = [s for s in _SIGNALS if "otlp" in (getattr(settings, f"{s}_exporter") or ())]
    if not settings.local_fallback or not otlp:
        return False
    if settings.otlp_endpoint or any(getattr(settings, f"otlp_{s}_endpoint") for s in _SIGNALS):
        return False  # configured explicitly: OTLP as asked (the spool covers the collector being down)
    ports = sorted({_port(settings, s) for s in otlp})
    if any(_answers(port) for port in ports):
        return False
    folder = Path(settings.local_dir).resolve()
    report(
        f"no OTLP endpoint configured and no collector at localhost:{'/'.join(map(str, ports))}: writing {', '.join(otlp)} "
        f"to {folder}/ as OTLP/JSON lines; look with `otel-trading traces --dir {folder}`. "
        "Set OTEL_EXPORTER_OTLP_ENDPOINT to send to a collector (OTEL_TRADING_LOCAL_FALLBACK=false: never fall back)"
    )
    return True
