"""Health checks, the heartbeat and the opt-in ``/livez`` ``/readyz`` ``/healthz`` server.

A bot that stops trading must say so (status metrics, probes) and a bot that
dies must be noticed (the heartbeat stops; its series vanish: the alert rules'
dead-man's switch). Checks run on ONE daemon thread with its own asyncio loop,
so they never run on, block or slow the app's threads: async checks run on that
loop, sync ones in a daemon thread of their own, and a check that overruns its
timeout is marked unhealthy (a hung sync check is not started again until it
returns). Metrics and HTTP answers are read from the same state, so they agree.

    from otel_trading import health
    health.register("broker", health.tcp_check("broker.example", 443), critical=True)
    health.register("quotes", health.feed_check("itch", stale_after=5))
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlsplit

from opentelemetry import metrics as metrics_api
from opentelemetry.metrics import CallbackOptions, Observation

from otel_trading.report import report
from otel_trading.trading import attributes as A
from otel_trading.trading import metrics as trading_metrics_module

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

_log = logging.getLogger("otel_trading.health")


class Status(enum.Enum):
    """The value is what ``trading.health.status`` exports."""

    HEALTHY = 1.0
    DEGRADED = 0.5
    UNHEALTHY = 0.0

    @property
    def label(self) -> str:
        return self.name.lower()


Outcome = Union[None, bool, Status, "tuple[Status, str]"]
"""What a check returns: None/True healthy, False unhealthy, a Status, or (Status, reason). Raising is unhealthy."""
Check = Callable[[], Union[Outcome, Awaitable[Outcome]]]

_ERROR_CHARS = 200


class Component:
    """A registered check and its last result."""

    def __init__(self, name: str, check: Check, timeout: float, interval: float, critical: bool, attributes: dict) -> None:
        self.name = name
        self.check = check
        self.timeout = timeout
        self.interval = interval
        self.critical = critical
        self.attributes = attributes
        self.status: Status | None = None  # None until the first run ends
        self.error = ""
        self.checked_at = 0.0  # time.monotonic() of the last result
        self.due = 0.0
        self.running = False  # a sync check still in its thread (hung): not started again


class _State:
    """Everything the runner, the metrics and the server share; replaced in a forked child."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.components: dict[str, Component] = {}
        self.interval = 5.0
        self.started_unix = time.time()
        self.started = time.monotonic()
        self.last_beat_unix = 0.0
        self.last_beat = 0.0
        self.thread: threading.Thread | None = None
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None
        self.server: ThreadingHTTPServer | None = None
        self.instruments: tuple | None = None  # (meter provider, duration histogram, changes counter)


_state = _State()


def _after_fork_in_child() -> None:
    """The parent's threads do not exist in a child: forget them and every lock, keep the checks, and
    start the child's own heartbeat if the parent had one (a worker is a bot too). The server stays
    the parent's: the child would fight for its port."""
    global _state
    old, _state = _state, _State()
    _state.components = {name: Component(c.name, c.check, c.timeout, c.interval, c.critical, c.attributes)
                         for name, c in old.components.items()}
    _state.interval = old.interval
    if old.thread is not None and not old.stopping:
        start()


os.register_at_fork(after_in_child=_after_fork_in_child)


# ----------------------------------------------------------------------------- registration
def register(component: str, check: Check, *, timeout: float = 2.0, interval: float | None = None,
             critical: bool = True) -> None:
    """Run ``check`` every ``interval`` seconds (default OTEL_TRADING_HEALTH_INTERVAL) for ``component``.

    Registering a component again replaces its check. ``critical`` checks decide ``/readyz``
    and the overall status; a failing non-critical one only degrades it.
    """
    if not callable(check):
        report(f"health check for {component!r} is not callable; ignored")
        return
    timeout = timeout if _positive(timeout) else 2.0
    interval = interval if interval is not None and _positive(interval) else None
    attrs = {A.COMPONENT: str(component), A.HEALTH_CRITICAL: bool(critical)}
    with _state.lock:
        _state.components[str(component)] = Component(str(component), check, timeout, interval or 0.0, bool(critical), attrs)
    _wake()


register_health_check = register  # the name ``otel_trading`` exports


def unregister(component: str) -> None:
    with _state.lock:
        _state.components.pop(str(component), None)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and 0 < value < 86400


