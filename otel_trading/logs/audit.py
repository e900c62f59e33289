"""The audit trail: every ``audit`` record, hash-chained, in append-only files that are never deleted.

Audit records are a must-keep class (like orders in the sampler): no log-level setting filters
them (see :func:`keep_audit_records`), and each one is appended to ``<OTEL_TRADING_AUDIT_DIR>``
as well as exported over OTLP. Each line is the record's JSON (redacted like every line) with
two fields in front::

    {"audit.seq":42,"audit.prev":"<sha256 hex of line 41's bytes, newline included>",...}

One file per process (``audit-<start>-<pid>-<part>.log``): no lock is shared between processes,
so a stopped or hung process can never stall another one's audit writes. A new process (or a
forked child) continues the chain from the newest line it can see (the last line of the newest
file, or the parent's last line), so deleting a whole earlier file breaks the link of the next one.
Rotation at ``OTEL_TRADING_LOG_FILE_MAX_BYTES`` opens the next part; nothing is renamed or deleted.

Every line is written with one ``write()`` before the log call returns, so a crashed process
loses nothing. Against power loss, ``OTEL_TRADING_AUDIT_FSYNC``: ``batch`` (default) has a
background thread fsync what was written at most ``OTEL_TRADING_AUDIT_FSYNC_INTERVAL`` ms later
(one fsync per small batch; the log call never waits for the disk), ``record`` fsyncs before
the log call returns (a disk flush per record: 0.3-1.8 ms on the bench's virtual disk), ``off``
leaves it to the OS. ``otel-trading audit verify`` checks the files.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import time
import weakref
from typing import Any

import orjson

from otel_trading.logs.levels import AUDIT
from otel_trading.logs.rendering import dumps
from otel_trading.report import report_once

SEQ = "audit.seq"
PREV = "audit.prev"
SHA256 = "audit.sha256"  # on the console/OTLP copies: the hash of the record's line in the file
GENESIS = "0" * 64
NAME = re.compile(r"^audit-(\d{8}T\d{12}Z)-(\d+)-(\d{4,})\.log$")

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_sync = getattr(os, "fdatasync", os.fsync)


def name_key(name: str) -> tuple:
    """Sort key of an audit file name: start time, pid, part (other names sort first, by name)."""
    m = NAME.match(os.path.basename(name))
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else ("", 0, 0, os.path.basename(name))


def line_hash(line: bytes) -> str:
    import hashlib  # here, not at start-up: loading OpenSSL's digests costs ~1 ms a process that writes no audit line need not pay

    return hashlib.sha256(line).hexdigest()


def chain_fields(line: bytes) -> tuple[int, str] | None:
    """``(seq, prev)`` of an audit line, or None when it is not one."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    seq, prev = obj.get(SEQ), obj.get(PREV)
    if type(seq) is not int or not isinstance(prev, str):
        return None
    return seq, prev


def _last_chain_line(path: str) -> tuple[int, str] | None:
    """``(seq, sha256)`` of the last complete audit line of ``path``, or None."""
    fd = os.open(path, _READ_FLAGS)
    try:
        size = os.fstat(fd).st_size
        chunk = 1 << 16
        while True:
            start = max(0, size - chunk)
            data = os.pread(fd, size - start, start)
            lines = data.split(b"\n")[:-1]  # what follows the last newline is a torn line
            for i in range(len(lines) - 1, 0 if start else -1, -1):  # lines[0] may be cut when start > 0
                fields = chain_fields(lines[i])
                if fields is not None:
                    return fields[0], line_hash(lines[i] + b"\n")
            if start == 0:
                return None
            chunk *= 4
    finally:
        os.close(fd)


def newest_link(directory: str) -> tuple[int, str]:
    """``(seq, sha256)`` of the line a new chain continues: the newest audit file's last line."""
    try:
        names = sorted((n for n in os.listdir(directory) if NAME.match(n)), key=name_key, reverse=True)
    except FileNotFoundError:
        names = []
    for name in names:
        try:
            found = _last_chain_line(os.path.join(directory, name))
        except OSError:
            continue
        if found is not None:
            return found
    return 0, GENESIS


