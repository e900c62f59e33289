"""``otel-trading audit verify PATH...``: check the audit trail's hash chain, name the first broken line.

Each file is one process's chain part (``audit-<start>-<pid>-<part>.log``). Inside a file every
line must name the hash of the line before it and the next sequence number; part N+1 continues
the last line of part N; the first line of a process's part 0 continues a line of another file
(the newest one when the process started, or its parent's last line after a fork) or starts the
trail (``audit.prev`` all zeros, seq 1). So an edited, reordered, missing or cut line, a missing
rotated part, and a whole missing earlier file all break a link, and the first break is named.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from otel_trading.logs.audit import GENESIS, NAME, chain_fields, line_hash, name_key


@dataclass(frozen=True)
class Line:
    path: str
    number: int  # 1-based
    seq: int
    prev: str
    sha: str

    def __str__(self) -> str:
        return f"{self.path}:{self.number}"


class Broken(Exception):
    """The first break in the chain: where and what."""


def audit_files(paths: Sequence[str]) -> list[str]:
    """The audit files named or inside the named directories, oldest first."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += [os.path.join(path, n) for n in os.listdir(path) if NAME.match(n)]
        else:
            files.append(path)
    return sorted(set(files), key=name_key)


def read_lines(path: str) -> list[Line]:
    with open(path, "rb") as f:
        data = f.read()
    raw = data.split(b"\n")
    if raw[-1]:
        raise Broken(f"{path}:{len(raw)}: truncated: the last line has no end (cut off while written, or the file was cut)")
    lines = []
    for number, text in enumerate(raw[:-1], 1):
        fields = chain_fields(text)
        if fields is None:
            raise Broken(f"{path}:{number}: altered: not an audit line (no audit.seq / audit.prev)")
        lines.append(Line(path, number, fields[0], fields[1], line_hash(text + b"\n")))
    return lines


def check(files: Sequence[str], allow_missing_start: bool = False) -> str:
    """Verify ``files``; the one-line summary, or :class:`Broken` naming the first broken line."""
    by_file = {path: read_lines(path) for path in files}
    index = {line.sha: line for lines in by_file.values() for line in lines}
    records = sum(len(lines) for lines in by_file.values())
    runs: dict[tuple, list[str]] = {}
    for path in files:
        key = name_key(path)
        runs.setdefault(key[:2] if len(key) == 3 else key, []).append(path)
    first_file = files[0] if files else None
    for parts in runs.values():
        previous: Line | None = None
        for expected_part, path in enumerate(parts):
            part = name_key(path)[2]
            if part != expected_part:
                missing = f"part {expected_part:04d}" + (f"..{part - 1:04d}" if part - 1 > expected_part else "")
                raise Broken(f"{path}:1: missing file: {missing} of this process's chain is not among the files")
            for line in by_file[path]:
                if previous is None:
                    _check_start(line, index, allow_missing_start and path == first_file)
                else:
                    _check_link(previous, line, index)
                previous = line
    last = max((line.seq for line in index.values()), default=0)
    return f"audit trail OK: {records} records in {len(files)} files ({len(runs)} processes), last seq {last}"


def _check_start(line: Line, index: dict[str, Line], allow_missing_start: bool) -> None:
    if line.prev == GENESIS:
        if line.seq != 1:
            raise Broken(f"{line}: altered: starts the trail but has seq {line.seq}, not 1")
        return
    before = index.get(line.prev)
    if before is None:
        if allow_missing_start:
            return
        raise Broken(f"{line}: missing: the line it continues (seq {line.seq - 1}) is in none of the files (an earlier file was deleted, or it was altered)")
    if line.seq != before.seq + 1:
        raise Broken(f"{line}: altered: seq {line.seq} does not follow seq {before.seq} of {before}")


def _check_link(previous: Line, line: Line, index: dict[str, Line]) -> None:
    if line.prev == previous.sha:
        if line.seq != previous.seq + 1:
            raise Broken(f"{line}: altered: seq {line.seq}, expected {previous.seq + 1}")
        return
    elsewhere = index.get(line.prev)
    if elsewhere is not None:
        raise Broken(f"{line}: reordered: it follows {elsewhere} (seq {elsewhere.seq}) in the chain, not {previous}")
    if line.seq == previous.seq + 1:
        raise Broken(f"{previous}: altered: its hash is not the one {line} names")
    if line.seq > previous.seq + 1:
        gap = f"seq {previous.seq + 1}" + (f"..{line.seq - 1}" if line.seq - 1 > previous.seq + 1 else "")
        raise Broken(f"{line}: missing: {gap} between {previous} and this line (lines deleted or the file cut)")
    raise Broken(f"{line}: altered: seq {line.seq} and its link do not follow {previous} (seq {previous.seq})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="otel-trading audit", description="Tools for the audit trail (OTEL_TRADING_AUDIT_DIR).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    verify = commands.add_parser(
        "verify",
        help="check the hash chain of audit files; exit 1 naming the first missing, reordered or altered line",
        description="Check the hash chain across audit files (rotated parts, restarts, forked children). "
        "Prints one line: the summary (exit 0) or the first broken line as FILE:LINE and what is wrong (exit 1).",
    )
    verify.add_argument("paths", nargs="+", metavar="PATH", help="audit files or directories holding them")
    verify.add_argument(
        "--allow-missing-start", action="store_true",
        help="the oldest file may continue a chain whose earlier files were archived (explicit retention)",
    )
    args = parser.parse_args(argv)
    files = audit_files(args.paths)
    if not files:
        print(f"no audit files in {' '.join(args.paths)}", file=sys.stderr)
        return 1
    try:
        print(check(files, args.allow_missing_start))
    except Broken as broken:
        print(f"audit trail BROKEN at {broken}")
        return 1
    except OSError as exc:
        print(f"audit trail unreadable: {exc}")
        return 1
    return 0
