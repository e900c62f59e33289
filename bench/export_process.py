"""The export helper process in the configuration users launch (issue 16's budgets).

Every run is a real program under ``opentelemetry-instrument`` with otel-trading's
defaults exporting OTLP/gRPC to the loopback receiver (``bench/receiver.py``, its
own process); delivered counts come from the receiver. Baselines run in the same
invocation, alternating with ours:

* ``logs``: N structlog lines; main-thread cost per line with the helper process
  (default), with the in-process export path, with no export (``OTEL_LOGS_EXPORTER=none``)
  and plain structlog (no wrapper); dropped = made - received.
* ``spans``: N spans from a busy loop; delivered spans/s (first span made to last
  span received) and lost, vs the stock SDK path (plain ``python``, SDK
  ``BatchSpanProcessor`` + stock ``OTLPSpanExporter``) and our in-process path.
* ``sustained``: 20k spans/s + 80k log lines/s paced for S seconds: achieved rates,
  lost per signal, RSS start / peak, the helper's CPU.
* ``kill``: the helper is killed (SIGKILL) halfway through a busy span loop: lost,
  duplicates, the longest single span call (the app's worst stall).

    python -m bench.export_process [--quick] [--only logs,spans]     # prints the rows and one JSON line
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)

FULL = {"logs": (1_000_000, 2), "spans": (200_000, 2), "sustained": (60, 1), "kill": (100_000, 1), "drop": (200_000, 5)}
QUICK = {"logs": (20_000, 1), "spans": (10_000, 1), "sustained": (3, 1), "kill": (10_000, 1), "drop": (20_000, 3)}

APP = r'''
import json, os, sys, time
mode, n = sys.argv[1], int(sys.argv[2])
if mode == "stock":  # the stock SDK path, configured by hand: no wrapper, SDK defaults
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
import structlog
if mode == "plain":
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"), structlog.processors.JSONRenderer()],
        logger_factory=structlog.WriteLoggerFactory(open(os.devnull, "w")),
        cache_logger_on_first_use=True,
    )
from opentelemetry import trace
import otel_trading
from otel_trading.export import sidecar

def cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, TypeError):
        return None

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

out = {}
tracer = trace.get_tracer("bench.app")
log = structlog.get_logger("bench.app")
kind = os.environ["BENCH_KIND"]
start = time.monotonic()
if kind == "logs":
    t, c = time.perf_counter(), time.process_time()
    for i in range(n):
        log.info("tick", symbol="BTC-USD", price=101.5, qty=3, i=i)
    out["ns_per_op"] = (time.perf_counter() - t) / n * 1e9
    out["cpu_ns_per_op"] = (time.process_time() - c) / n * 1e9  # every thread of the app's process
elif kind in ("spans", "kill"):
    worst = 0.0
    half = n // 2
    t, c = time.perf_counter(), time.process_time()
    for i in range(n):
        if kind == "kill":
            if i == half:
                os.kill(sidecar.current().stats()["helper_pid"], 9)
            t0 = time.perf_counter()
        with tracer.start_as_current_span("order.submit", attributes={"trading.symbol": "BTC-USD", "i": i}):
            pass
        if kind == "kill":
            worst = max(worst, time.perf_counter() - t0)
    out["ns_per_op"] = (time.perf_counter() - t) / n * 1e9
    out["cpu_ns_per_op"] = (time.process_time() - c) / n * 1e9
    out["worst_call_ms"] = worst * 1000
elif kind == "sustained":
    seconds, spans_per_s, logs_per_s, tick = n, 20_000, 80_000, 0.01
    made_spans = made_logs = 0
    rss = [rss_mb()]
    helper = sidecar.current().stats()["helper_pid"] if sidecar.current() else None
    next_tick, next_rss, end = time.monotonic(), time.monotonic() + 1, time.monotonic() + seconds
    while time.monotonic() < end:
        for i in range(int(spans_per_s * tick)):
            with tracer.start_as_current_span("order.submit", attributes={"trading.symbol": "BTC-USD", "i": made_spans}):
                pass
            made_spans += 1
        for i in range(int(logs_per_s * tick)):
            log.info("tick", symbol="BTC-USD", price=101.5, i=made_logs)
            made_logs += 1
        next_tick += tick
        now = time.monotonic()
        if now >= next_rss:
            rss.append(rss_mb())
            next_rss += 1
        if next_tick > now:
            time.sleep(next_tick - now)
    elapsed = time.monotonic() - start
    helper = helper or (sidecar.current().stats()["helper_pid"] if sidecar.current() else None)
    out.update(made_spans=made_spans, made_logs=made_logs, seconds=elapsed, rss_start_mb=rss[0], rss_peak_mb=max(rss),
               helper_cpu_s=cpu(helper) if helper else None, app_cpu_s=cpu(os.getpid()))
out["start"] = start
out["produced_at"] = time.monotonic()
telemetry = otel_trading.current()
if telemetry is not None and mode != "plain":
    telemetry.shutdown()
if mode == "stock":
    trace.get_tracer_provider().shutdown()
out["flushed_at"] = time.monotonic()
out["stats"] = sidecar.current().stats() if sidecar.current() else None
print("RESULT " + json.dumps(out), file=sys.stderr, flush=True)
'''

# mode -> (under opentelemetry-instrument?, extra environment)
MODES = {
    "helper": (True, {"OTEL_TRADING_EXPORT_PROCESS": "true", "OTEL_BSP_MAX_QUEUE_SIZE": "65536", "OTEL_BLRP_MAX_QUEUE_SIZE": "65536"}),
    "in-process": (True, {"OTEL_TRADING_EXPORT_PROCESS": "false"}),  # the default
    "no-export": (True, {"OTEL_LOGS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"}),
    "plain": (False, {}),
    "stock": (False, {}),
}


def _run(app: str, receiver, kind: str, mode: str, n: int) -> dict:
    instrumented, extra = MODES[mode]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""),
        BENCH_KIND=kind,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_EXPORTER_OTLP_INSECURE="true",
        OTEL_SERVICE_NAME="bench",
        OTEL_METRICS_EXPORTER="none",
        OTEL_TRADING_LOG_FORMAT="json",
        OTEL_TRADING_SHUTDOWN_TIMEOUT="60",
        **extra,
    )
    receiver.reset()
    command = ([os.path.join(BIN, "opentelemetry-instrument")] if instrumented else []) + [sys.executable, app, mode, str(n)]
    proc = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=3600)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("RESULT ")]
    if not lines:
        return {"error": f"{mode}: exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    out = json.loads(lines[-1][7:])
    field = "logs" if kind == "logs" else "spans"
    stats = receiver.wait_idle(field, quiet=1.0) if mode not in ("no-export", "plain") else receiver.stats()
    out["received"] = {"spans": stats["spans"], "logs": stats["logs"]}
    out["last_received"] = stats["last"]
    out["warnings"] = [line for line in proc.stderr.splitlines() if line.startswith("otel-trading:")][:5]
    return out


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def bench_logs(app: str, receiver, n: int, reps: int) -> dict:
    modes = ("no-export", "helper", "in-process", "plain")
    runs: dict[str, list] = {m: [] for m in modes}
    for _ in range(reps):
        for mode in modes:
            runs[mode].append(_run(app, receiver, "logs", mode, n))
    out = {"n": n, "reps": reps}
    for mode, rs in runs.items():
        if any("error" in r for r in rs):
            return {"error": next(r["error"] for r in rs if "error" in r)}
        out[mode] = {"ns_per_line": _median(rs, "ns_per_op"), "cpu_ns_per_line": _median(rs, "cpu_ns_per_op"), "dropped": max(n - r["received"]["logs"] for r in rs) if mode in ("helper", "in-process") else 0,
                     "spread": [round(r["ns_per_op"]) for r in rs], "warnings": rs[-1]["warnings"]}
    return out


def bench_spans(app: str, receiver, n: int, reps: int) -> dict:
    modes = ("stock", "in-process", "helper")
    runs: dict[str, list] = {m: [] for m in modes}
    for _ in range(reps):
        for mode in modes:
            runs[mode].append(_run(app, receiver, "spans", mode, n))
    out = {"n": n, "reps": reps}
    for mode, rs in runs.items():
        if any("error" in r for r in rs):
            return {"error": next(r["error"] for r in rs if "error" in r)}
        rates = [r["received"]["spans"] / max(r["last_received"] - r["start"], 1e-9) for r in rs]
        out[mode] = {"delivered_per_s": statistics.median(rates), "lost": max(n - r["received"]["spans"] for r in rs),
                     "ns_per_span": _median(rs, "ns_per_op"), "cpu_ns_per_span": _median(rs, "cpu_ns_per_op"), "spread": [round(x) for x in rates]}
    return out


def bench_sustained(app: str, receiver, seconds: int, reps: int) -> dict:
    r = _run(app, receiver, "sustained", "helper", seconds)
    if "error" in r:
        return r
    return {
        "seconds": r["seconds"],
        "spans_per_s": r["made_spans"] / r["seconds"],
        "logs_per_s": r["made_logs"] / r["seconds"],
        "lost_spans": r["made_spans"] - r["received"]["spans"],
        "lost_logs": r["made_logs"] - r["received"]["logs"],
        "rss_start_mb": r["rss_start_mb"],
        "rss_peak_mb": r["rss_peak_mb"],
        "helper_cpu_pct": 100 * r["helper_cpu_s"] / r["seconds"] if r["helper_cpu_s"] is not None else None,
        "app_cpu_pct": 100 * r["app_cpu_s"] / r["seconds"],
    }


def bench_kill(app: str, receiver, n: int, reps: int) -> dict:
    r = _run(app, receiver, "kill", "helper", n)
    if "error" in r:
        return r
    stats = r["stats"]["spans"]
    return {"n": n, "received": r["received"]["spans"], "delivered_acked": stats["delivered"], "lost": n - min(r["received"]["spans"], n),
            "duplicates": max(r["received"]["spans"] - n, 0), "restarts": r["stats"]["restarts"], "worst_call_ms": r["worst_call_ms"]}


def bench_drop(app: str, receiver, n: int, reps: int) -> dict:
    """App-side cost of one log record kept vs dropped (buffer full, policy drop), flusher work included
    for the kept ones; in this process, no helper started (the records never leave)."""
    import gc

    from otel_trading.export.records import LOGS
    from otel_trading.export.sidecar import Sidecar

    origin = (("bench", None, None, None), ({"service.name": "bench"}, ""))
    records = [(i, i, 0, 0, 0, "INFO", 9, "tick", {"symbol": "BTC-USD", "i": i}, 0, None, *origin) for i in range(n)]
    keep, drop = [], []
    for _ in range(reps):
        sidecar = Sidecar(log_capacity=n + 1, full_policy="drop")
        sidecar._eager, sidecar._stopping = False, True  # the app side only: no flusher thread, no helper
        sidecar._wake.set()
        sidecar._flusher.join()
        sig = sidecar.signals[LOGS]
        gc.collect()
        t = time.perf_counter_ns()
        for record in records:
            sidecar.put(sig, record)
        from otel_trading.export.records import dumps

        dumps(list(sig.items))  # what the flusher does with kept items
        keep.append((time.perf_counter_ns() - t) / n)
        sig.capacity, sig.dropping = 0, True
        t = time.perf_counter_ns()
        for record in records:
            sidecar.put(sig, record)
        drop.append((time.perf_counter_ns() - t) / n)
        assert sig.dropped == n
    return {"n": n, "keep_ns": statistics.median(keep), "drop_ns": statistics.median(drop)}


ITEMS = {"logs": bench_logs, "spans": bench_spans, "sustained": bench_sustained, "kill": bench_kill, "drop": bench_drop}


def run(quick: bool = False, only: list[str] | None = None) -> dict:
    from bench.receiver import Receiver

    sizes = QUICK if quick else FULL
    results = {}
    with tempfile.TemporaryDirectory() as tmp, Receiver() as receiver:
        app = os.path.join(tmp, "app.py")
        with open(app, "w") as fh:
            fh.write(APP)
        for name in only or list(ITEMS):
            started = time.monotonic()
            n, reps = sizes[name]
            try:
                results[name] = ITEMS[name](app, receiver, n, reps)
            except Exception as exc:  # noqa: BLE001 - one broken item must not hide the others
                results[name] = {"error": repr(exc)}
            print(f"  export_process.{name}: {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)
    return results


def _us(ns: float) -> str:
    return f"{ns / 1000:.2f} us"


def rows(results: dict) -> list[tuple[str, str, str, str, str]]:
    """(measure, baseline, otel-trading, ratio, notes) rows, in the bench table's shape."""
    out = []
    r = results.get("logs", {"error": "not run"})
    if "error" in r:
        out.append(("Helper process: structlog lines + OTLP", "n/a", "n/a", "n/a", r["error"][:60]))
    else:
        base, ours, inproc = r["no-export"], r["helper"], r["in-process"]
        out.append((
            f"Helper process: {r['n']:,} structlog lines + OTLP, main-thread cost/line (goal <= 2x no export, 0 dropped)",
            f"{_us(base['ns_per_line'])} no export",
            f"{_us(ours['ns_per_line'])}, dropped {ours['dropped']:,}",
            f"{ours['ns_per_line'] / base['ns_per_line']:.2f}x time",
            f"app CPU/line {_us(ours['cpu_ns_per_line'])} vs {_us(base['cpu_ns_per_line'])} ({ours['cpu_ns_per_line'] / base['cpu_ns_per_line']:.2f}x); "
            f"in-process export {_us(inproc['ns_per_line'])} ({inproc['ns_per_line'] / base['ns_per_line']:.2f}x, CPU {_us(inproc['cpu_ns_per_line'])}), dropped {inproc['dropped']:,}; "
            f"plain structlog {_us(r['plain']['ns_per_line'])} ({1e9 / r['plain']['ns_per_line']:,.0f}/s vs ours {1e9 / ours['ns_per_line']:,.0f}/s)",
        ))
    r = results.get("spans", {"error": "not run"})
    if "error" in r:
        out.append(("Helper process: busy-loop spans delivered/s", "n/a", "n/a", "n/a", r["error"][:60]))
    else:
        stock, ours, inproc = r["stock"], r["helper"], r["in-process"]
        out.append((
            f"Helper process: {r['n']:,} busy-loop spans, delivered/s (goal >= 3x stock, 0 lost)",
            f"{stock['delivered_per_s']:,.0f}/s stock SDK, lost {stock['lost']:,}",
            f"{ours['delivered_per_s']:,.0f}/s, lost {ours['lost']:,}",
            f"{ours['delivered_per_s'] / stock['delivered_per_s']:.2f}x rate",
            f"in-process path {inproc['delivered_per_s']:,.0f}/s, lost {inproc['lost']:,}; app CPU/span: stock {_us(stock['cpu_ns_per_span'])}, "
            f"in-process {_us(inproc['cpu_ns_per_span'])}, helper path {_us(ours['cpu_ns_per_span'])}",
        ))
    r = results.get("sustained", {"error": "not run"})
    if "error" in r:
        out.append(("Helper process: sustained spans + logs", "n/a", "n/a", "n/a", r["error"][:60]))
    else:
        helper_cpu = "n/a" if r["helper_cpu_pct"] is None else f"{r['helper_cpu_pct']:.0f}%"
        out.append((
            f"Helper process: paced 20k spans/s + 80k lines/s for {r['seconds']:.0f}s (0 lost, RSS bounded)",
            "20,000 + 80,000/s asked",
            f"{r['spans_per_s']:,.0f} + {r['logs_per_s']:,.0f}/s made, lost {r['lost_spans']:,} + {r['lost_logs']:,}",
            "",
            f"RSS {r['rss_start_mb']:.0f} -> peak {r['rss_peak_mb']:.0f} MB; CPU app {r['app_cpu_pct']:.0f}%, helper {helper_cpu} of a core",
        ))
    r = results.get("kill", {"error": "not run"})
    if "error" in r:
        out.append(("Helper process killed mid-run", "n/a", "n/a", "n/a", r["error"][:60]))
    else:
        out.append((
            f"Helper process killed (SIGKILL) halfway through {r['n']:,} spans",
            "",
            f"lost {r['lost']:,}, re-sent twice {r['duplicates']:,}, restarts {r['restarts']}",
            "",
            f"longest span call {r['worst_call_ms']:.1f} ms (bound: OTEL_TRADING_EXPORT_BLOCK_TIMEOUT 500 ms)",
        ))
    r = results.get("drop", {"error": "not run"})
    if "error" in r:
        out.append(("Helper process: dropped vs kept record", "n/a", "n/a", "n/a", r["error"][:60]))
    else:
        out.append((
            "Helper process: app-side cost of a dropped record vs a kept one (queue + marshal)",
            f"{r['keep_ns'] / 1000:.2f} us kept",
            f"{r['drop_ns'] / 1000:.2f} us dropped",
            f"{r['drop_ns'] / r['keep_ns']:.2f}x time",
            "a drop is one counter increment; no log record built",
        ))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export_process", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated: " + ",".join(ITEMS))
    args = parser.parse_args(argv)
    results = run(args.quick, args.only.split(",") if args.only else None)
    for row in rows(results):
        print(" | ".join(row))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
