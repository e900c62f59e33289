"""The ``opentelemetry_distro`` entry point: otel-trading's defaults, never the user's values overridden."""

from __future__ import annotations

import os

from opentelemetry.instrumentation.dependencies import DependencyConflictError, get_dependency_conflicts
from opentelemetry.instrumentation.distro import BaseDistro

from otel_trading import config as settings
from otel_trading.instrumentation import DEPENDENCIES

# Installed by the configurator instead: structlog and logging by otel_trading.logs.install(),
# which builds on them and adds trace ids to rendered lines; system metrics by
# otel_trading.trading.metrics.install(), only when OTEL_TRADING_SYSTEM_METRICS asks for them.
_REPLACED_INSTRUMENTORS = frozenset({"structlog", "logging", "system_metrics"})


class OtelTradingDistro(BaseDistro):
    def _configure(self, **kwargs):
        settings.apply_defaults()
        settings.load()  # validate now: bad values are reported and removed before any SDK module reads them
        # Beside another distro's configurator, ours is the one that runs.
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", "otel_trading")

    def load_instrumentor(self, entry_point, **kwargs):
        if entry_point.name in _REPLACED_INSTRUMENTORS:
            return
        if entry_point.value.startswith("otel_trading.") and entry_point.name in DEPENDENCIES:
            # our instrumentors' own check (see LibraryInstrumentor), made before importing them: a bot
            # without ccxt or alpaca-py does not load their instrumentors at every start
            conflict = get_dependency_conflicts(DEPENDENCIES[entry_point.name])
            if conflict:
                raise DependencyConflictError(conflict)
        super().load_instrumentor(entry_point, **kwargs)
