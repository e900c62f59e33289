"""The audit trail's cost per record, in-process: ``python -m bench.audit [--quick] [--dir DIR] [--json FILE]``.

One structlog ``log.audit(...)`` through otel-trading's default chain (JSON line to /dev/null, no
exporter) with each ``OTEL_TRADING_AUDIT_FSYNC`` mode (record, batch, off), against the same call
as ``log.info(...)`` (no audit file) measured in the same run, alternately, medians. The files go
to ``--dir`` (default: a temporary directory under the current one, i.e. the disk the app would
use, not a tmpfs); fsync cost is the disk's, so run it where the audit trail will live.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from otel_trading.config import load
from otel_trading.logs import get_logger, install, uninstall

FULL, QUICK = (2_000, 5), (200, 3)
MODES = (("fsync=record", "record"), ("fsync=batch (default, 50 ms)", "batch"), ("fsync=off (write only)", "off"))


def _per_call_ns(fn, n: int) -> float:
    gc.collect()
    start = time.perf_counter_ns()
    for i in range(n):
        fn(i)
    return (time.perf_counter_ns() - start) / n


def _logger(directory: str, fsync: str):
    from opentelemetry.sdk._logs import LoggerProvider

    uninstall()
    settings = load({"OTEL_TRADING_AUDIT_DIR": directory, "OTEL_TRADING_AUDIT_FSYNC": fsync, "OTEL_TRADING_LOG_FORMAT": "json"})
    install(settings, LoggerProvider(shutdown_on_exit=False), stream=open(os.devnull, "w"))  # noqa: SIM115
    return get_logger("bench")


def measure(directory: str, n: int, reps: int) -> dict:
    results: dict[str, list[float]] = {"info": [], **{name: [] for name, _ in MODES}}
    for rep in range(reps):
        order = [("info", "off"), *MODES]
        for name, fsync in order if rep % 2 == 0 else reversed(order):
            log = _logger(os.path.join(directory, f"{rep}-{fsync}"), fsync)
            if name == "info":
                ns = _per_call_ns(lambda i: log.info("order approved", order_id=i, user="jdoe", qty=5), n)
            else:
                ns = _per_call_ns(lambda i: log.audit("order approved", order_id=i, user="jdoe", qty=5), n)
            results[name].append(ns)
    uninstall()
    medians = {name: statistics.median(values) for name, values in results.items()}
    return {"n": n, "reps": reps, "dir": directory, "ns": medians, "ratio_to_info": {k: v / medians["info"] for k, v in medians.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK[0]} records x {QUICK[1]} reps (CI smoke)")
    parser.add_argument("--dir", help="where the audit files go (default: a temporary directory under the current one)")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    n, reps = QUICK if args.quick else FULL
    directory = args.dir or tempfile.mkdtemp(prefix="bench-audit-", dir=".")
    try:
        result = measure(directory, n, reps)
    finally:
        if not args.dir:
            shutil.rmtree(directory, ignore_errors=True)
    print(f"Audit record cost ({n} records x {reps} reps, medians; baseline: the same call as log.info)")
    print(f"  {'log.info (baseline, no audit file)':<40}{result['ns']['info'] / 1000:>10.2f} us   1.00x")
    for name, _ in MODES:
        print(f"  {'log.audit, ' + name:<40}{result['ns'][name] / 1000:>10.2f} us {result['ratio_to_info'][name]:>6.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
