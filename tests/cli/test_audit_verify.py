"""`otel-trading audit verify`: an intact trail passes; each kind of tampering is named at its line."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess

import pytest
from support import BIN

from otel_trading.cli.audit import main as audit_main
from otel_trading.logs.audit import AuditTrail, line_hash


def write_trail(directory, records: int, max_bytes: int = 1500) -> list[str]:
    """One process's chain: ``records`` audit lines rotated into several parts; the part paths, oldest first."""
    trail = AuditTrail(str(directory), max_bytes=max_bytes)
    paths = []
    for i in range(records):
        trail.append({"event": "order approved", "order_id": f"o-{i}", "user": "jdoe", "level": "audit"})
        if trail.path not in paths:
            paths.append(trail.path)
    trail.close()
    return paths


def verify(*paths) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = audit_main(["verify", *map(str, paths)])
    return code, out.getvalue()


def lines_of(path) -> list[bytes]:
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


def rewrite(path, lines: list[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(b"".join(lines))


@pytest.fixture
def trail(tmp_path):
    paths = write_trail(tmp_path, 40)
    assert len(paths) >= 4, paths  # several rotated parts
    return tmp_path, paths


def test_intact_trail_passes_with_a_one_line_summary(trail):
    directory, paths = trail
    result = subprocess.run([str(BIN / "otel-trading"), "audit", "verify", str(directory)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"audit trail OK: 40 records in {len(paths)} files (1 processes), last seq 40\n"
    os.remove(paths[1])
    result = subprocess.run([str(BIN / "otel-trading"), "audit", "verify", *paths[:1], *paths[2:]], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and result.stdout.startswith(f"audit trail BROKEN at {paths[2]}:1: missing file")


def test_files_are_owner_only(trail):
    directory, paths = trail
    assert os.stat(directory).st_mode & 0o777 == 0o700
    assert all(os.stat(p).st_mode & 0o777 == 0o600 for p in paths)


def test_edited_line_is_named(trail):
    directory, paths = trail
    lines = lines_of(paths[1])
    lines[1] = lines[1].replace(b'"user":"jdoe"', b'"user":"mallory"')
    rewrite(paths[1], lines)
    code, out = verify(directory)
    assert code == 1
    assert f"BROKEN at {paths[1]}:2: altered" in out, out


def test_edited_last_line_of_a_rotated_part_is_named(trail):
    directory, paths = trail
    lines = lines_of(paths[0])
    lines[-1] = lines[-1].replace(b"order approved", b"order rejected")
    rewrite(paths[0], lines)
    code, out = verify(directory)
    assert code == 1 and f"{paths[0]}:{len(lines)}: altered" in out, out


def test_edited_sequence_number_is_named(trail):
    directory, paths = trail
    lines = lines_of(paths[2])
    record = json.loads(lines[0])
    lines[0] = lines[0].replace(b'"audit.seq":%d' % record["audit.seq"], b'"audit.seq":%d' % (record["audit.seq"] + 5))
    rewrite(paths[2], lines)
    code, out = verify(directory)
    assert code == 1 and f"{paths[2]}:1: altered" in out, out


def test_unparseable_line_is_named(trail):
    directory, paths = trail
    lines = lines_of(paths[1])
    lines[2] = b"garbage\n"
    rewrite(paths[1], lines)
    code, out = verify(directory)
    assert code == 1 and f"{paths[1]}:3: altered: not an audit line" in out, out


def test_reordered_lines_are_named(trail):
    directory, paths = trail
    lines = lines_of(paths[1])
    lines[1], lines[2] = lines[2], lines[1]
    rewrite(paths[1], lines)
    code, out = verify(directory)
    assert code == 1 and f"{paths[1]}:2: reordered" in out, out


def test_deleted_line_is_named_with_the_missing_sequence_numbers(trail):
    directory, paths = trail
    lines = lines_of(paths[1])
    gone = json.loads(lines[2])["audit.seq"]
    del lines[2]
    rewrite(paths[1], lines)
    code, out = verify(directory)
    assert code == 1 and f"{paths[1]}:3: missing: seq {gone} between {paths[1]}:2 and this line" in out, out


def test_truncated_rotated_part_is_named(trail):
    directory, paths = trail
    lines = lines_of(paths[0])
    rewrite(paths[0], lines[:-2])  # whole lines cut from the end: the next part no longer links
    code, out = verify(directory)
    assert code == 1 and f"{paths[1]}:1: missing: seq" in out, out


def test_line_cut_in_the_middle_is_named(trail):
    directory, paths = trail
    lines = lines_of(paths[1])
    rewrite(paths[1], lines[:-1] + [lines[-1][:20]])
    code, out = verify(directory)
    assert code == 1 and f"{paths[1]}:{len(lines)}: truncated" in out, out


def test_deleted_rotated_file_is_named(trail):
    directory, paths = trail
    os.remove(paths[2])
    code, out = verify(directory)
    assert code == 1 and f"{paths[3]}:1: missing file: part 0002" in out, out


def test_deleted_first_part_is_named(trail):
    directory, paths = trail
    os.remove(paths[0])
    code, out = verify(directory)
    assert code == 1 and f"{paths[1]}:1: missing file: part 0000" in out, out


def test_restart_continues_the_chain_and_a_deleted_earlier_run_is_detected(tmp_path):
    first = write_trail(tmp_path, 10)
    second = write_trail(tmp_path, 10)  # a new process (same directory): continues from the newest line
    assert second[0] not in first
    last = lines_of(first[-1])[-1]
    head = json.loads(lines_of(second[0])[0])
    assert head["audit.prev"] == line_hash(last) and head["audit.seq"] == json.loads(last)["audit.seq"] + 1
    code, out = verify(tmp_path)
    assert code == 0 and "20 records" in out, out
    for path in first:
        os.remove(path)
    code, out = verify(tmp_path)
    assert code == 1 and f"{second[0]}:1: missing: the line it continues" in out, out
    # explicit retention: archived earlier files are accepted only at the start, and only when asked
    assert audit_main(["verify", "--allow-missing-start", str(tmp_path)]) == 0


def test_verify_names_nothing_found(tmp_path):
    code, out = verify(tmp_path)
    assert code == 1 and "no audit files" in out
