"""The configuration users launch: every item is real processes under ``opentelemetry-instrument``.

Each item runs a small app from ``bench/apps`` (which times its own hot loop) in
up to four configurations, alternating the order every round:

* ``none``       plain ``python app.py`` (no instrumentation)
* ``ours``       ``opentelemetry-instrument python app.py`` with otel-trading's defaults
* ``ours+sdkm``  the same with ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true`` (the old default)
* ``reference``  the stock ``opentelemetry-distro`` + OTLP exporter, same release set, own venv
* ``helper``     ``ours`` with the ccxt instrumentation off, the app writing one helper span by hand
* ``ours+xp``    ``ours`` with the export helper process (``OTEL_TRADING_EXPORT_PROCESS=true``; busy producer)

All exporters send to a loopback OTLP receiver in its own process (``bench/receiver.py``),
which counts what arrives: drops are exact (made - delivered).
"""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from bench import installed, reference
from bench.receiver import Receiver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(ROOT, "bench", "apps")
OURS_PY = sys.executable
SDK_METRICS = {"OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true"}
NO_LOG_EXPORT = {"OTEL_LOGS_EXPORTER": "none"}
EXPORT_PROCESS = {"OTEL_TRADING_EXPORT_PROCESS": "true"}
MARKET_DATA_OFF = {"OTEL_TRACES_SAMPLER": "parentbased_trading", "OTEL_TRACES_SAMPLER_ARG": "market_data=0"}

# item -> configuration -> (app, extra env)
ITEMS: dict[str, dict[str, tuple[str, dict[str, str]]]] = {
    "span_api": {
        "none": ("span_api.py", {}),
        "ours": ("span_api.py", {}),
        "ours+sdkm": ("span_api.py", SDK_METRICS),
        "reference": ("span_api.py", {}),
    },
    "span_helper": {"ours": ("span_helper.py", {}), "ours+sdkm": ("span_helper.py", SDK_METRICS)},
    "dropped": {
        "ours": ("span_market_data.py", MARKET_DATA_OFF),
        "reference": ("span_api.py", {"OTEL_TRACES_SAMPLER": "always_off"}),
    },
    "structlog_own": {
        "none": ("structlog_own.py", {}),
        "ours": ("structlog_own.py", NO_LOG_EXPORT),
        "reference": ("structlog_own.py", {}),
    },
    "structlog_default": {"none": ("structlog_default.py", {}), "ours": ("structlog_default.py", NO_LOG_EXPORT)},
    "stdlib": {"none": ("stdlib_app.py", {}), "ours": ("stdlib_app.py", NO_LOG_EXPORT)},
    "otlp_logs": {"none": ("structlog_own.py", {}), "ours": ("structlog_own.py", {"OTEL_LOGS_EXPORTER": "otlp"})},
    "ccxt_order": {
        "none": ("ccxt_order.py", {}),
        "ours": ("ccxt_order.py", {}),
        "helper": ("ccxt_order_helper.py", {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "ccxt"}),
    },
}


# A log line's runs land at one of two speeds (~18 or ~30-37 us on the 2-core VM, whatever the configuration,
# pinned or not; see _timing.per_call_ns): twice the processes for these cheap items in a full run.
LOG_ITEMS = frozenset({"structlog_own", "structlog_default", "stdlib", "otlp_logs"})


