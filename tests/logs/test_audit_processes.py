"""The audit trail in real programs under ``opentelemetry-instrument``: level ``error`` keeps every audit
record (file and OTLP), several processes write at once, a restart and a forked child continue the chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from support import BIN, clean_env

from otel_trading.cli.audit import audit_files, check

AT_LEVEL_ERROR = """
import logging, os, structlog
from otel_trading.logs import AUDIT
log = structlog.get_logger("desk")
log.audit("limit raised", user="jdoe", api_key="k-123")
log.info("info, filtered")
risk = logging.getLogger("risk")
risk.setLevel(logging.CRITICAL)
risk.log(AUDIT, "std audit %s", "x")
risk.error("error, filtered by the app's level")
pid = os.fork()
if pid == 0:
    log.audit("in the child")
    logging.log(AUDIT, "std in the child")
    raise SystemExit(0)  # atexit flushes the child's OTLP batch (os._exit would skip it; the file has it anyway)
os.waitpid(pid, 0)
log.audit("parent after fork")
"""


def lines_by_file(directory) -> dict[str, list[dict]]:
    out = {}
    for path in audit_files([str(directory)]):
        with open(path, "rb") as f:
            out[path] = [json.loads(line) for line in f]
    return out


def test_level_error_keeps_every_audit_record_in_the_file_and_over_otlp(run_instrumented, otlp, tmp_path):
    proc = run_instrumented(AT_LEVEL_ERROR, OTEL_TRADING_LOG_LEVEL="error", OTEL_TRADING_AUDIT_DIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    events = {"limit raised", "std audit x", "in the child", "std in the child", "parent after fork"}
    files = lines_by_file(tmp_path)
    assert len(files) == 2  # the parent's chain and the child's own file
    parent, child = files.values()
    assert [line["event"] for line in parent] == ["limit raised", "std audit x", "parent after fork"]
    assert [line["event"] for line in child] == ["in the child", "std in the child"]
    assert child[0]["audit.prev"] == parent[2]["audit.prev"]  # the child continues the parent's last line before the fork
    assert parent[0]["api_key"] == "***"
    assert check(audit_files([str(tmp_path)])).startswith("audit trail OK: 5 records in 2 files")
    otlp.wait_for(lambda r: {rec.body for rec in r.logs()} >= events, timeout=15)
    records = otlp.logs()
    assert sorted(rec.body for rec in records) == sorted(events)  # each once, nothing else (info/error filtered)
    written = {line["event"]: line["audit.seq"] for lines in files.values() for line in lines}
    for rec in records:
        assert (rec.severity_number, rec.severity_text) == (12, "AUDIT")
        assert rec.attributes["audit.seq"] == written[rec.body]
    stdout_events = [json.loads(line)["event"] for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sorted(stdout_events) == sorted(events)


WRITER = """
import os, sys, time
from otel_trading.logs import get_logger
log = get_logger("orders")
records, barrier = int(sys.argv[1]), sys.argv[2]
open(os.path.join(barrier, f"ready-{os.getpid()}"), "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(os.path.join(barrier, "go")) and time.monotonic() < deadline:
    time.sleep(0.005)
for i in range(records):
    log.audit("order approved", i=i, pad="x" * 40)
"""


def launch(directory, records: int, barrier) -> subprocess.Popen:
    env = clean_env(
        OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
        OTEL_TRADING_LOG_LEVEL="error", OTEL_TRADING_AUDIT_DIR=str(directory), OTEL_TRADING_LOG_FILE_MAX_BYTES="8192",
        OTEL_TRADING_AUDIT_FSYNC="off",  # ~100 rotations: durability is not what this checks
    )
    command = [str(BIN / "opentelemetry-instrument"), sys.executable, "-c", textwrap.dedent(WRITER), str(records), str(barrier)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # ~5 s: four interpreter start-ups on two cores
def test_processes_writing_at_once_then_a_restart_continue_one_verifiable_trail(tmp_path):
    trail, barrier = tmp_path / "audit", tmp_path / "barrier"
    barrier.mkdir()
    procs = [launch(trail, 1000, barrier) for _ in range(3)]
    deadline = time.monotonic() + 30
    while len(os.listdir(barrier)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    (barrier / "go").touch()  # all three write at the same time
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    files = lines_by_file(trail)
    runs: dict[str, list[int]] = {}
    for path, lines in files.items():
        runs.setdefault(os.path.basename(path).rsplit("-", 1)[0], []).extend(line["i"] for line in lines)
    assert len(runs) == 3 and all(sorted(i) == list(range(1000)) for i in runs.values())  # each process: all, in its own files
    assert len(files) > 3  # rotated into parts, none deleted
    assert "3000 records" in check(audit_files([str(trail)]))

    newest = audit_files([str(trail)])[-1]
    with open(newest, "rb") as f:
        last = json.loads(f.read().splitlines()[-1])
    restart = launch(trail, 5, barrier)
    _, err = restart.communicate(timeout=60)
    assert restart.returncode == 0, err
    new_file = audit_files([str(trail)])[-1]
    first = lines_by_file(trail)[new_file][0]
    assert first["audit.seq"] == last["audit.seq"] + 1  # continues from the newest file's last line
    assert "3005 records" in check(audit_files([str(trail)]))
