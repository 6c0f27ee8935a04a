"""A small, cheap, local OpenAI-compatible server for benchmarking `pt run-tests`.

Pure standard library (asyncio streams), HTTP/1.1 with keep-alive, loopback only by default:

    python bench/server.py [--host 127.0.0.1] [--port 0] [--latency-ms 0] [--rate-limit-every N]

The first line on stdout is ``listening on http://HOST:PORT``; it then serves until SIGTERM or
SIGINT and exits 0. Endpoints:

- ``POST /v1/chat/completions``: waits ``--latency-ms``, then answers a valid Chat Completions
  object. The text always mentions "refund" and never contains ``[END_CONVERSATION]``; a request
  with a ``json_schema`` ``response_format`` gets JSON: the simulated user (schema
  ``simulated_user_turn``) a new question each turn that does not stop, so that conversations
  play every turn and pass pt's simulator checks; an LLM judge ``{"feedback": ..., "score": 90}``.
  With ``--rate-limit-every N`` every N-th POST is answered 429 (``Retry-After: 0.1``) at once.
- ``GET /stats``: request and connection counters and this process's CPU seconds.
- ``POST /reset``: zeroes the counters (not the CPU time).
- anything else: 404 with an OpenAI-shaped error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

REPLY_TEXT = "Thanks for reaching out: your refund is approved and arrives within 5 days."
JUDGE_TEXT = json.dumps({"feedback": "Fine.", "score": 90})
MAX_HEADER_BYTES = 64 * 1024
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}


@dataclass
class Counters:
    requests: int = 0
    connections: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    completion_ids: int = 0

    def reset(self) -> None:
        self.requests = 0
        self.connections = 0
        self.by_path = {}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class BadRequest(Exception):
    """The bytes on the connection are not an HTTP/1.1 request we can read."""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, headers or {})


def error_response(status: int, message: str, kind: str, code: str | None = None) -> Response:
    error = {"message": message, "type": kind, "param": None, "code": code}
    return json_response(status, {"error": error})


def encode_response(response: Response, keep_alive: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(response.body)}",
        "Connection: keep-alive" if keep_alive else "Connection: close",
    ]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A ``Transfer-Encoding: chunked`` body (trailers are read and dropped)."""
    parts = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise BadRequest("bad chunk size") from exc
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError as exc:
        raise BadRequest("bad request line") from exc
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return method, target.split("?", 1)[0], version, headers


def wants_keep_alive(version: str, headers: dict[str, str]) -> bool:
    connection = headers.get("connection", "").lower()
    if version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request | None:
    """The next request on the connection, or None when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    method, path, version, headers = parse_head(head[:-4])
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await read_chunked(reader)
    else:
        length = int(headers.get("content-length") or 0)
        body = await reader.readexactly(length) if length else b""
    return Request(method, path, headers, body, wants_keep_alive(version, headers))


def content_chars(content: Any) -> int:
    """Characters of a message's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(part.get("text") or "") for part in content if isinstance(part, dict))
    return 0


class BenchServer:
    def __init__(self, latency_ms: float, rate_limit_every: int) -> None:
        self.latency = latency_ms / 1000
        self.rate_limit_every = rate_limit_every
        self.counters = Counters()
        self.posts_seen = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.counters.connections += 1
        self.writers.add(writer)
        try:
            await self.serve(reader, writer)
        except (BadRequest, ValueError, asyncio.LimitOverrunError):
            with contextlib.suppress(ConnectionError):
                writer.write(encode_response(error_response(400, "bad request", "bad"), False))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader, writer)
            if request is None:
                return
            response = await self.dispatch(request)
            writer.write(encode_response(response, request.keep_alive))
            await writer.drain()
            if not request.keep_alive:
                return

    async def dispatch(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/stats":
            return json_response(200, self.stats())
        if request.method == "POST" and request.path == "/reset":
            self.counters.reset()
            return json_response(200, {"ok": True})
        if request.method == "POST":
            self.count(request.path)
            self.posts_seen += 1
            if self.rate_limit_every and self.posts_seen % self.rate_limit_every == 0:
                return self.rate_limited()
            if request.path == "/v1/chat/completions":
                return await self.chat_completion(request.body)
        message = f"Unknown request URL: {request.method} {request.path}"
        return error_response(404, message, "invalid_request_error", "unknown_url")

    def count(self, path: str) -> None:
        self.counters.requests += 1
        self.counters.by_path[path] = self.counters.by_path.get(path, 0) + 1

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.counters.requests,
            "by_path": self.counters.by_path,
            "connections": self.counters.connections,
            "cpu_seconds": cpu_seconds(),
        }

    def rate_limited(self) -> Response:
        response = error_response(
            429, "Rate limit reached (bench server)", "requests", "rate_limit_exceeded"
        )
        response.headers["Retry-After"] = "0.1"
        return response

    async def chat_completion(self, body: bytes) -> Response:
        try:
            request = json.loads(body)
            messages = request["messages"]
        except (ValueError, KeyError, TypeError):
            return error_response(
                400, "expected a JSON body with messages", "invalid_request_error"
            )
        if self.latency:
            await asyncio.sleep(self.latency)
        return json_response(200, self.completion(request, messages))

    def completion(self, request: dict[str, Any], messages: list[Any]) -> dict[str, Any]:
        self.counters.completion_ids += 1
        response_format = request.get("response_format") or {}
        schema = response_format.get("json_schema") if isinstance(response_format, dict) else None
        if not isinstance(schema, dict):
            text = REPLY_TEXT
        elif schema.get("name") == "simulated_user_turn":
            asked = f"Thanks. And what about the charge on day {len(messages)} of the month?"
            text = json.dumps({"message": asked, "stop": False, "reason": ""})
        else:
            text = JUDGE_TEXT
        prompt_chars = sum(content_chars(m.get("content")) for m in messages if isinstance(m, dict))
        prompt_tokens = max(1, prompt_chars // 4)
        completion_tokens = max(1, len(text) // 4)
        message = {"role": "assistant", "content": text, "refusal": None}
        return {
            "id": f"chatcmpl-{self.counters.completion_ids}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "bench-model"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def close_connections(self) -> None:
        for writer in list(self.writers):
            writer.close()


async def main_async(args: argparse.Namespace) -> None:
    bench = BenchServer(args.latency_ms, args.rate_limit_every)
    server = await asyncio.start_server(bench.handle_connection, args.host, args.port, backlog=512)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
        server.close()
        bench.close_connections()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible benchmark server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0, help="delay before each answer")
    parser.add_argument(
        "--rate-limit-every", type=int, default=0, help="answer every N-th POST with 429 (0: off)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Until the loop installs its own handlers, a signal still ends the process quietly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
