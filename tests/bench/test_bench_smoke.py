"""The benchmark command runs end to end (quick mode) and prints every row; no timing thresholds.

The launched rows whose baseline is the stock distro need the cached reference venv
(``bench/.venv-reference``, created by a full run); without it they say so.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LAUNCHED = [
    "Span, plain OTel API: ours vs stock distro",
    "Span via our helper vs stock distro's plain-API span",
    "Dropped market_data span via helper vs raw ALWAYS_OFF span",
    "structlog line, app's own JSON config",
    "structlog line, structlog unconfigured",
    "stdlib logging line",
    "OTLP log export of every line",
    "ccxt create_order, zero-code instrumentation",
    "Delivered spans/s, busy producer: ours vs",
    "Delivered spans/s, busy producer: ours, export helper process vs",
    "Highest zero-loss paced span rate",
    "Start-up: opentelemetry-instrument python -c pass",
    "import otel_trading (python -X importtime)",
    "breakdown: span, plain API, SDK internal metrics on",
]
NEEDS_REFERENCE = {LAUNCHED[i] for i in (0, 1, 2, 8, 9, 10, 11)}

ROWS = [
    "Span via helper vs raw SDK span",
    "Dropped market-data span vs raw SDK span",
    "JSON log line (6 kv",
    "stdlib log line via bridge",
    "Metric: counter add",
    "ccxt create_order instrumentation vs one helper order span",
    "Dropped ccxt fetch_ticker",
    "Tracing overhead:",
    "Delivered spans/s to loopback receiver",
    "Delivered log records/s to loopback receiver",
    "Export thread capacity",
    "Highest paced span rate with zero loss",
    "4 threads flat out",
    "log lines (JSON + OTLP export)",
    "logs/s offered: spans",  # the collector outage (bench/outage.py)
    "logs/s offered: log records",
]


@pytest.mark.slow
@pytest.mark.timeout(300)  # the subprocess's own bound; a loaded 2-core machine takes 80-180 s
def test_bench_quick_prints_the_whole_table():
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    for row in LAUNCHED:
        line = next((l for l in table.splitlines() if row in l), None)
        assert line is not None, f"missing row {row!r}:\n{table}"
        if row in NEEDS_REFERENCE:
            line = line.replace("n/a (no reference venv)", "")
        assert "n/a" not in line, f"row failed: {line}\n{result.stderr[-2000:]}"
    assert re.search(r"Import hot spots .*otel_trading modules \d+ ms", table)
    for row in ROWS:
        line = next((l for l in table.splitlines() if row in l), None)
        assert line is not None, f"missing row {row!r}:\n{table}"
        assert "n/a" not in line, f"row failed: {line}\n{result.stderr[-2000:]}"
    assert "117,785/s" in table and "+12.3%" in table  # the replaced system's figures beside ours
    assert "undecodable: 0" in table  # the receiver decoded every request of both paths
