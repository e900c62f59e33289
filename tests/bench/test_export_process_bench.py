"""The export-helper bench items run end to end (quick sizes) and print their rows; no timing thresholds."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_export_process_bench_quick_prints_its_rows():
    result = subprocess.run(
        [sys.executable, "-m", "bench.export_process", "--quick", "--only", "spans,kill"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for row in ("busy-loop spans, delivered/s", "killed (SIGKILL) halfway"):
        line = next((line for line in lines if row in line), None)
        assert line is not None and "n/a" not in line, result.stdout + result.stderr[-2000:]
    assert "lost 0," in next(line for line in lines if "killed (SIGKILL)" in line)  # a killed helper loses nothing
