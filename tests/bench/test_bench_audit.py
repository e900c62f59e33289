"""`python -m bench.audit --quick` runs and prints a row per fsync mode; no timing thresholds."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_audit_prints_every_mode(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.audit", "--quick", "--dir", str(tmp_path), "--json", str(tmp_path / "out.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""  # no setting rejected, nothing reported
    for row in ("log.info (baseline", "fsync=record", "fsync=batch", "fsync=off"):
        assert any(row in line and line.rstrip().endswith("x") for line in result.stdout.splitlines()), result.stdout