class Launcher:
    """Runs an app in one configuration against the shared receiver; knows where each venv is."""

    def __init__(self, receiver: Receiver, reference_python: str | None, spool_dir: str, ours_python: str = OURS_PY) -> None:
        self.receiver = receiver
        self.spool_dir = spool_dir
        self.pythons = {"none": ours_python, "ours": ours_python, "ours+sdkm": ours_python, "helper": ours_python, "ours+xp": ours_python, "reference": reference_python}

    def available(self, config: str) -> bool:
        return self.pythons[config] is not None

    def argv(self, config: str, *args: str) -> list[str]:
        python = self.pythons[config]
        assert python is not None
        if config == "none":
            return [python, *args]
        return [os.path.join(os.path.dirname(python), "opentelemetry-instrument"), python, *args]

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH"))}
        env.update(
            OTEL_SERVICE_NAME="bench-app",
            OTEL_EXPORTER_OTLP_ENDPOINT=self.receiver.endpoint,
            OTEL_EXPORTER_OTLP_INSECURE="true",
            # this run's own spool: an earlier run's leftovers would be replayed into the receiver's counts, and
            # a spool file that exists is opened at every start (the default folder is shared with the user's apps)
            OTEL_TRADING_SPOOL_DIR=self.spool_dir,
        )
        env.update(extra)
        return env

    def run_app(self, config: str, app: str, extra: dict[str, str], *args: str) -> dict:
        """Run ``app`` to completion and return the JSON it wrote. Its output goes to a file, not a pipe: the
        stdlib app logs every line to stderr, and a pipe's reader waking per write added 20-30% to each line."""
        with tempfile.NamedTemporaryFile(suffix=".json") as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(
                self.argv(config, os.path.join(APPS, app), "--out", out.name, *args),
                env=self.env(extra), cwd=APPS, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, timeout=600,
            )
            text = open(out.name).read()
            if proc.returncode != 0 or not text:
                err.seek(max(os.fstat(err.fileno()).st_size - 4096, 0))
                tail = err.read().decode(errors="replace").strip().splitlines()[-1:]
                raise RuntimeError(f"{config} {app} exit {proc.returncode}: {tail}")
        return json.loads(text)


def _order(configs: list[str], round_: int) -> list[str]:
    shift = round_ % len(configs)
    return configs[shift:] + configs[:shift]


def cost_item(launcher: Launcher, item: str, n: int, rounds: int, reps: int) -> dict:
    """ns per call of each configuration: one value per process (the app's median), ``rounds`` processes each."""
    configs = [c for c in ITEMS[item] if launcher.available(c)]
    values: dict[str, list[float]] = {c: [] for c in configs}
    extra: dict[str, Any] = {}
    for round_ in range(rounds):
        for config in _order(configs, round_):
            app, env = ITEMS[item][config]
            if item == "otlp_logs":
                launcher.receiver.reset()
            result = launcher.run_app(config, app, env, "--n", str(n), "--reps", str(reps))
            values[config].append(result["ns"])
            if item == "otlp_logs" and config == "ours":
                stats = launcher.receiver.wait_idle("logs", expect=result["calls"], quiet=1.0)
                extra.setdefault("made", []).append(result["calls"])
                extra.setdefault("delivered", []).append(stats["logs"])
    out: dict[str, Any] = {c: summary(v) for c, v in values.items()}
    if extra:
        out["made"], out["delivered"] = sum(extra["made"]), sum(extra["delivered"])
    return out


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def delivery_item(launcher: Launcher, n: int, rounds: int) -> dict:
    """A busy producer making ``n`` spans flat out: delivered spans/s and exact losses, ours (both export paths) vs the stock distro."""
    configs = [c for c in ("ours", "ours+xp", "reference") if launcher.available(c)]
    runs: dict[str, list[dict]] = {c: [] for c in configs}
    for round_ in range(rounds):
        for config in _order(configs, round_):
            runs[config].append(_produce(launcher, config, "--n", str(n)))
    return {
        c: {
            "delivered_per_s": summary([r["delivered"] / r["flush_s"] for r in rs]),
            "made": sum(r["made"] for r in rs),
            "delivered": sum(r["delivered"] for r in rs),
        }
        for c, rs in runs.items()
    }


def _produce(launcher: Launcher, config: str, *args: str) -> dict:
    launcher.receiver.reset()
    result = launcher.run_app(config, "producer.py", EXPORT_PROCESS if config == "ours+xp" else {}, *args)
    stats = launcher.receiver.wait_idle("spans", expect=result["made"], quiet=1.0)
    result["delivered"] = stats["spans"]
    return result


def paced_item(launcher: Launcher, ladder: list[int], seconds: float) -> dict:
    """The highest paced span rate each side carries with zero loss (one process per step)."""
    out = {}
    for config in (c for c in ("ours", "reference") if launcher.available(c)):
        best, steps = 0.0, []
        for rate in ladder:
            r = _produce(launcher, config, "--rate", str(rate), "--seconds", str(seconds))
            achieved = r["made"] / r["produce_s"]
            lost = r["made"] - r["delivered"]
            steps.append({"offered": rate, "achieved": achieved, "lost": lost})
            if lost:
                break
            best = max(best, achieved)
            if achieved < 0.9 * rate:  # the producer itself cannot go faster
                break
        out[config] = {"no_loss_rate": best, "steps": steps, "producer_bound": not steps[-1]["lost"]}
    return out


