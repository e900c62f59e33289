"""Collector outage with the disk spool: loss, replay rate, hot-path cost, RSS; and SQLite vs persist-queue.

    python -m bench.outage --outage 60        # the issue's budget: 60 s outage at 5,000 spans/s + 20,000 log lines/s
    python -m bench.outage --quick            # a few seconds (CI smoke; numbers indicative)

A real app under ``opentelemetry-instrument`` (our defaults; the spool on) makes spans and stdlib log
records at a paced rate. The loopback receiver (``bench.receiver.serve``, in this process, so its
decoding is not on the app's GIL) runs, is stopped for the outage, and restarts on the same port.
Reported per signal: produced, delivered (both receiver lifetimes), lost, duplicates; the backlog the
spool held when the collector came back and how fast it drained (x the production rate); the app
thread's cost per span and per log call with the collector up, spool on vs off (measured alternately);
peak RSS of the outage run vs an uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench.receiver import serve

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

APP = """
import json, logging, resource, sys, time
from opentelemetry import trace
spans_per_s, logs_per_s, seconds, out = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
tracer = trace.get_tracer("bench.outage")
log = logging.getLogger("bench.outage")
tick = 0.01
span_tick, log_tick = max(1, round(spans_per_s * tick)), max(1, round(logs_per_s * tick))
spans = logs = 0
span_ns = log_ns = 0
start = time.monotonic()
while time.monotonic() - start < seconds:
    t0 = time.perf_counter_ns()
    for _ in range(span_tick):
        with tracer.start_as_current_span("order.submit", attributes={"trading.symbol": "AAPL", "i": spans}):
            pass
        spans += 1
    t1 = time.perf_counter_ns()
    for _ in range(log_tick):
        log.warning("fill %d", logs)
        logs += 1
    t2 = time.perf_counter_ns()
    span_ns += t1 - t0
    log_ns += t2 - t1
    delay = start + (spans / span_tick) * tick - time.monotonic()
    if delay > 0:
        time.sleep(delay)
elapsed = time.monotonic() - start
with open(out, "w") as fh:
    json.dump({"spans": spans, "logs": logs, "seconds": elapsed, "span_ns": span_ns / spans, "log_ns": log_ns / logs,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, fh)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(port: int, spool: Path, seconds: float, spans_per_s: float, logs_per_s: float, out: Path, spool_on: bool = True) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_SERVICE_NAME=f"bench-outage-{os.getpid()}",
        OTEL_METRICS_EXPORTER="none",
        OTEL_TRADING_SPOOL_DIR=str(spool),
        OTEL_TRADING_SPOOL="true" if spool_on else "false",
        OTEL_TRADING_LOG_FORMAT="json",
        OTEL_TRADING_SHUTDOWN_TIMEOUT="10",
        PYTHONPATH=str(ROOT),
    )
    return subprocess.Popen(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "-c", textwrap.dedent(APP), str(spans_per_s), str(logs_per_s), str(seconds), str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=open(out.with_suffix(".stderr"), "w"), cwd=spool.parent,  # noqa: SIM115
    )


def _backlog(spool: Path) -> dict[str, int]:
    """Items waiting in the spool, by signal (a read-only look: WAL lets it run beside the writers)."""
    paths = list(spool.glob("*.sqlite"))
    if not paths:
        return {"traces": 0, "logs": 0}
    db = sqlite3.connect(f"file:{paths[0]}?mode=ro", uri=True, timeout=10)
    try:
        rows = dict(db.execute("SELECT signal, coalesce(sum(items), 0) FROM batches GROUP BY signal").fetchall())
    finally:
        db.close()
    return {"traces": rows.get("traces", 0), "logs": rows.get("logs", 0)}