def _render(seq: int, prev: str, event_dict: dict) -> bytes:
    """The line for one record: chain fields first; a record that cannot be rendered still keeps its place."""
    record = {SEQ: seq, PREV: prev}
    for key, value in event_dict.items():
        if key not in record:
            record[key] = value
    try:
        line = dumps(record)
    except Exception:  # a value whose repr() raises
        line = b""
    if not line.startswith(b'{"audit.seq":'):  # dumps' last resort replaced the whole record
        line = dumps({SEQ: seq, PREV: prev, "event": "unrenderable audit record", "keys": [str(k) for k in event_dict]})
    return line + b"\n"


class AuditTrail:
    """Appends audit records to this process's chain file. Thread-safe; a forked child starts its own file."""

    def __init__(self, directory: str, fsync: str = "batch", max_bytes: int = 50_000_000, fsync_interval_ms: float = 50.0):
        self.directory = directory
        self.fsync = fsync  # "batch", "record" or "off"
        self.fsync_interval = fsync_interval_ms / 1000
        self.max_bytes = max_bytes
        self.path: str | None = None
        self._lock = threading.Lock()
        self._fd = -1
        self._stamp = ""
        self._part = 0
        self._size = 0
        self._unsynced = 0
        self._link: tuple[int, str] | None = None  # (seq, sha256) of the last line written (one tuple: fork-safe)
        self._exit_hook = False
        self._syncer: threading.Thread | None = None
        self._dirty = threading.Event()  # set when a line waits for the batch fsync
        self._stop = threading.Event()
        _trails.add(self)

    def append(self, event_dict: dict) -> tuple[int, str] | None:
        """Write one record; ``(seq, sha256 of its line)``, or None when it could not be written (reported)."""
        with self._lock:
            try:
                if self._fd < 0:
                    self._open()
                seq, prev = self._link  # type: ignore[misc]
                seq += 1
                line = _render(seq, prev, event_dict)
                if self._size and self._size + len(line) > self.max_bytes:
                    self._close()
                    self._open()
                self._write(line)
            except OSError as exc:
                report_once(f"cannot write the audit trail in {self.directory!r} ({exc}); audit records still go to OTLP and the console")
                return None
            digest = line_hash(line)
            self._link = (seq, digest)
            if self.fsync == "record":
                _sync(self._fd)
            elif self.fsync == "batch":
                self._unsynced += 1
                if self._unsynced == 1:
                    self._dirty.set()
            return seq, digest

    def _write(self, line: bytes) -> None:
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            self._close()  # a torn line stays torn (verify names it); the next record starts a new part
            raise
        self._size += len(line)

    def _open(self) -> None:
        """Open the next part; the first one of this process names the run and finds the chain's link."""
        if self._stamp:
            self._part += 1
        else:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            if self._link is None:
                self._link = newest_link(self.directory)
            ns = time.time_ns()
            self._stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 10**9)) + "%06dZ" % (ns // 1000 % 10**6)
            self._part = 0
            if not self._exit_hook:
                self._exit_hook = True
                atexit.register(self.close)
        name = f"audit-{self._stamp}-{os.getpid()}-{self._part:04d}.log"
        path = os.path.join(self.directory, name)
        self._fd = os.open(path, _OPEN_FLAGS, 0o600)
        self.path, self._size, self._unsynced = path, 0, 0
        if self.fsync == "batch" and (self._syncer is None or not self._syncer.is_alive()):
            self._stop = threading.Event()
            self._syncer = threading.Thread(target=self._sync_batches, args=(self._stop,), name="otel-trading-audit-fsync", daemon=True)
            self._syncer.start()
        if self.fsync != "off":  # the new name itself must survive a power loss
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                if self._unsynced:
                    _sync(fd)
            finally:
                os.close(fd)

    def _sync_batches(self, stop: threading.Event) -> None:
        """The ``batch`` mode's thread: one fsync for the lines written within an interval, off the log call's path."""
        while True:
            self._dirty.wait()
            if stop.wait(self.fsync_interval):
                return  # close() syncs what is left
            with self._lock:
                self._dirty.clear()
                if not self._unsynced or self._fd < 0:
                    continue
                fd, self._unsynced = os.dup(self._fd), 0  # a rotation may close the original meanwhile
            try:
                _sync(fd)
            except OSError as exc:
                report_once(f"cannot fsync the audit trail {self.path!r}: {exc}")
            finally:
                os.close(fd)

    def close(self) -> None:
        """Flush to disk and close; a later record opens the next part of the same chain."""
        self._stop.set()
        self._dirty.set()
        with self._lock:
            try:
                self._close()
            except OSError as exc:
                report_once(f"cannot close the audit trail {self.path!r}: {exc}")
        syncer = self._syncer
        if syncer is not None and syncer is not threading.current_thread():
            syncer.join(timeout=1.0)
        self._syncer = None

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread of the parent may have held it
        if self._fd >= 0:
            os.close(self._fd)  # the parent's file stays the parent's
            self._fd = -1
        self._stamp = ""  # the child's own file, continuing from the parent's last line
        self._unsynced = 0
        self._syncer, self._dirty, self._stop = None, threading.Event(), threading.Event()  # threads do not survive a fork


_trails: weakref.WeakSet[AuditTrail] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for trail in list(_trails):
        trail._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# --- stdlib: audit records pass every level setting -------------------------

_original_log: Any = None
# where logging.Logger.findCaller starts counting frames (3.11+ skips logging's own frames itself)
_OWN_FRAME = 1 if sys.version_info >= (3, 11) else 0


def _log(self: logging.Logger, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
    """``Logger.log`` that lets ``AUDIT`` through logger levels and ``logging.disable`` (not ``disabled`` loggers)."""
    stacklevel = kwargs.pop("stacklevel", 1)
    if level == AUDIT:
        if not self.disabled:
            self._log(level, msg, args, stacklevel=stacklevel + _OWN_FRAME, **kwargs)
        return
    _original_log(self, level, msg, *args, stacklevel=stacklevel + 1, **kwargs)


def keep_audit_records() -> None:
    """Make ``logger.log(AUDIT, ...)`` / ``logging.log(AUDIT, ...)`` ignore level settings (undo: :func:`release`)."""
    global _original_log
    if _original_log is None:
        _original_log = logging.Logger.log
        logging.Logger.log = _log  # type: ignore[method-assign]


def release() -> None:
    global _original_log
    if _original_log is not None:
        logging.Logger.log = _original_log  # type: ignore[method-assign]
        _original_log = None


class LevelOrAudit(logging.Filter):
    """Handler filter: records at ``level`` or above, and every audit record (the handler's own level is AUDIT)."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or record.levelno == AUDIT


def set_level_keeping_audit(handler: logging.Handler, level: int) -> None:
    """``handler.setLevel(level)``, except that audit records still pass when ``level`` is above audit."""
    if level <= AUDIT:
        handler.setLevel(level)
    else:
        handler.setLevel(AUDIT)
        handler.addFilter(LevelOrAudit(level))


class AuditHandler(logging.Handler):
    """Appends stdlib audit records to the trail; runs before the other handlers so their copies
    (OTLP attributes, console line) carry ``audit.seq`` and ``audit.sha256``."""

    def __init__(self, trail: AuditTrail, service: str | None = None):
        super().__init__(level=AUDIT)
        self.trail = trail
        self.service = service

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno != AUDIT:
            return
        from otel_trading.logs.stdlib import record_to_event

        try:
            written = self.trail.append(record_to_event(record, self.service))
            if written is not None:
                record.__dict__[SEQ], record.__dict__[SHA256] = written
        except Exception:
            self.handleError(record)
