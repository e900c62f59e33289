"""A loopback OTLP/gRPC receiver in its own process, for the benchmarks.

It decodes every request with the generated protobuf classes (as a collector
would), counts spans / log records / metric points and decode failures, and
answers ``/bench.Stats/Get`` with those counts as JSON. Running it in another
process keeps its decoding off the benchmarked process's GIL.

    python -m bench.receiver            # prints "PORT <n>" then serves until stdin closes
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc

_TRACE = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
_METRICS = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
_STATS = "/bench.Stats/Get"
_RESET = "/bench.Stats/Reset"


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.spans = self.logs = self.points = self.requests = self.bad = 0
        self.bytes = 0
        self.first = self.last = 0.0

    def add(self, field: str, n: int, size: int) -> None:
        now = time.monotonic()
        with self.lock:
            setattr(self, field, getattr(self, field) + n)
            self.requests += 1
            self.bytes += size
            self.first = self.first or now
            self.last = now

    def as_json(self) -> bytes:
        with self.lock:
            return json.dumps(
                {k: getattr(self, k) for k in ("spans", "logs", "points", "requests", "bad", "bytes", "first", "last")}
            ).encode()


def serve(port: int = 0) -> tuple[grpc.Server, int, _Counts]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    counts = _Counts()

    def traces(raw: bytes, context) -> bytes:
        try:
            req = ExportTraceServiceRequest.FromString(raw)
            n = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
        except Exception:  # noqa: BLE001 - a bad request is counted, not fatal
            with counts.lock:
                counts.bad += 1
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "undecodable")
        counts.add("spans", n, len(raw))
        return b""

    def logs(raw: bytes, context) -> bytes:
        try:
            req = ExportLogsServiceRequest.FromString(raw)
            n = sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)
        except Exception:  # noqa: BLE001
            with counts.lock:
                counts.bad += 1
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "undecodable")
        counts.add("logs", n, len(raw))
        return b""

    def metrics(raw: bytes, context) -> bytes:
        req = ExportMetricsServiceRequest.FromString(raw)
        n = sum(len(m.ListFields()) for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
        counts.add("points", n, len(raw))
        return b""

    def stats(raw: bytes, context) -> bytes:
        return counts.as_json()

    def reset(raw: bytes, context) -> bytes:
        with counts.lock:
            counts.reset()
        return b"{}"

    handlers = {
        "opentelemetry.proto.collector.trace.v1.TraceService": {"Export": traces},
        "opentelemetry.proto.collector.logs.v1.LogsService": {"Export": logs},
        "opentelemetry.proto.collector.metrics.v1.MetricsService": {"Export": metrics},
        "bench.Stats": {"Get": stats, "Reset": reset},
    }
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    for service, methods in handlers.items():
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    service, {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in methods.items()}
                ),
            )
        )
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound, counts


class Receiver:
    """Starts ``python -m bench.receiver`` and reads its counts over gRPC."""

    def __init__(self) -> None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=root,
        )
        line = self.proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"bench receiver did not start: {line!r}")
        self.port = int(line.split()[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self._get = self._channel.unary_unary(_STATS)
        self._reset = self._channel.unary_unary(_RESET)

    def stats(self) -> dict:
        return json.loads(self._get(b"", timeout=10))

    def reset(self) -> None:
        self._reset(b"", timeout=10)

    def wait_idle(self, field: str, expect: int | None = None, quiet: float = 0.5, timeout: float = 60) -> dict:
        """Wait until ``field`` reaches ``expect`` or stops growing for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            s = self.stats()
            if expect is not None and s[field] >= expect:
                return s
            if s[field] != last:
                last, since = s[field], time.monotonic()
            elif time.monotonic() - since >= quiet:
                return s
            time.sleep(0.05)
        return self.stats()

    def close(self) -> None:
        self._channel.close()
        try:
            self.proc.stdin.close()
            self.proc.wait(5)
        except Exception:  # noqa: BLE001
            self.proc.kill()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main() -> None:
    server, port, _ = serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    try:
        sys.stdin.read()  # serve until the parent closes our stdin (or dies)
    finally:
        server.stop(None)


if __name__ == "__main__":
    main()
