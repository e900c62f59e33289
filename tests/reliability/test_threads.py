"""Many threads and asyncio tasks tracing and logging at once: every span keeps
its parent, every log line the ids of the span it was written in."""

from __future__ import annotations

from support import otlp_env, run_python

APP = """
import asyncio, logging, threading
import structlog
from otel_trading.bootstrap.configure import configure
from opentelemetry import trace
from otel_trading.trading.tracing import signal_span, order_span

telemetry = configure(service_name="threads-bot")
tracer = trace.get_tracer("bot")
slog = structlog.get_logger("bot")
std = logging.getLogger("bot.std")
ITER = 40

def worker(t):
    for i in range(ITER):
        tag = f"t{t}-{i}"
        with signal_span("decide", attributes={"tag": tag}):
            with tracer.start_as_current_span("child", attributes={"tag": tag}):
                slog.info("in child", tag=tag)
            std.warning("in parent %s", tag, extra={"tag": tag})

async def task(n):
    for i in range(ITER):
        tag = f"a{n}-{i}"
        with order_span("submit", attributes={"tag": tag}, order_id=tag, side="buy"):
            await asyncio.sleep(0)
            with tracer.start_as_current_span("child", attributes={"tag": tag}):
                await asyncio.sleep(0)
                slog.info("in child", tag=tag)
            std.warning("in parent %s", tag, extra={"tag": tag})

async def tasks():
    await asyncio.gather(*(task(n) for n in range(8)))

threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
[t.start() for t in threads]
asyncio.run(tasks())
[t.join() for t in threads]
assert telemetry.force_flush(30)
print("done", flush=True)
"""


def test_threads_and_tasks_keep_parents_and_log_correlation(otlp):
    result = run_python(APP, {**otlp_env(otlp), "OTEL_BSP_MAX_QUEUE_SIZE": "20000", "OTEL_BLRP_MAX_QUEUE_SIZE": "20000"}, instrumented=False, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    expected_roots = 6 * 40 + 8 * 40
    spans = otlp.wait_for(lambda r: r.spans() if len(r.spans()) >= 2 * expected_roots else None, timeout=30)
    by_tag: dict[str, dict] = {}
    for span in spans:
        tag = span.attributes.get("tag")
        if tag is not None:
            by_tag.setdefault(tag, {})[span.name] = span
    assert len(by_tag) == expected_roots
    trace_ids = set()
    for tag, pair in by_tag.items():
        child = pair["child"]
        parent = pair.get("decide") or pair.get("submit")
        assert parent is not None, tag
        assert child.parent_span_id == parent.span_id, tag  # the right parent, never a neighbour's
        assert child.trace_id == parent.trace_id
        assert parent.parent_span_id == "", tag  # every unit of work is its own root
        trace_ids.add(parent.trace_id)
    assert len(trace_ids) == expected_roots

    logs = otlp.wait_for(lambda r: r.logs() if len(r.logs()) >= 2 * expected_roots else None, timeout=30)
    checked = 0
    for log in logs:
        tag = log.attributes.get("tag")
        if tag is None or tag not in by_tag:
            continue
        body = str(log.body)
        expect = by_tag[tag]["child"] if "in child" in body else (by_tag[tag].get("decide") or by_tag[tag].get("submit"))
        assert (log.trace_id, log.span_id) == (expect.trace_id, expect.span_id), (tag, body)
        checked += 1
    assert checked == 2 * expected_roots
