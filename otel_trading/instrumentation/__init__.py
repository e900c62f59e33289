"""Instrumentors for the libraries trading bots are built on (``opentelemetry_instrumentor`` entry points).

``opentelemetry-instrument`` turns each on when its library is installed;
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=ccxt,alpaca`` turns them off.
"""

from __future__ import annotations

# entry point name -> the library versions its instrumentor supports; here, not in the instrumentor
# modules, so the distro can skip a library that is not installed without importing them.
DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "ccxt": ("ccxt >= 4.0",),
    "alpaca": ("alpaca-py >= 0.30",),
}
