"""The audit trail in one process: no level setting filters audit records; every one is in the chain file."""

from __future__ import annotations

import json
import logging
import os
import threading

import pytest
import structlog

from otel_trading.cli.audit import audit_files, check
from otel_trading.logs import AUDIT, get_logger
from otel_trading.logs import audit as audit_module
from otel_trading.logs.audit import AuditTrail, line_hash
from otel_trading.logs.testing import LogCapture

pytestmark = pytest.mark.usefixtures("clean_logging")


def trail_lines(directory) -> list[dict]:
    out = []
    for path in audit_files([str(directory)]):
        with open(path, "rb") as f:
            out += [json.loads(line) for line in f]
    return out


def test_level_error_still_writes_and_exports_every_audit_record():
    with LogCapture(log_level="error") as cap:
        log = get_logger("desk")
        log.audit("limit raised", user="jdoe", api_key="k-123")
        log.info("not shown")
        log.log(AUDIT, "via log()")
        risk = logging.getLogger("risk")
        risk.setLevel(logging.CRITICAL)  # the app's own stdlib level
        risk.log(AUDIT, "std audit %s", 1)
        logging.disable(logging.ERROR)  # and the global switch
        try:
            logging.log(AUDIT, "root audit")
        finally:
            logging.disable(logging.NOTSET)
        risk.error("std error, filtered by the app's level")
        events = ["limit raised", "via log()", "std audit 1", "root audit"]
        lines = trail_lines(cap.audit_dir)
        assert [line["event"] for line in lines] == events
        assert [line["audit.seq"] for line in lines] == [1, 2, 3, 4]
        assert lines[0]["api_key"] == "***" and lines[0]["user"] == "jdoe"  # redacted like every line
        exported = {r.log_record.body: r.log_record for r in cap.records()}
        assert sorted(exported) == sorted(events)
        for seq, event in enumerate(events, 1):
            record = exported[event]
            assert record.severity_text == "AUDIT"
            assert record.attributes["audit.seq"] == seq
            assert len(record.attributes["audit.sha256"]) == 64
        assert [line["event"] for line in cap.lines()] == events  # the console too
        assert "audit trail OK: 4 records" in check(audit_files([cap.audit_dir]))


def test_app_structlog_filtering_logger_above_audit_keeps_audit():
    with LogCapture() as cap:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
        log = get_logger("app")
        log.info("filtered")
        log.audit("kept", who="me")
        log.log(AUDIT, "kept too")
        assert [line["event"] for line in trail_lines(cap.audit_dir)] == ["kept", "kept too"]
        assert sorted(r.log_record.body for r in cap.records()) == ["kept", "kept too"]


def test_stdlib_audit_survives_an_app_basicconfig():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with LogCapture(log_level="error") as cap:
            logging.basicConfig(level=logging.CRITICAL, force=True)
            logging.getLogger("x").log(AUDIT, "after basicConfig")
            assert [line["event"] for line in trail_lines(cap.audit_dir)] == ["after basicConfig"]
            assert [r.log_record.attributes["audit.seq"] for r in cap.records()] == [1]
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_threads_share_one_unbroken_chain(tmp_path):
    trail = AuditTrail(str(tmp_path), fsync="off", max_bytes=20_000)

    def work(t: int) -> None:
        for i in range(200):
            trail.append({"event": "fill", "thread": t, "i": i})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trail.close()
    lines = trail_lines(tmp_path)
    assert [line["audit.seq"] for line in lines] == list(range(1, 801))
    assert len(audit_files([str(tmp_path)])) > 1  # rotated, nothing deleted
    assert "800 records" in check(audit_files([str(tmp_path)]))


@pytest.mark.parametrize(("mode", "syncs"), [("record", 7), ("off", 0)])
def test_fsync_per_record_or_never(tmp_path, monkeypatch, mode, syncs):
    calls = []
    monkeypatch.setattr(audit_module, "_sync", lambda fd: calls.append(threading.current_thread().name))
    trail = AuditTrail(str(tmp_path), fsync=mode)
    for i in range(7):
        trail.append({"event": "e", "i": i})
        assert len(calls) == (i + 1 if mode == "record" else 0)  # "record": on disk before the call returns
    trail.close()
    assert len(calls) == syncs and len(trail_lines(tmp_path)) == 7


def test_batch_fsync_runs_off_the_logging_thread(tmp_path, monkeypatch):
    synced = threading.Event()
    calls = []

    def sync(fd):
        calls.append(threading.current_thread().name)
        synced.set()

    monkeypatch.setattr(audit_module, "_sync", sync)
    trail = AuditTrail(str(tmp_path), fsync="batch", fsync_interval_ms=20)
    for i in range(7):
        trail.append({"event": "e", "i": i})
    assert synced.wait(10)  # the background thread flushed the batch
    trail.close()
    assert calls and set(calls) == {"otel-trading-audit-fsync"}
    assert len(trail_lines(tmp_path)) == 7


def test_close_then_append_continues_in_the_next_part(tmp_path):
    trail = AuditTrail(str(tmp_path))
    trail.append({"event": "a"})
    first = trail.path
    trail.close()
    trail.append({"event": "b"})
    assert trail.path != first and trail.path.endswith("-0001.log")
    with open(first, "rb") as f:
        last = f.read()
    assert trail_lines(tmp_path)[1]["audit.prev"] == line_hash(last)
    assert "2 records" in check(audit_files([str(tmp_path)]))


def test_unwritable_directory_is_reported_once_and_logging_goes_on(tmp_path, capfd):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with LogCapture(environ={"OTEL_TRADING_AUDIT_DIR": str(blocker / "audit")}) as cap:
        log = get_logger("desk")
        log.audit("one")
        log.audit("two")
        assert sorted(r.log_record.body for r in cap.records()) == ["one", "two"]
    err = capfd.readouterr().err
    assert err.count("otel-trading: cannot write the audit trail") == 1, err


def test_switching_the_file_off_is_said_on_stderr(capfd):
    with LogCapture(environ={"OTEL_TRADING_AUDIT_FILE": "false"}) as cap:
        get_logger("desk").audit("exported only")
        assert [r.log_record.body for r in cap.records()] == ["exported only"]
        assert not os.path.exists(cap.audit_dir) or not os.listdir(cap.audit_dir)
    assert "OTEL_TRADING_AUDIT_FILE=false" in capfd.readouterr().err


def test_a_record_that_cannot_be_rendered_keeps_its_place_in_the_chain(tmp_path):
    class Unprintable:
        def __repr__(self):
            raise RuntimeError("no repr")

    trail = AuditTrail(str(tmp_path), fsync="off")
    trail.append({"event": "before"})
    assert trail.append({"event": "odd", 2**70: Unprintable()}) is not None
    trail.append({"event": "after"})
    trail.close()
    assert [line["event"] for line in trail_lines(tmp_path)] == ["before", "unrenderable audit record", "after"]
    assert "3 records" in check(audit_files([str(tmp_path)]))
