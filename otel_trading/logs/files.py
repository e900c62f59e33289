"""Optional per-channel JSON-lines log files with size-based rotation.

``OTEL_TRADING_LOG_FILES=trading=info,market_data=warning,audit=audit`` writes
``<OTEL_TRADING_LOG_DIR>/trading.log`` etc. A record goes to a channel when

* it carries ``channel=<name>`` (bound with structlog or passed as ``extra``), or
* its logger is named ``<name>`` or ``<name>.<anything>``, or
* its level is named ``<name>`` (so an ``audit`` channel receives every audit record),

and its level is at least the channel's level. Lines are the same JSON schema
as stdout, after redaction. Files rotate at ``OTEL_TRADING_LOG_FILE_MAX_BYTES``
keeping ``OTEL_TRADING_LOG_FILE_BACKUPS`` old files (``audit.log.1`` newest).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from otel_trading import forksafe, privatefiles
from otel_trading.logs.levels import NAME_TO_LEVEL
from otel_trading.logs.rendering import dumps
from otel_trading.report import report_once


class RotatingWriter:
    """Appends bytes lines to a file; rotates by size. Thread-safe; reopens after fork."""

    def __init__(self, path: str, max_bytes: int, backups: int):
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        forksafe.owned(self, "_lock")
        self._file: Any = None  # the open channel file (BinaryIO), None until the first write
        self._size = 0
        self._pid = -1

    def _open(self) -> None:
        privatefiles.makedirs(os.path.dirname(self.path) or ".")
        self._file = privatefiles.open_append(self.path)
        self._size = self._file.tell()
        self._pid = os.getpid()

    def _rotate(self) -> None:
        self._file.close()
        self._file = None
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                src = f"{self.path}.{i}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
        else:
            os.remove(self.path)
        self._open()

    def write(self, line: bytes) -> None:
        with self._lock:
            try:
                if self._file is None or self._pid != os.getpid():
                    self._open()
                if self._size and self._size + len(line) > self.max_bytes:
                    self._rotate()
                self._file.write(line)
                self._size += len(line)
            except OSError as exc:
                report_once(f"cannot write log file {self.path}: {exc}")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class Channels:
    """The configured channels; ``route()`` picks the files for one record."""

    def __init__(self, directory: str, levels: dict[str, str | int], max_bytes: int, backups: int):
        self.directory = directory
        self.channels: list[tuple[str, int, str, RotatingWriter]] = []
        for name, level in levels.items():
            number = level if isinstance(level, int) else NAME_TO_LEVEL[str(level).lower()]
            path = os.path.join(directory, f"{name}.log")
            self.channels.append((name, number, name + ".", RotatingWriter(path, max_bytes, backups)))

    def route(self, level: str, levelno: int, logger: str | None, channel: Any) -> list[RotatingWriter]:
        out = []
        for name, min_level, prefix, writer in self.channels:
            if levelno >= min_level and (
                channel == name or level == name or (logger is not None and (logger == name or logger.startswith(prefix)))
            ):
                out.append(writer)
        return out

    def write_event(self, event_dict: dict, level: str, logger: str | None) -> None:
        writers = self.route(level, NAME_TO_LEVEL.get(level, 0), logger, event_dict.get("channel"))
        if writers:
            line = dumps(event_dict) + b"\n"
            for writer in writers:
                writer.write(line)

    def close(self) -> None:
        for *_, writer in self.channels:
            writer.close()
