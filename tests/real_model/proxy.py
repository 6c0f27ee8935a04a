"""A recording proxy on 127.0.0.1: forwards every request to the real server and keeps both.

``pt`` talks to the proxy as if it were the server, so a test sees the exact JSON bodies that
went out and came back, without any hook inside ``pt``.
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

# Per hop, not per message: the proxy sets its own (and asks for no compression, to read them).
HOP_HEADERS = {
    "connection",
    "keep-alive",
    "host",
    "content-length",
    "transfer-encoding",
    "accept-encoding",
    "content-encoding",
    "proxy-connection",
}
UPSTREAM_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Exchange:
    """One request as pt sent it and the server's answer."""

    method: str
    path: str
    request: Any  # the JSON body, or None
    status: int
    response_text: str

    def response(self) -> Any:
        """The answer's JSON body, or None when it is not JSON (a stream, an HTML error)."""
        try:
            return json.loads(self.response_text)
        except ValueError:
            return None


class RecordingProxy:
    """Serves on an ephemeral loopback port, forwarding to ``upstream`` until closed."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream {upstream!r}: expected http://HOST:PORT")
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, parts))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The proxy's base URL, without ``/v1``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler(proxy: RecordingProxy, upstream: Any) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs expect

        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the exchanges are the log

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            connection = http.client.HTTPConnection(
                upstream.hostname, upstream.port or 80, timeout=UPSTREAM_TIMEOUT_SECONDS
            )
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                answer = connection.getresponse()
                status, reply = answer.status, answer.read()
                reply_headers = [
                    (k, v) for k, v in answer.getheaders() if k.lower() not in HOP_HEADERS
                ]
            except OSError as exc:  # the server died or hung: pt sees a 502, the test sees why
                status, reply = 502, json.dumps({"error": f"proxy: {exc!r}"}).encode()
                reply_headers = [("content-type", "application/json")]
            finally:
                connection.close()
            try:
                sent = json.loads(body) if body else None
            except ValueError:
                sent = None
            proxy.record(
                Exchange(self.command, self.path, sent, status, reply.decode("utf-8", "replace"))
            )
            self.send_response(status)
            for name, value in reply_headers:
                self.send_header(name, value)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    return Forward
