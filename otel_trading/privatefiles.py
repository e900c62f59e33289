"""Files otel-trading writes on the user's disk (channel logs, local exporters): owner-only
(0600 files, 0700 folders) and never opened through a symlink, so another local user can
neither read the telemetry nor make the process append it to a file of their choosing."""

from __future__ import annotations

import os
from typing import BinaryIO

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def makedirs(path: str | os.PathLike) -> None:
    """Create ``path`` (and parents) owner-only; an existing folder is left as the user made it."""
    os.makedirs(path, mode=0o700, exist_ok=True)


def open_append(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for unbuffered appends, created 0600; a file left readable by others is made 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    except OSError:
        pass  # not ours to change (e.g. a shared folder): written all the same
    return os.fdopen(fd, "ab", buffering=0)


def write(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path``'s content with ``data`` (created 0600, not through a symlink)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def open_read(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for reading, not through a symlink."""
    return os.fdopen(os.open(path, os.O_RDONLY | _NOFOLLOW), "rb")