# ----------------------------------------------------------------------------- ready-made checks
def tcp_check(host: str, port: int) -> Check:
    """Healthy when a TCP connection to ``host:port`` opens."""

    async def check() -> Outcome:
        _, writer = await asyncio.open_connection(host, port)
        writer.close()
        return Status.HEALTHY

    check.__qualname__ = f"tcp_check({host}:{port})"
    return check


def http_check(url: str, healthy: Iterable[int] = range(200, 400)) -> Check:
    """Healthy when a GET of ``url`` answers with a status in ``healthy``; any other answer is unhealthy."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    accepted = frozenset(healthy)
    shown = f"{parts.scheme}://{host}:{port}{parts.path}"  # never the userinfo or the query (tokens)

    async def check() -> Outcome:
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl.create_default_context() if secure else None)
        try:
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc.rpartition('@')[2]}\r\nConnection: close\r\n"
                         "User-Agent: otel-trading-health\r\n\r\n".encode("latin-1"))
            await writer.drain()
            line = (await reader.readline()).decode("latin-1").split()
        finally:
            writer.close()
        code = int(line[1]) if len(line) >= 2 and line[1].isdigit() else None
        if code in accepted:
            return Status.HEALTHY
        return Status.UNHEALTHY, f"{shown} answered {code if code is not None else 'no HTTP status'}"

    check.__qualname__ = f"http_check({shown})"
    return check


def _staleness_check(what: str, last: Callable[[], float | None], stale_after: float, degraded_after: float | None) -> Check:
    """Age of the last activity; before the first, the time since the check was made (a starting bot has ``stale_after`` to begin)."""
    made = time.monotonic()

    def check() -> Outcome:
        seen = last()
        age = time.monotonic() - (made if seen is None else seen)
        if seen is None and age > stale_after:
            return Status.UNHEALTHY, f"{what}: nothing for {age:.1f}s since the check was registered"
        if age > stale_after:
            return Status.UNHEALTHY, f"{what}: stale for {age:.1f}s (limit {stale_after:g}s)"
        if degraded_after is not None and age > degraded_after:
            return Status.DEGRADED, f"{what}: {age:.1f}s since last (degraded after {degraded_after:g}s)"
        return Status.HEALTHY

    return check


def feed_check(feed: str, stale_after: float, degraded_after: float | None = None) -> Check:
    """Seconds since ``record_tick(feed)`` last ran: unhealthy beyond ``stale_after``, degraded beyond ``degraded_after``."""
    return _staleness_check(f"feed {feed}", lambda: trading_metrics_module.last_tick(feed), stale_after, degraded_after)


def stage_check(stage: str, stale_after: float, degraded_after: float | None = None) -> Check:
    """Seconds since ``record_stage(stage)`` last ran (the ``trading.pipeline.stage.staleness`` data)."""
    return _staleness_check(f"stage {stage}", lambda: trading_metrics_module.last_stage_work(stage), stale_after, degraded_after)


# ----------------------------------------------------------------------------- status
def overall() -> Status:
    """Unhealthy if a critical check is unhealthy or has not run yet; degraded if anything else is not healthy."""
    worst = Status.HEALTHY
    for c in list(_state.components.values()):
        if c.critical and c.status in (None, Status.UNHEALTHY):
            return Status.UNHEALTHY
        if c.status is not Status.HEALTHY:
            worst = Status.DEGRADED
    return worst


def ready() -> bool:
    """Every critical check has run and is not unhealthy (degraded still serves)."""
    return all(c.status not in (None, Status.UNHEALTHY) for c in list(_state.components.values()) if c.critical)


def alive() -> bool:
    """The health thread beat within three intervals (plus the longest timeout)."""
    if _state.thread is None or not _state.thread.is_alive():
        return False
    slack = max((c.timeout for c in list(_state.components.values())), default=0.0)
    return time.monotonic() - _state.last_beat <= 3 * _state.interval + slack


def snapshot() -> dict:
    """The ``/healthz`` document: overall status and, per component, status, last error (redacted) and age."""
    now = time.monotonic()
    components = {}
    for c in list(_state.components.values()):
        components[c.name] = {
            "status": c.status.label if c.status is not None else "unknown",
            "critical": c.critical,
            "error": c.error,
            "age_seconds": round(now - c.checked_at, 3) if c.checked_at else None,
        }
    return {
        "status": overall().label,
        "ready": ready(),
        "alive": alive(),
        "started_unix": _state.started_unix,
        "uptime_seconds": round(now - _state.started, 3),
        "heartbeat_age_seconds": round(now - _state.last_beat, 3) if _state.last_beat else None,
        "components": components,
    }


# ----------------------------------------------------------------------------- runner
def start(interval: float | None = None) -> None:
    """Start the health thread (idempotent). The heartbeat advances every ``interval`` seconds."""
    if interval is not None and _positive(interval):
        _state.interval = float(interval)
    with _state.lock:
        if _state.thread is not None and _state.thread.is_alive():
            return
        _state.thread = threading.Thread(target=_run_loop, name="otel-trading-health", daemon=True)
        _state.thread.start()


def stop(timeout: float = 2.0) -> None:
    """Stop the server and the health thread (tests, shutdown)."""
    stop_server()
    thread = _state.thread
    _state.stopping = True
    _wake()
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)
    _state.thread, _state.stopping = None, False


def _wake() -> None:
    loop, wake = _state.loop, _state.wake
    if loop is not None and wake is not None and not loop.is_closed():
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:
            pass


def _run_loop() -> None:
    loop = asyncio.new_event_loop()
    state = _state
    state.loop = loop
    try:
        loop.run_until_complete(_main(state))
    except Exception as exc:  # never let the health thread die silently
        report(f"health thread stopped: {exc!r}")
    finally:
        loop.close()


async def _main(state: _State) -> None:
    state.wake = asyncio.Event()
    tasks: set[asyncio.Task] = set()
    while not state.stopping:
        now = time.monotonic()
        state.last_beat, state.last_beat_unix = now, time.time()
        for c in list(state.components.values()):
            if c.due <= now:
                c.due = now + (c.interval or state.interval)
                if c.running:  # a hung sync check: still unhealthy, not started twice
                    continue
                task = asyncio.ensure_future(_run_check(state, c))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        due = min((c.due for c in state.components.values()), default=now + state.interval)
        delay = max(0.01, min(due, now + state.interval) - time.monotonic())
        state.wake.clear()
        try:
            await asyncio.wait_for(state.wake.wait(), delay)
        except asyncio.TimeoutError:
            pass
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _run_check(state: _State, c: Component) -> None:
    started = time.monotonic()
    try:
        outcome = await asyncio.wait_for(_call(c), c.timeout)
        status, error = _judge(outcome)
    except asyncio.TimeoutError:
        status, error = Status.UNHEALTHY, f"timed out after {c.timeout:g}s"
    except Exception as exc:  # a failing check is a result, not a crash
        status, error = Status.UNHEALTHY, f"{type(exc).__name__}: {exc}"
    duration = time.monotonic() - started
    _record(state, c, status, _redact(error), duration)


async def _call(c: Component) -> Outcome:
    if inspect.iscoroutinefunction(c.check):
        return await c.check()
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def run() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = c.check()
            if inspect.iscoroutine(result):
                result = asyncio.run(result)  # a sync callable that returned a coroutine
        except BaseException as exc:
            error = exc
        c.running = False
        try:
            loop.call_soon_threadsafe(_settle, future, result, error)
        except RuntimeError:  # the health thread stopped meanwhile
            pass

    c.running = True
    threading.Thread(target=run, name=f"otel-trading-health-{c.name}"[:60], daemon=True).start()
    return await future


def _settle(future: asyncio.Future, result: Any, exc: BaseException | None) -> None:
    if not future.done():
        future.set_exception(exc) if exc is not None else future.set_result(result)


def _judge(outcome: Any) -> tuple[Status, str]:
    if outcome is None or outcome is True:
        return Status.HEALTHY, ""
    if outcome is False:
        return Status.UNHEALTHY, "check returned False"
    if isinstance(outcome, Status):
        return outcome, ""
    if isinstance(outcome, tuple) and len(outcome) == 2 and isinstance(outcome[0], Status):
        return outcome[0], str(outcome[1])
    return Status.UNHEALTHY, f"check returned {type(outcome).__name__}, expected None, bool, Status or (Status, reason)"


def _redact(text: str) -> str:
    if not text:
        return ""
    try:
        from otel_trading.redaction import get_redactor

        text = get_redactor().redact_text(text)
    except Exception:
        text = "(error text could not be redacted)"
    return text[:_ERROR_CHARS]


def _record(state: _State, c: Component, status: Status, error: str, duration: float) -> None:
    previous = c.status
    c.status, c.error, c.checked_at = status, error, time.monotonic()
    duration_histogram, changes = _instruments()
    duration_histogram.record(duration, c.attributes)
    if status is previous or (previous is None and status is Status.HEALTHY):
        return
    changes.add(1, {**c.attributes, A.HEALTH_STATUS: status.label})
    was = previous.label if previous is not None else "unknown"
    log = _log.info if status is Status.HEALTHY else _log.warning
    log("health: %s is %s (was %s)%s", c.name, status.label, was, f": {error}" if error else "")


# ----------------------------------------------------------------------------- metrics
def _instruments() -> tuple:
    """Histogram and counter on the current global MeterProvider; the observable gauges read ``_state``."""
    provider = metrics_api.get_meter_provider()
    cached = _state.instruments
    if cached is not None and cached[0] is provider:
        return cached[1:]
    meter = provider.get_meter("otel_trading.health")
    duration = meter.create_histogram("trading.health.check.duration", "s", "Time a health check took",
                                      explicit_bucket_boundaries_advisory=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
    changes = meter.create_counter("trading.health.status_changes", "{change}", "Health status changes, by component and new status")
    meter.create_observable_gauge("trading.health.status", [_observe_status], "{status}",
                                  "Health per component: 1 healthy, 0.5 degraded, 0 unhealthy")
    meter.create_observable_gauge("trading.heartbeat", [_observe_heartbeat], "s",
                                  "Unix time of the health thread's last beat; stops advancing when the process hangs")
    meter.create_observable_gauge("trading.process.start_time", [_observe_start], "s", "Unix time this process started")
    _state.instruments = (provider, duration, changes)
    return duration, changes


def _observe_status(options: CallbackOptions) -> list[Observation]:
    return [Observation(float(c.status.value), c.attributes) for c in list(_state.components.values()) if c.status is not None]


def _observe_heartbeat(options: CallbackOptions) -> list[Observation]:
    return [Observation(_state.last_beat_unix)] if _state.last_beat_unix else []


def _observe_start(options: CallbackOptions) -> list[Observation]:
    return [Observation(_state.started_unix)]


# ----------------------------------------------------------------------------- HTTP server
@functools.cache
def _handler() -> type:
    """The probes' request handler; ``http.server`` is imported only when the probes are served."""
    from http.server import BaseHTTPRequestHandler

    class _Handler(BaseHTTPRequestHandler):
        server_version = "otel-trading-health"
        sys_version = ""
        timeout = 5  # a client that sends nothing cannot hold a thread

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/livez":
                ok = alive()
                self._send(200 if ok else 503, "ok\n" if ok else "health thread not beating\n", "text/plain")
            elif path == "/readyz":
                ok = ready()
                self._send(200 if ok else 503, "ok\n" if ok else "not ready\n", "text/plain")
            elif path == "/healthz":
                body = snapshot()
                self._send(503 if body["status"] == "unhealthy" else 200, json.dumps(body, indent=1) + "\n", "application/json")
            else:
                self._send(404, "try /livez, /readyz or /healthz\n", "text/plain")

        def _send(self, code: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: not worth a line
            pass

    return _Handler


def serve(port: int, host: str = "127.0.0.1") -> int | None:
    """Serve the probes on ``host:port`` from a daemon thread; returns the bound port (None if it failed)."""
    stop_server()
    from http.server import ThreadingHTTPServer

    try:
        server = ThreadingHTTPServer((host, port), _handler())
    except (OSError, OverflowError, ValueError) as exc:
        report(f"health server could not listen on {host}:{port} ({exc}); probes are not served")
        return None
    server.daemon_threads = True
    _state.server = server
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="otel-trading-health-http", daemon=True).start()
    return server.server_address[1]


def stop_server() -> None:
    server, _state.server = _state.server, None
    if server is not None:
        server.shutdown()
        server.server_close()


def install(settings: Any) -> None:
    """Start the heartbeat and checks; serve the probes when OTEL_TRADING_HEALTH_PORT is set."""
    _instruments()
    start(settings.health_interval)
    if settings.health_port:
        serve(settings.health_port, settings.health_host)