def startup_item(launcher: Launcher, rounds: int) -> dict:
    """Wall time of ``[opentelemetry-instrument] python -c pass``, hyperfine-style: alternating, repeated.

    Run from ``bench/apps``: ``opentelemetry-instrument`` puts the working directory on PYTHONPATH, and
    from the repository root the reference venv would find (and start) this checkout's ``otel_trading``.
    """
    configs = [c for c in ("none", "ours", "reference") if launcher.available(c)]
    times: dict[str, list[float]] = {c: [] for c in configs}
    cpu: dict[str, list[float]] = {c: [] for c in configs}
    for round_ in range(rounds + 1):
        for config in _order(configs, round_):
            cpu_start, start = _children_cpu(), time.perf_counter()
            _run_exact(launcher.argv(config, "-c", "pass"), launcher.env({}))
            if round_:  # the first round warms the page cache
                times[config].append((time.perf_counter() - start) * 1e9)
                cpu[config].append((_children_cpu() - cpu_start) * 1e9)
    out: dict[str, Any] = {c: summary(v) for c, v in times.items()}
    out["cpu"] = {c: summary(v) for c, v in cpu.items()}  # user+sys of both processes: what a busy machine's waits leave out
    return out


def _run_exact(argv: list[str], env: dict[str, str]) -> None:
    """Run to completion, timed to the exit: ``subprocess.run(timeout=...)`` polls the child every 50 ms,
    which rounds each start-up up to the next 50 ms tick; a blocking wait with a watchdog does not."""
    proc = subprocess.Popen(argv, env=env, cwd=APPS, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watchdog = threading.Timer(120, proc.kill)  # a start that hangs fails the item instead of the bench
    watchdog.start()
    try:
        code = proc.wait()
    finally:
        watchdog.cancel()
    if code:
        raise subprocess.CalledProcessError(code, argv)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


_IMPORT = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)")


def importtime_item(launcher: Launcher, top: int = 8) -> dict:
    """``python -X importtime``: the cost of ``import otel_trading`` and the launch's hot spots (self time,
    both processes of ``opentelemetry-instrument``: the wrapper and the python it execs)."""
    plain = subprocess.run([launcher.pythons["ours"], "-X", "importtime", "-c", "import otel_trading"], capture_output=True, text=True,
                           env=launcher.env({}), cwd=APPS, timeout=120)
    total = sum(int(m.group(1)) for m in _IMPORT.finditer(plain.stderr))
    launched = subprocess.run(launcher.argv("ours", "-c", "pass"), capture_output=True, text=True, cwd=APPS,
                              env=launcher.env({"PYTHONPROFILEIMPORTTIME": "1"}), timeout=120)
    found = [(int(m.group(1)), m.group(3)) for m in _IMPORT.finditer(launched.stderr)]
    hot = sorted(found, reverse=True)[:top]
    return {
        "import_otel_trading_us": total,
        "launch_imports_us": sum(us for us, _ in found),
        "launch_otel_trading_us": sum(us for us, name in found if name.startswith("otel_trading")),
        "hot_spots": [{"module": name, "self_us": us} for us, name in hot],
    }


