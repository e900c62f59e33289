"""Carry bound log context (``structlog.contextvars``) and the OTel context into threads and executors.

asyncio tasks copy the context by themselves (``asyncio.create_task``); threads do
not. ``start_thread`` / ``ContextThread`` / ``submit`` / ``wrap`` run the target
in a copy of the caller's context, so ``bind_contextvars(...)`` values, the active
span and baggage are the same inside.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")


def wrap(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to a copy of the current context (call it from any thread)."""
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        return ctx.copy().run(fn, *args, **kwargs)

    return run


class ContextThread(threading.Thread):
    """``threading.Thread`` whose target runs in a copy of the creating thread's context."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._otel_trading_ctx = contextvars.copy_context()

    def run(self) -> None:
        self._otel_trading_ctx.run(super().run)


def start_thread(target: Callable[..., Any], *args: Any, name: str | None = None, daemon: bool | None = None, **kwargs: Any) -> ContextThread:
    """Start ``target(*args, **kwargs)`` in a new thread that sees the caller's bound context."""
    thread = ContextThread(target=target, args=args, kwargs=kwargs, name=name, daemon=daemon)
    thread.start()
    return thread


def submit(executor: Executor, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future:
    """``executor.submit`` with the caller's context (``loop.run_in_executor`` does not copy it either)."""
    ctx = contextvars.copy_context()
    return executor.submit(ctx.run, fn, *args, **kwargs)
