"""Python's own error output (uncaught exceptions in the program, threads, ``__del__``, asyncio tasks) is redacted;
the traceback is still printed and the exit code is Python's."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from support import clean_env, otlp_env, run_python

from otel_trading import excepthooks
from otel_trading.redaction import Redactor

TOKEN = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
PASSWORD = "Zq7Kp2Rt9Wx4Ym6Nv3"

UNCAUGHT = f"""
import sys
def place_order():
    raise {{exc}}("venue rejected key {TOKEN} at https://bot:{PASSWORD}@broker.example.com/v1")
print("APP-STARTED", flush=True)
place_order()
"""


@pytest.mark.slow
@pytest.mark.parametrize("exc,exit_code", [("ValueError", 1), ("KeyboardInterrupt", -2)])
def test_an_uncaught_exception_prints_its_traceback_redacted_and_keeps_the_exit_code(otlp, exc, exit_code):
    plain = subprocess.run([sys.executable, "-c", UNCAUGHT.format(exc=exc)], env=clean_env(), capture_output=True, text=True, timeout=60)
    result = run_python(UNCAUGHT.format(exc=exc), otlp_env(otlp))
    assert plain.returncode == result.returncode == exit_code and "APP-STARTED" in result.stdout
    assert "Traceback (most recent call last):" in result.stderr and 'line 6, in <module>' in result.stderr and "in place_order" in result.stderr
    assert f"{exc}: venue rejected key *** at https://bot:***@broker.example.com/v1" in result.stderr
    assert TOKEN not in result.stderr + result.stdout and PASSWORD not in result.stderr + result.stdout
    assert TOKEN in plain.stderr  # what Python prints without us


@pytest.mark.slow
def test_a_hook_the_app_installs_later_and_chains_prints_redacted_through_ours(otlp):
    app = f"""
import sys
previous = sys.excepthook
def tracker(*exc_info):  # an error tracker: records, then hands on to the hook it found
    print("TRACKED", exc_info[0].__name__, flush=True)
    previous(*exc_info)
sys.excepthook = tracker
raise RuntimeError("login failed password={PASSWORD}")
"""
    result = run_python(app, otlp_env(otlp))
    assert result.returncode == 1 and "TRACKED RuntimeError" in result.stdout
    assert "RuntimeError: login failed password=***" in result.stderr and PASSWORD not in result.stderr


@pytest.mark.slow
def test_an_asyncio_task_exception_never_retrieved_is_logged_redacted(otlp):
    app = f"""
import asyncio, gc
async def fails():
    raise ConnectionError("ws closed token={PASSWORD}")
async def main():
    task = asyncio.ensure_future(fails())
    await asyncio.sleep(0.05)
    del task
    gc.collect()
asyncio.run(main())
print("APP-OK", flush=True)
"""
    result = run_python(app, otlp_env(otlp, OTEL_LOGS_EXPORTER="otlp"))
    assert result.returncode == 0 and "APP-OK" in result.stdout
    rendered = result.stdout + result.stderr  # asyncio's logger, through otel-trading's stdlib path (JSON lines on stdout)
    assert "Task exception was never retrieved" in rendered and "ConnectionError: ws closed token=***" in rendered
    record = otlp.wait_for(lambda r: next((lr for lr in r.logs() if "never retrieved" in str(lr.body)), None))
    assert record is not None
    everything = result.stdout + result.stderr + "".join(str(r.SerializeToString()) for r in otlp.requests["logs"])
    assert PASSWORD not in everything


def test_only_pythons_default_hooks_are_replaced_and_nothing_when_redaction_is_off(monkeypatch):
    def apps_own(*args):
        return None

    monkeypatch.setattr(sys, "excepthook", apps_own)
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
    excepthooks.install(Redactor(enabled=False))
    assert threading.excepthook is threading.__excepthook__ and sys.unraisablehook is sys.__unraisablehook__
    excepthooks.install(Redactor())
    assert sys.excepthook is apps_own  # installed before us: the app decides what it prints
    assert threading.excepthook is not threading.__excepthook__ and sys.unraisablehook is not sys.__unraisablehook__


def test_a_thread_exception_is_printed_like_python_does_redacted(monkeypatch, capsys):
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    excepthooks.install(Redactor())

    def fails():
        raise ValueError(f"key {TOKEN}")

    def exits():
        raise SystemExit(3)

    for target in (fails, exits):
        worker = threading.Thread(target=target, name="feed")
        worker.start()
        worker.join()
    err = capsys.readouterr().err
    assert err.startswith("Exception in thread feed:\nTraceback (most recent call last):\n") and err.endswith("ValueError: key ***\n")
    assert err.count("Exception in thread") == 1  # SystemExit ends a thread silently, as in Python
