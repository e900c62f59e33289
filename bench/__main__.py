"""otel-trading benchmarks: ``python -m bench`` (full) or ``python -m bench --quick`` (CI smoke).

Two tables. The targets, in the configuration users launch (``bench/launched.py``:
real processes under ``opentelemetry-instrument``, ours vs the stock distro vs no
instrumentation, alternating, medians and spread). Then the in-process breakdown:
each item in its own process, timing its baseline and ours alternately in that
process. Ratios compare sides measured in the same run, so a busy machine skews
both alike. ``--json FILE`` also writes the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from bench import export_process, launched

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What the system otel-trading replaces reported (its own README), shown beside ours.
REPLACED = {"logs_per_s": 117_785, "ms_per_log": 0.008, "tracing_overhead_pct": 12.3}

FULL = {
    "span": (20_000, 7),
    "dropped": (50_000, 7),
    "structlog": (20_000, 7),
    "stdlib": (20_000, 7),
    "metric": (50_000, 7),
    "overhead": (5_000, 7),
    "e2e": (30_000, 3),
    "rss": (1_000_000, 1),
    "sustained": (2_000, 1),
    "outage": (60, 1),  # seconds without a collector (bench/outage.py)
    "export_process": (0, 0),  # bench/export_process.py sizes its own items
    "ccxt_order": (5_000, 7),
    "ccxt_dropped": (50_000, 7),
}
QUICK = {
    "span": (2_000, 3),
    "dropped": (2_000, 3),
    "structlog": (2_000, 3),
    "stdlib": (2_000, 3),
    "metric": (2_000, 3),
    "overhead": (500, 3),
    "e2e": (2_000, 1),
    "rss": (5_000, 1),
    "sustained": (150, 1),
    "outage": (4, 1),
    "export_process": (0, 0),
    "ccxt_order": (400, 3),
    "ccxt_dropped": (2_000, 3),
}


def run_item(name: str, n: int, reps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for key in [k for k in env if k.startswith("OTEL_")]:  # the items configure everything themselves
        del env[key]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.items", name, "--n", str(n), "--reps", str(reps)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=1800,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:] or ''}"}
    return json.loads(lines[-1])


def _us(ns: float) -> str:
    return f"{ns / 1000:.2f} us"


def _rate(per_s: float) -> str:
    return f"{per_s:,.0f}/s"


def rows(results: dict) -> list[tuple[str, str, str, str, str]]:
    """(measure, baseline, otel-trading, ratio, replaced system) per row."""
    out = []

    def err(name: str, label: str) -> bool:
        if "error" in results[name]:
            out.append((label, "n/a", "n/a", "n/a", results[name]["error"][:60]))
            return True
        return False

    def cost_row(name: str, label: str, replaced: str = "") -> None:
        if err(name, label):
            return
        r = results[name]
        out.append((label, _us(r["baseline_ns"]), _us(r["ours_ns"]), f"{r['ours_ns'] / r['baseline_ns']:.2f}x time", replaced))

    cost_row("span", "Span via helper vs raw SDK span (3 attrs, sampled)")
    cost_row("dropped", "Dropped market-data span vs raw SDK span, ALWAYS_OFF")
    for name, label in (
        ("structlog", "JSON log line (6 kv, in a span): ours vs structlog prod chain+orjson"),
        ("stdlib", "stdlib log line via bridge vs stdlib+python-json-logger"),
    ):
        if err(name, label):
            continue
        r = results[name]
        out.append(
            (
                label,
                f"{_rate(r['baseline_per_s'])} ({_us(r['baseline_ns'])})",
                f"{_rate(r['ours_per_s'])} ({_us(r['ours_ns'])})",
                f"{r['ours_per_s'] / r['baseline_per_s']:.2f}x rate",
                (
                    f"{REPLACED['logs_per_s']:,}/s ({REPLACED['ms_per_log']} ms); filtered debug: "
                    f"{r['filtered_ours_ns'] / 1000:.2f} us vs {r['filtered_baseline_ns'] / 1000:.2f} us"
                )
                if name == "structlog"
                else "",
            )
        )
    cost_row("metric", "Metric: counter add (3 attrs) + histogram record vs raw SDK")
    if not err("ccxt_order", "ccxt create_order instrumentation vs one helper order span (CPU time)"):
        r = results["ccxt_order"]
        http = r["http"]
        out.append(
            (
                "ccxt create_order instrumentation vs one helper order span (CPU time)",
                _us(r["baseline_ns"]) + " helper span",
                _us(r["ours_ns"] - r["uninstrumented_ns"]) + " added",
                f"{(r['ours_ns'] - r['uninstrumented_ns']) / r['baseline_ns']:.2f}x time",
                f"metrics recorded at the next collection: +{_us(r.get('after_ns', 0))} there ({(r['ours_ns'] - r['uninstrumented_ns'] + r.get('after_ns', 0)) / r['baseline_ns']:.2f}x with it); "
                f"loopback fake exchange: {_us(http['baseline_ns'])} bare, {_us(http['ours_ns'])} instrumented ({http['ours_ns'] / http['baseline_ns']:.2f}x); "
                f"the same telemetry by hand with the helpers: {_us(r['by_hand_ns'] - r['uninstrumented_ns'])} added "
                f"(instrumented incl. its collection work {(r['ours_ns'] - r['uninstrumented_ns'] + r.get('after_ns', 0)) / (r['by_hand_ns'] - r['uninstrumented_ns']):.2f}x that)",
            )
        )
    cost_row("ccxt_dropped", "Dropped ccxt fetch_ticker (instrumentation) vs raw SDK span, ALWAYS_OFF (CPU time)")
    if not err("overhead", "Tracing overhead: handler + span + OTLP export"):
        r = results["overhead"]
        out.append(
            (
                f"Tracing overhead: {r['baseline_ns'] / 1000:.0f} us handler + 1 span + OTLP export",
                _us(r["baseline_ns"]) + " untraced",
                _us(r["ours_ns"]) + " traced",
                f"+{(r['ours_ns'] - r['baseline_ns']) / 1000:.1f} us/call (+{r['overhead_pct']:.1f}%)",
                f"+{REPLACED['tracing_overhead_pct']}%",
            )
        )
    if not err("e2e", "End-to-end OTLP/gRPC export"):
        r = results["e2e"]
        for signal, what in (("spans", "spans"), ("logs", "log records")):
            stock, ours = r[signal]["stock"], r[signal]["ours"]
            out.append(
                (
                    f"Delivered {what}/s to loopback receiver (tight loop, {r['n']:,} x {r['reps']})",
                    f"{_rate(stock['delivered_per_s'])}, dropped {stock['dropped_total']:,}",
                    f"{_rate(ours['delivered_per_s'])}, dropped {ours['dropped_total']:,}",
                    f"{ours['delivered_per_s'] / stock['delivered_per_s']:.2f}x rate",
                    f"undecodable: {r[signal]['undecodable']}",
                )
            )
        cap = r["capacity"]
        out.append(
            (
                "Export thread capacity, spans/s (encode + gRPC, 512/batch)",
                _rate(cap["stock"]),
                _rate(cap["ours"]),
                f"{cap['ours'] / cap['stock']:.2f}x rate",
                "",
            )
        )
    if not err("sustained", "Highest sustained span rate with zero loss"):
        r = results["sustained"]
        stock, ours = r["stock"], r["ours"]
        out.append(
            (
                f"Highest paced span rate with zero loss ({r['seconds_per_step']:g}s steps)",
                _rate(stock["no_loss_rate"]),
                _rate(ours["no_loss_rate"]) + ("" if ours["steps"][-1]["dropped"] else " (producer-bound, no drops)"),
                f"{ours['no_loss_rate'] / max(stock['no_loss_rate'], 1):.2f}x rate",
                "stock: SDK 2048 queue; ours: 8192",
            )
        )
        st, ot = stock["threads4"], ours["threads4"]
        out.append(
            (
                "4 threads flat out (GIL-bound burst): delivered / made",
                f"{st['delivered']:,} / {st['made']:,} (dropped {st['dropped']:,})",
                f"{ot['delivered']:,} / {ot['made']:,} (dropped {ot['dropped']:,})",
                f"{ot['delivered'] / max(st['delivered'], 1):.2f}x delivered",
                "drops counted + warned",
            )
        )
    if not err("rss", "Log lines through structlog pipeline + OTLP"):
        r = results["rss"]
        out.append(
            (
                f"{r['n']:,} log lines (JSON + OTLP export): rate, peak RSS",
                "",
                f"{_rate(r['lines_per_s'])} ({r['ms_per_line']:.4f} ms), {r['peak_rss_mb']:.0f} MB, dropped {r['dropped']:,}",
                "",
                f"{REPLACED['logs_per_s']:,}/s ({REPLACED['ms_per_log']} ms)",
            )
        )
    if not err("outage", "Collector outage with the disk spool"):
        from bench import outage

        out.extend(outage.rows(results["outage"]))
    out += export_process.rows(results["export_process"])
    return out


def table(body: list[tuple[str, str, str, str, str]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(5)]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a CI smoke run (numbers not meaningful)")
    parser.add_argument("--only", help="comma-separated item names: " + ",".join(FULL) + ", launched (all launched items), launched.ITEM (one of them, e.g. launched.startup)")
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    names = args.only.split(",") if args.only else ["launched", *sizes]
    print(
        f"otel-trading bench ({'quick' if args.quick else 'full'}): Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.machine()} {platform.processor() or platform.system()}, load {_load()}",
        flush=True,
    )
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}}
    launched_only = {n.split(".", 1)[1] for n in names if n.startswith("launched.")}
    if "launched" in names or launched_only:
        results["launched"] = launched.run(args.quick, launched_only or None)
        print(f"\nTargets, as launched (opentelemetry-instrument; medians [min-max] over processes; load {_load()}):")
        print(table(launched.rows(results["launched"]), ("Target", "Baseline", "otel-trading", "Ratio", "Goal")))
        print(launched.hot_spots(results["launched"]))
    inprocess = {}
    for name in (n for n in names if n in sizes):
        start = time.monotonic()
        n, reps = sizes[name]
        inprocess[name] = export_process.run(args.quick) if name == "export_process" else run_item(name, n, reps)
        print(f"  {name}: {time.monotonic() - start:.1f}s", file=sys.stderr, flush=True)
    if inprocess:
        for name in FULL:
            inprocess.setdefault(name, {"error": "not run (--only)"})
        print(f"\nIn-process breakdown (baseline and ours alternately in one process; load {_load()}):")
        print(table(rows(inprocess), ("Measure", "Baseline", "otel-trading", "Ratio", "Replaced system / notes")))
        print("Ratios compare both sides measured alternately in the same process; ns/op are medians of the repetitions.")
    results["inprocess"] = inprocess
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
