"""Run code when the application imports a module: what is not imported costs nothing at start-up."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import wrapt


def on_import(module: str, hook: Callable[[Any], None]) -> None:
    """Run ``hook(module)`` once the application imports ``module`` (now, if it already has).

    wrapt's import hook finder takes a lock on every import; a fork while another thread (an
    exporter) holds it would leave every import in the child blocked forever. The lock is held
    across ``fork`` instead, as CPython does with its own import lock.
    """
    if not _fork_safe:
        lock = wrapt.importer._post_import_hooks_lock  # type: ignore[attr-defined]  # wrapt's typing leaves its importer out
        os.register_at_fork(before=lock.acquire, after_in_parent=lock.release, after_in_child=lock.release)
        _fork_safe.append(True)
    wrapt.register_post_import_hook(hook, module)


_fork_safe: list[bool] = []
