"""The one timing loop every bench app uses: warm up, then ``reps`` timed runs of ``n`` calls.

Apps know nothing of otel_trading or of the launcher that runs them: they do their
work through the OpenTelemetry API / structlog / logging, time it, and write one
JSON object to the file named by ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from typing import Any, Callable


def args(**extra: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", required=True)
    for name, default in extra.items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    return parser.parse_args()


def per_call_ns(fn: Callable[[], Any], n: int, reps: int, clock: Callable[[], int] = time.perf_counter_ns) -> dict:
    """ns per call of the fastest of ``reps`` runs of ``n`` calls (``ns``; ``median`` too), after a warm-up of n/10.

    The fastest run, as ``timeit`` reports: on a shared VM the same loop's runs differ by up to 2x
    within one process (a neighbour on the core's other hyperthread slows every instruction; the
    steal counter does not show it), so slower runs measure the neighbour, not the code. Many
    short runs give every process a run without it.

    ``clock``: wall time by default; ``time.process_time_ns`` (this process's CPU time, its
    export threads included) where the figure is a difference of two runs on a busy machine."""
    for _ in range(max(n // 10, 10)):
        fn()
    runs = []
    for _ in range(reps):
        gc.collect()
        start = clock()
        for _ in range(n):
            fn()
        runs.append((clock() - start) / n)
    return {"ns": min(runs), "median": sorted(runs)[len(runs) // 2], "runs": runs, "calls": n * reps + max(n // 10, 10)}


def write(path: str, result: dict) -> None:
    with open(path, "w") as fh:
        json.dump(result, fh)