def run(quick: bool, only: set[str] | None = None) -> dict:
    """Every launched item; ``quick`` = small sizes and the reference venv only when already cached."""
    ref = reference.ensure(create=not quick and _uses_reference(only))
    # start-up is measured on a pip-installed copy (see bench/installed.py); the dev venv when there is none
    ours_installed = installed.ensure(create=not quick) if not only or only & {"startup", "importtime"} else None
    n, rounds, reps = (2_000, 1, 1) if quick else (2_000, 5, 30)  # many short runs a process: see _timing.per_call_ns
    results: dict[str, Any] = {
        "reference_venv": ref is not None,
        "startup_install": "pip install (bench/.venv-ours)" if ours_installed else "dev venv (editable install, test extras)",
        "load_before": os.getloadavg(),
    }
    with Receiver() as receiver, tempfile.TemporaryDirectory(prefix="bench-spool-") as spool_dir:
        launcher = Launcher(receiver, ref, spool_dir)
        startup_launcher = Launcher(receiver, ref, spool_dir, ours_installed or OURS_PY)
        steps: list[tuple[str, Any]] = [
            (item, lambda item=item: cost_item(launcher, item, n, rounds * 2 if item in LOG_ITEMS and not quick else rounds, reps)) for item in ITEMS
        ]
        steps += [
            ("delivery", lambda: delivery_item(launcher, 5_000 if quick else 200_000, 1 if quick else 3)),
            ("paced", lambda: paced_item(launcher, [5_000, 20_000] if quick else [5_000, 10_000, 15_000, 20_000, 30_000, 40_000, 60_000], 0.5 if quick else 2.0)),
            ("startup", lambda: startup_item(startup_launcher, 1 if quick else 10)),
            ("importtime", lambda: importtime_item(startup_launcher)),
        ]
        for name, step in steps:
            if only and name not in only:
                continue
            start = time.monotonic()
            try:
                results[name] = step()
            except Exception as exc:  # noqa: BLE001 - one broken item shows as n/a, the rest still run
                results[name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
            print(f"  launched {name}: {time.monotonic() - start:.1f}s (load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    results["load_after"] = os.getloadavg()
    return results


def _uses_reference(only: set[str] | None) -> bool:
    """Whether a selected item runs the stock distro (``--only launched.ccxt_order`` builds no reference venv)."""
    return only is None or any(item not in ITEMS or "reference" in ITEMS[item] for item in only)


NO_REFERENCE = "n/a (no reference venv)"
Row = tuple[str, str, str, str, str]


def _us(s: dict) -> str:
    return f"{s['median'] / 1000:.2f} us [{s['min'] / 1000:.2f}-{s['max'] / 1000:.2f}]"


def _ms(s: dict) -> str:
    return f"{s['median'] / 1e6:.0f} ms [{s['min'] / 1e6:.0f}-{s['max'] / 1e6:.0f}]"


def rows(results: dict) -> list[Row]:
    """(target, baseline, otel-trading, ratio, goal): every target of issue 15, then the breakdown."""
    results = {**results, "startup_cpu": results.get("startup", {}).get("cpu", {})}
    out: list[Row] = []

    def cost(label: str, item: str, base: str, ours: str, goal: str, ours_item: str | None = None, fmt=_us, note: str = "") -> None:
        b, o = results.get(item, {}), results.get(ours_item or item, {})
        if "error" in b or "error" in o:
            out.append((label, "n/a", "n/a", "n/a", (b.get("error") or o.get("error"))[:80]))
        elif base not in b or ours not in o:
            missing = NO_REFERENCE if "reference" in (base, ours) else "n/a (not run)"
            out.append((label, missing if base not in b else fmt(b[base]), missing if ours not in o else fmt(o[ours]), "-", goal))
        else:
            out.append((label, fmt(b[base]), fmt(o[ours]) + note, f"{o[ours]['median'] / b[base]['median']:.2f}x", goal))

    cost("Span, plain OTel API: ours vs stock distro", "span_api", "reference", "ours", "<= 1.10x")
    cost("Span via our helper vs stock distro's plain-API span", "span_api", "reference", "ours", "<= 1.00x", "span_helper")
    cost("Dropped market_data span via helper vs raw ALWAYS_OFF span (stock)", "dropped", "reference", "ours", "<= 0.50x")
    cost("structlog line, app's own JSON config (log export off) vs uninstrumented", "structlog_own", "none", "ours", "<= 1.25x (aim 1.10x)")
    cost("structlog line, structlog unconfigured (log export off) vs uninstrumented", "structlog_default", "none", "ours", "<= 1.25x (aim 1.10x)")
    cost("stdlib logging line (log export off) vs uninstrumented", "stdlib", "none", "ours", "<= 1.25x (aim 1.10x)")
    logs = results.get("otlp_logs", {})
    lost = f", delivered {logs['delivered']:,}/{logs['made']:,}" if "made" in logs else ""
    cost("OTLP log export of every line (own structlog config) vs uninstrumented", "otlp_logs", "none", "ours", "<= 3x (aim 2x), 0 lost", note=lost)
    out.append(_ccxt_order_row(results.get("ccxt_order", {})))

    d = results.get("delivery", {})
    if "error" in d or "ours" not in d:
        out.append(("Delivered spans/s, busy producer: ours vs stock distro", "n/a", "n/a", "n/a", d.get("error", "not run")[:80]))
    else:
        def side(s: dict) -> str:
            return f"{s['delivered_per_s']['median']:,.0f}/s, lost {s['made'] - s['delivered']:,}/{s['made']:,}"

        ref = d.get("reference")
        for config, label in (("ours", ""), ("ours+xp", ", export helper process")):
            if config in d:
                out.append((
                    f"Delivered spans/s, busy producer: ours{label} vs stock distro",
                    side(ref) if ref else NO_REFERENCE,
                    side(d[config]),
                    f"{d[config]['delivered_per_s']['median'] / ref['delivered_per_s']['median']:.2f}x" if ref else "-",
                    ">= 3x, 0 lost",
                ))
    p = results.get("paced", {})
    if "error" in p or "ours" not in p:
        out.append(("Highest zero-loss paced span rate", "n/a", "n/a", "n/a", p.get("error", "not run")[:80]))
    else:
        def rate(s: dict) -> str:
            return f"{s['no_loss_rate']:,.0f}/s" + (" (producer-bound)" if s["producer_bound"] else "")

        ref = p.get("reference")
        out.append((
            "Highest zero-loss paced span rate (one process per step)",
            rate(ref) if ref else NO_REFERENCE,
            rate(p["ours"]),
            f"{p['ours']['no_loss_rate'] / max(ref['no_loss_rate'], 1):.2f}x" if ref else "-",
            "reported",
        ))
    cost(f"Start-up: opentelemetry-instrument python -c pass vs stock distro ({results.get('startup_install', 'dev venv')})", "startup", "reference", "ours", "<= 1.00x", fmt=_ms)
    it = results.get("importtime", {})
    if "error" in it or not it:
        out.append(("import otel_trading (python -X importtime)", "n/a", "n/a", "n/a", it.get("error", "not run")[:80]))
    else:
        out.append(("import otel_trading (python -X importtime)", "", f"{it['import_otel_trading_us'] / 1000:.1f} ms", "", "listed (hot spots below)"))

    # breakdown: where the launched cost goes
    cost("  breakdown: span, plain API, SDK internal metrics on (old default) vs ours", "span_api", "ours", "ours+sdkm", "-")
    cost("  breakdown: span via helper, SDK internal metrics on vs off", "span_helper", "ours", "ours+sdkm", "-")
    cost("  breakdown: span, plain API: stock distro vs uninstrumented (no-op API)", "span_api", "none", "reference", "-")
    cost("  breakdown: structlog own config: stock distro vs uninstrumented", "structlog_own", "none", "reference", "-")
    cost("  breakdown: start-up: ours vs plain python -c pass", "startup", "none", "ours", "-", fmt=_ms)
    cost("  breakdown: start-up CPU time (user+sys): ours vs stock distro", "startup_cpu", "reference", "ours", "-", fmt=_ms)
    return out


def _ccxt_order_row(r: dict) -> Row:
    """What the ccxt instrumentation adds to ``create_order`` (ours - none) against what one helper order
    span around the same call adds (helper - none): the budget of issue 13. CPU time of the process."""
    label = "ccxt create_order, zero-code instrumentation: added CPU time vs one helper order span"
    if "error" in r or not {"none", "ours", "helper"} <= r.keys():
        return (label, "n/a", "n/a", "n/a", r.get("error", "not run")[:80])
    none = r["none"]["median"]
    helper, added = r["helper"]["median"] - none, r["ours"]["median"] - none
    return (
        label,
        f"{helper / 1000:.2f} us helper span",
        f"{added / 1000:.2f} us added (call {none / 1000:.2f} us uninstrumented)",
        f"{added / helper:.2f}x" if helper > 0 else "-",
        "<= 1.00x one helper span",
    )


def hot_spots(results: dict) -> str:
    it = results.get("importtime", {})
    if "hot_spots" not in it:
        return ""
    spots = ", ".join(f"{h['module']} {h['self_us'] / 1000:.1f}" for h in it["hot_spots"])
    return (
        f"Import hot spots of `opentelemetry-instrument python -c pass` (ms self time; all imports {it['launch_imports_us'] / 1000:.0f} ms, "
        f"otel_trading modules {it['launch_otel_trading_us'] / 1000:.0f} ms): {spots}"
    )
