"""What every fake venue shares: a JSON-over-HTTP server on 127.0.0.1 (a free port) on a daemon thread.

The fake exchange (ccxt / Binance) and the tests' fake Alpaca differ only in how they read a
request and what they answer; both start and stop here.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

if TYPE_CHECKING:
    from typing_extensions import Self


class LocalVenue:
    """Serves ``respond()``'s answers at ``url`` between ``start()`` and ``stop()`` (or in a ``with`` block)."""

    thread_name = "fake-venue"

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def respond(self, method: str, url: SplitResult, headers: dict[str, str], body: str) -> tuple[int, Any]:
        """``(HTTP status, JSON answer)`` for one request; an answer of None is sent as an empty body."""
        raise NotImplementedError


def _handler(venue: LocalVenue) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one segment per answer: no 40 ms delayed-ACK stalls

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            status, answer = venue.respond(self.command, urlsplit(self.path), dict(self.headers), body)
            data = json.dumps(answer).encode() if answer is not None else b""
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout): nothing to answer
                pass

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve  # noqa: N815 - http.server API

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