def outage_run(outage: float, warmup: float, recovery: float, spans_per_s: float, logs_per_s: float) -> dict:
    """One app through warm-up, an outage and recovery; loss, duplicates, replay rate, RSS."""
    work = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    port = _free_port()
    server, _, before = serve(port)
    out = work / "app.json"
    app = _launch(port, work / "spool", warmup + outage + recovery, spans_per_s, logs_per_s, out)
    time.sleep(warmup)
    server.stop(None).wait()  # the collector goes away
    down_at = time.monotonic()
    peak_spool = 0
    while time.monotonic() - down_at < outage:
        time.sleep(0.5)
        paths = list((work / "spool").glob("*.sqlite*"))
        peak_spool = max(peak_spool, sum(p.stat().st_size for p in paths))
    backlog = _backlog(work / "spool")
    server, _, after = serve(port)  # ... and comes back on the same address
    up_at = time.monotonic()
    resumed: dict[str, float | None] = {"traces": None, "logs": None}  # first spooled batch sent (the collector seen back)
    drained: dict[str, float | None] = {"traces": None, "logs": None}
    while app.poll() is None and any(v is None for v in drained.values()):
        now = _backlog(work / "spool")
        for signal, left in now.items():
            if resumed[signal] is None and left < backlog[signal]:
                resumed[signal] = time.monotonic() - up_at
            if drained[signal] is None and left == 0:
                drained[signal] = time.monotonic() - up_at
        time.sleep(0.05)
    app.wait(timeout=outage + recovery + 120)
    time.sleep(1.0)
    server.stop(None).wait()
    made = json.loads(out.read_text())
    result = {"outage_s": outage, "spans_per_s": spans_per_s, "logs_per_s": logs_per_s, "app": made, "peak_spool_mb": peak_spool / 2**20}
    for signal, key, rate in (("traces", "spans", spans_per_s), ("logs", "logs", logs_per_s)):
        achieved = made[key] / made["seconds"]  # what the app really produced (a loaded machine may not reach the offer)
        delivered = getattr(before, key) + getattr(after, key)
        drain = drained[signal] - (resumed[signal] or 0.0) if drained[signal] else None
        result[signal] = {
            "produced": made[key],
            "delivered": delivered,
            "lost": max(0, made[key] - delivered),
            "duplicates": max(0, delivered - made[key]),
            "backlog": backlog[signal],
            "resumed_after_s": resumed[signal],
            "drain_s": drain,
            "achieved_per_s": achieved,
            "replay_x_rate": (backlog[signal] / max(drain, 0.05) / rate) if drain is not None else None,
            "replay_x_achieved": (backlog[signal] / max(drain, 0.05) / achieved) if drain is not None else None,
            "left_in_spool": _backlog(work / "spool")[signal],
        }
    result["stderr_tail"] = (out.with_suffix(".stderr")).read_text()[-600:]
    return result


def hot_path(seconds: float, reps: int, spans_per_s: float, logs_per_s: float) -> dict:
    """App-thread ns per span and per log call with the collector up: spool on vs off, alternately."""
    work = Path(tempfile.mkdtemp(prefix="bench-hotpath-"))
    port = _free_port()
    server, _, _ = serve(port)
    runs: dict[bool, list[dict]] = {True: [], False: []}
    try:
        for rep in range(reps):
            for spool_on in ((True, False) if rep % 2 == 0 else (False, True)):
                out = work / f"run{rep}{int(spool_on)}.json"
                _launch(port, work / "spool", seconds, spans_per_s, logs_per_s, out, spool_on=spool_on).wait(timeout=seconds + 120)
                runs[spool_on].append(json.loads(out.read_text()))
    finally:
        server.stop(None)
    med = lambda runs_, key: statistics.median(r[key] for r in runs_)  # noqa: E731
    return {
        side: {"span_ns": med(runs[on], "span_ns"), "log_ns": med(runs[on], "log_ns"), "peak_rss_mb": med(runs[on], "peak_rss_mb")}
        for side, on in (("spool", True), ("no_spool", False))
    }


