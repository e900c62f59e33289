"""Local files and the terminal (issue 11, section 5): owner-only files, no symlink following,
control characters stripped by ``otel-trading traces``, quiet exit when piped into ``head``."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
from support import BIN, clean_env, run_python

APP = """
import structlog
from opentelemetry import trace
with trace.get_tracer("t").start_as_current_span("order \\x1b[2J\\x1b]0;pwned\\x07", attributes={"trading.span.kind": "order", "trading.order.id": "o-1\\x1b[31m\\r\\n", "trading.symbol": "AAPL\\x9b31m"}):
    structlog.get_logger("trading").info("placed", note="\\x1b[5mblink")
"""


def _env(tmp_path, **extra):
    return clean_env(
        OTEL_TRACES_EXPORTER="local",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="local",
        OTEL_TRADING_LOCAL_DIR=str(tmp_path / "data"),
        OTEL_TRADING_LOG_FILES="trading=info",
        OTEL_TRADING_LOG_DIR=str(tmp_path / "logs"),
        **extra,
    )


def test_local_and_channel_files_are_owner_only(tmp_path):
    old = os.umask(0o022)  # a permissive umask, as on most machines
    try:
        result = run_python(APP, _env(tmp_path))
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    for folder in (tmp_path / "data", tmp_path / "logs"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        files = list(folder.iterdir())
        assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), [(f, oct(f.stat().st_mode)) for f in files]


def test_channel_file_is_not_written_through_a_symlink(tmp_path):
    (tmp_path / "logs").mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    (tmp_path / "logs" / "trading.log").symlink_to(victim)
    result = run_python(APP, _env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "untouched\n"
    assert [line for line in result.stderr.splitlines() if "trading.log" in line][0].startswith("otel-trading: cannot write log file")


@pytest.mark.slow
def test_traces_viewer_prints_no_control_characters(tmp_path):
    assert run_python(APP, _env(tmp_path)).returncode == 0
    shown = subprocess.run([str(BIN / "otel-trading"), "traces", "--all", "--dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "order" in shown.stdout and "o-1" in shown.stdout
    assert not any(ch in shown.stdout for ch in "\x1b\x07\x9b\r"), repr(shown.stdout)
    assert all(len(line) < 300 for line in shown.stdout.splitlines())  # no smuggled line breaks inside a span label


def test_piping_into_head_ends_quietly():
    for command in (["settings"], ["--help"]):
        proc = subprocess.Popen([str(BIN / "otel-trading"), *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
        proc.stdout.readline()
        proc.stdout.close()  # what `| head -1` does
        stderr = proc.stderr.read().decode()
        code = proc.wait(timeout=30)
        assert code in (0, 141) and "Traceback" not in stderr and "BrokenPipe" not in stderr, (code, stderr)
