"""Locks that are free again in a forked child.

``fork()`` copies a lock as it is: held by a thread that does not exist in the child, it
stays held forever and the child's first log line or span blocks on it. Every lock
otel-trading owns is made here, and re-initialised in the child before it runs.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

_module_locks: list[Any] = []
_owners: weakref.WeakKeyDictionary[Any, tuple[str, ...]] = weakref.WeakKeyDictionary()


def lock() -> Any:
    """A module-level ``threading.Lock``, free again in a forked child."""
    new = threading.Lock()
    _module_locks.append(new)
    return new


def owned(owner: Any, *names: str) -> None:
    """Re-initialise ``owner``'s lock attributes ``names`` in a forked child (weakly held)."""
    _owners[owner] = names


def in_child(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in a forked child, before the child runs, for as long as its object
    lives (held weakly: registering never keeps an exporter or a handler alive)."""
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.WeakMethod(method)

    def call() -> None:
        bound = ref()
        if bound is not None:
            bound()

    os.register_at_fork(after_in_child=call)


def _after_fork_in_child() -> None:
    for module_lock in _module_locks:
        module_lock._at_fork_reinit()
    # structlog's per-file write locks, taken by the loggers of otel-trading's default chain (stdout)
    structlog_output = sys.modules.get("structlog._output")
    for file_lock in list(getattr(structlog_output, "WRITE_LOCKS", {}).values()):
        file_lock._at_fork_reinit()
    for owner, names in list(_owners.items()):
        for name in names:
            held = getattr(owner, name, None)
            if held is not None:
                held._at_fork_reinit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