def store_rates(batches: int) -> dict:
    """Write and replay rate of encoded span batches (2,048 spans each): our SQLite spool vs persist-queue."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    from otel_trading.export.spool import Spool
    from otel_trading.export.wire import SpanEncoder

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for i in range(2048):
        with tracer.start_as_current_span("order.submit", attributes={"trading.symbol": "AAPL", "i": i}):
            pass
    body = SpanEncoder().encode(memory.get_finished_spans())
    out: dict = {"batch_bytes": len(body)}
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))

    spool = Spool(work / "s.sqlite", max_bytes=2**40)
    t = time.perf_counter()
    for _ in range(batches):
        spool.put("traces", body, 2048)
    write = time.perf_counter() - t
    t = time.perf_counter()
    while (row := spool.claim("traces")) is not None:
        spool.done(row)
    out["sqlite_spool"] = {"write_batches_per_s": batches / write, "replay_batches_per_s": batches / (time.perf_counter() - t)}

    try:
        import persistqueue
    except ImportError:
        out["persist_queue"] = None  # pip install persist-queue to compare
        return out
    for name, make in (("file_queue", lambda: persistqueue.Queue(str(work / "pq"))), ("sqlite_ack_queue", lambda: persistqueue.SQLiteAckQueue(str(work / "pqa"), multithreading=True))):
        queue = make()
        t = time.perf_counter()
        for _ in range(batches):
            queue.put(body)
        write = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(batches):
            item = queue.get()
            if name == "file_queue":
                queue.task_done()
            else:
                queue.ack(item)
        out[f"persist_queue_{name}"] = {"write_batches_per_s": batches / write, "replay_batches_per_s": batches / (time.perf_counter() - t)}
    return out


def item_outage(n: int, reps: int) -> dict:
    """``bench/__main__`` item: n = outage seconds (60 full, a few quick)."""
    quick = n < 30
    return {
        "outage": outage_run(outage=n, warmup=2 if quick else 5, recovery=4 if quick else 25, spans_per_s=5000, logs_per_s=20000),
        "hot_path": hot_path(seconds=2 if quick else 8, reps=max(reps, 1) if quick else 3, spans_per_s=5000, logs_per_s=20000),
        "store": store_rates(50 if quick else 300),
    }


def _backlog_cell(x: dict) -> str:
    """The spool's backlog and how it drained; with no backlog (nothing spooled) there was no first send to time."""
    if x["drain_s"] is None:
        return f"backlog {x['backlog']:,}, left {x['left_in_spool']:,}"
    resumed = f", {x['resumed_after_s']:.2f}s after the restart" if x["resumed_after_s"] is not None else ""
    return f"backlog {x['backlog']:,} drained in {x['drain_s']:.2f}s{resumed}"


def rows(r: dict) -> list[tuple[str, str, str, str, str]]:
    """(measure, baseline, otel-trading, ratio, notes) rows for the bench table."""
    o, h, s = r["outage"], r["hot_path"], r["store"]
    out = []
    for signal, what in (("traces", "spans"), ("logs", "log records")):
        x = o[signal]
        out.append(
            (
                f"Outage {o['outage_s']:g} s at {o['spans_per_s']:,.0f} spans/s + {o['logs_per_s']:,.0f} logs/s offered: {what}",
                f"produced {x['produced']:,} ({x['achieved_per_s']:,.0f}/s achieved)",
                f"delivered {x['delivered']:,}, lost {x['lost']:,}, dup {x['duplicates']:,}",
                f"replay {x['replay_x_rate']:.1f}x offered, {x['replay_x_achieved']:.1f}x achieved rate" if x["replay_x_rate"] is not None else "replay n/a",
                _backlog_cell(x),
            )
        )
    out.append(
        (
            "App thread per span / per log call, collector up",
            f"{h['no_spool']['span_ns'] / 1000:.2f} / {h['no_spool']['log_ns'] / 1000:.2f} us (spool off)",
            f"{h['spool']['span_ns'] / 1000:.2f} / {h['spool']['log_ns'] / 1000:.2f} us (spool on)",
            f"{h['spool']['span_ns'] / h['no_spool']['span_ns']:.2f}x / {h['spool']['log_ns'] / h['no_spool']['log_ns']:.2f}x time",
            "",
        )
    )
    out.append(
        (
            "Peak RSS: outage run vs collector up (spool off)",
            f"{h['no_spool']['peak_rss_mb']:.0f} MB",
            f"{o['app']['peak_rss_mb']:.0f} MB (spool file peak {o['peak_spool_mb']:.0f} MB)",
            f"{o['app']['peak_rss_mb'] / h['no_spool']['peak_rss_mb']:.2f}x",
            "",
        )
    )
    pq = s.get("persist_queue_file_queue")
    out.append(
        (
            f"Spool store, {s['batch_bytes'] / 1024:.0f} KB batches: write / replay batches/s",
            f"persist-queue {pq['write_batches_per_s']:,.0f} / {pq['replay_batches_per_s']:,.0f}" if pq else "persist-queue not installed",
            f"SQLite spool {s['sqlite_spool']['write_batches_per_s']:,.0f} / {s['sqlite_spool']['replay_batches_per_s']:,.0f}",
            "",
            "persist-queue SQLiteAckQueue {:,.0f} / {:,.0f}".format(*s["persist_queue_sqlite_ack_queue"].values()) if pq else "",
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outage", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds without a collector (default 60)")
    args = parser.parse_args(argv)
    result = item_outage(4 if args.quick else int(args.outage), 1)
    for row in rows(result):
        print(" | ".join(row))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
