"""The distro hands ``opentelemetry-instrument``'s loader, through OTEL_PYTHON_DISABLED_INSTRUMENTATIONS,
the instrumentors it would skip anyway, so the loader does not parse their distributions' metadata;
the user's value is back before any app code runs."""

import logging
import os
from importlib.metadata import EntryPoint

import pytest
from opentelemetry.instrumentation.auto_instrumentation import _load
from support import clean_env, run_python

from otel_trading.bootstrap import distro
from otel_trading.instrumentation import DEPENDENCIES

VAR = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"


def _entry_points(names):
    """The loader's entry point lookup, limited to our pre-instrument hook and instrumentors named ``names``."""
    groups = {
        "opentelemetry_pre_instrument": [EntryPoint("otel_trading", "otel_trading.bootstrap.distro:restore_disabled_instrumentations", "opentelemetry_pre_instrument")],
        "opentelemetry_instrumentor": [EntryPoint(name, f"otel_trading.instrumentation.not_imported:{name}", "opentelemetry_instrumentor") for name in names],
    }
    return lambda group, **_: groups.get(group, [])


@pytest.mark.parametrize("users", [None, "", "requests"])
def test_the_loader_reads_no_metadata_of_skipped_instrumentors_and_the_users_value_comes_back(monkeypatch, caplog, users):
    if users is None:
        monkeypatch.delenv(VAR, raising=False)
    else:
        monkeypatch.setenv(VAR, users)
    monkeypatch.setitem(DEPENDENCIES, "ccxt", ("no-such-library-for-otel-trading >= 1",))  # not installed
    monkeypatch.setitem(DEPENDENCIES, "alpaca", ("alpaca-py >= 99",))  # installed, outside the range
    checked = []
    monkeypatch.setattr(_load, "entry_points", _entry_points(["structlog", "logging", "ccxt", "alpaca", "requests"]))
    monkeypatch.setattr(_load, "get_dist_dependency_conflicts", lambda dist: checked.append(dist))
    monkeypatch.setattr(_load._EntryPointDistFinder, "dist_for", lambda self, ep: ep.name)

    distro._hand_loader_skipped_instrumentors()
    with caplog.at_level(logging.ERROR):
        _load._load_instrumentors(distro.OtelTradingDistro())

    # only what the distro cannot rule out unread: alpaca-py's version, and requests unless the user disabled it
    assert checked == ["alpaca"] + ([] if users == "requests" else ["requests"])
    assert "alpaca-py >= 99" in caplog.text  # a version conflict is still logged as an error
    assert os.environ.get(VAR) == users


def test_without_our_distro_the_hook_leaves_the_variable_alone(monkeypatch):
    monkeypatch.setenv(VAR, "requests")
    distro.restore_disabled_instrumentations()
    assert os.environ[VAR] == "requests"


APP = """
import os
from opentelemetry.instrumentation.requests import RequestsInstrumentor
print(repr(os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")), RequestsInstrumentor().is_instrumented_by_opentelemetry)
"""


@pytest.mark.parametrize("users", [None, "requests"])
def test_a_launched_app_sees_its_own_value_and_its_disabled_instrumentors_stay_off(users):
    env = clean_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", **({VAR: users} if users else {}))
    result = run_python(APP, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [repr(users), str(users is None)]
