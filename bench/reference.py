"""The reference installation: the stock ``opentelemetry-distro`` in its own venv, created once and cached.

The launched items compare ``opentelemetry-instrument`` with otel-trading's defaults
against what a user gets from ``pip install opentelemetry-distro opentelemetry-exporter-otlp``
at the same OpenTelemetry release set.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "bench", ".venv-reference")
PACKAGES = (
    "opentelemetry-distro==0.66b1",
    "opentelemetry-sdk==1.45.1",
    "opentelemetry-exporter-otlp==1.45.1",
    "structlog>=24.1,<27",
)
_STAMP = os.path.join(VENV, "bench-packages.txt")


def python() -> str:
    return os.path.join(VENV, "bin", "python")


def ready() -> bool:
    """True when the cached venv holds exactly ``PACKAGES``."""
    try:
        with open(_STAMP) as fh:
            return fh.read() == "\n".join(PACKAGES) and os.path.exists(python())
    except OSError:
        return False


def ensure(create: bool) -> str | None:
    """The reference venv's python, creating the venv when ``create``; None (and why, on stderr) otherwise."""
    if ready():
        return python()
    if not create:
        return None
    print(f"  creating the reference venv {os.path.relpath(VENV, ROOT)} ({', '.join(PACKAGES)})", file=sys.stderr, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True, timeout=120)
        subprocess.run([python(), "-m", "pip", "install", "-q", *PACKAGES], check=True, timeout=600, capture_output=True)
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        print(f"  reference venv could not be created: {exc} {detail.decode(errors='replace')[-500:]}", file=sys.stderr, flush=True)
        return None
    with open(_STAMP, "w") as fh:
        fh.write("\n".join(PACKAGES))
    return python()
