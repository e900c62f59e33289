"""The ``opentelemetry_distro`` entry point: otel-trading's defaults, never the user's values overridden."""

from __future__ import annotations

import os
from functools import lru_cache

from opentelemetry.instrumentation.dependencies import (
    DependencyConflict,
    DependencyConflictError,
    get_dependency_conflicts,
)
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.instrumentation.environment_variables import (
    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS,
)

from otel_trading import config as settings
from otel_trading.instrumentation import DEPENDENCIES

# Installed by the configurator instead: structlog and logging by otel_trading.logs.install(),
# which builds on them and adds trace ids to rendered lines; system metrics by
# otel_trading.trading.metrics.install(), only when OTEL_TRADING_SYSTEM_METRICS asks for them.
_REPLACED_INSTRUMENTORS = frozenset({"structlog", "logging", "system_metrics"})

_UNSET = object()
_users_disabled: object = _UNSET  # the user's OTEL_PYTHON_DISABLED_INSTRUMENTATIONS while the loader is handed ours


class OtelTradingDistro(BaseDistro):
    def _configure(self, **kwargs):
        settings.apply_defaults()
        settings.load()  # validate now: bad values are reported and removed before any SDK module reads them
        # Beside another distro's configurator, ours is the one that runs.
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", "otel_trading")
        _hand_loader_skipped_instrumentors()

    def load_instrumentor(self, entry_point, **kwargs):
        if entry_point.name in _REPLACED_INSTRUMENTORS:
            return
        if entry_point.value.startswith("otel_trading.") and entry_point.name in DEPENDENCIES:
            # our instrumentors' own check (see LibraryInstrumentor), made before importing them: a bot
            # without ccxt or alpaca-py does not load their instrumentors at every start
            conflict = _conflict(DEPENDENCIES[entry_point.name])
            if conflict:
                raise DependencyConflictError(conflict)
        super().load_instrumentor(entry_point, **kwargs)


def _hand_loader_skipped_instrumentors() -> None:
    """Add to OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, for the loader's read only, the instrumentors
    ``load_instrumentor`` would skip anyway: the replaced ones and ours whose library is not installed.

    ``opentelemetry-instrument`` parses each instrumentor's distribution metadata twice before it
    asks the distro (~2 M instructions per entry point at every start); a disabled name it skips
    unread. A library installed at a version outside the range is left to ``load_instrumentor``,
    whose conflict the loader logs as an error. :func:`restore_disabled_instrumentations` puts the
    user's value back right after the loader read it, so the app and its subprocesses never see ours.
    """
    global _users_disabled
    missing = [name for name, requirements in DEPENDENCIES.items() if _not_installed(requirements)]
    _users_disabled = os.environ.get(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS)
    names = [_users_disabled, *sorted(_REPLACED_INSTRUMENTORS), *missing]
    os.environ[OTEL_PYTHON_DISABLED_INSTRUMENTATIONS] = ",".join(name for name in names if name)


def _not_installed(requirements: tuple[str, ...]) -> bool:
    conflict = _conflict(requirements)
    return conflict is not None and conflict.found is None


@lru_cache(maxsize=None)
def _conflict(requirements: tuple[str, ...]) -> DependencyConflict | None:
    """One instrumentor's dependency check, made once: the distro needs it twice at start (for the
    loader's disabled list, then in ``load_instrumentor``), and each reads the library's metadata (~2-4 ms)."""
    return get_dependency_conflicts(requirements)


def restore_disabled_instrumentations() -> None:
    """The ``opentelemetry_pre_instrument`` entry point: the loader calls it right after reading
    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS; the user's value (or its absence) is restored."""
    global _users_disabled
    if _users_disabled is _UNSET:  # another distro ran: nothing of ours to undo
        return
    if _users_disabled is None:
        os.environ.pop(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, None)
    else:
        os.environ[OTEL_PYTHON_DISABLED_INSTRUMENTATIONS] = str(_users_disabled)
    _users_disabled = _UNSET
