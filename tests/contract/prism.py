"""Prism serving the official OpenAI spec, behind a proxy that records every exchange.

Prism (``npm ci`` installs it) checks each request against the spec and answers with the
spec's examples. The proxy keeps what went through it, so that a test can fail on any request
Prism rejected, showing what Prism said and the tail of its log. It can also reshape one of
Prism's answers where the example cannot drive our code; requests reach Prism unchanged.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import yaml

from prompttracker.config.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PRISM = REPO / "node_modules" / ".bin" / "prism"
DUMMY_KEY = "sk-contract-dummy-key"
# Prism needs 15-30 s to load the 3 MB spec on a laptop; CI machines can be slower.
READY_DEADLINE_SECONDS = 120.0
LOG_TAIL_LINES = 40
# Headers that belong to one connection, and Accept-Encoding so that answers stay readable.
_NOT_FORWARDED = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
    "date",
    "server",
}

T = TypeVar("T")
# reshape(request_json, prism_answer_json) -> the answer our code gets
Reshaper = Callable[[Any, Any], Any]


# --- the spec ---------------------------------------------------------------------------------


def prism_ready_spec(spec: Path, folder: Path) -> Path:
    """A copy of the spec that Prism can validate: ``nullable`` without ``type`` dropped.

    Prism 5.14 compiles schemas with ajv, which refuses ``nullable`` without ``type``, and then
    skips the whole check without a word: the bodies of ``/chat/completions``, ``/moderations``
    and ``/threads/{id}/runs`` were never validated. OpenAPI 3.1 has no ``nullable`` keyword;
    dropping it only stops ``null`` being accepted in those 24 places (stricter, never looser),
    and our requests leave unset fields out. PyYAML reads YAML 1.1: the spec has no 1.1-only
    scalars, and its one date example is written back as text.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(spec.read_text(encoding="utf-8"), Loader=loader)
    _drop_typeless_nullable(document)
    target = folder / "openapi.prism.json"
    target.write_text(json.dumps(document, default=str), encoding="utf-8")
    return target


def _drop_typeless_nullable(node: Any) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("nullable"), bool) and "type" not in node:
            del node["nullable"]
        for value in node.values():
            _drop_typeless_nullable(value)
    elif isinstance(node, list):
        for value in node:
            _drop_typeless_nullable(value)


# --- what went through the proxy --------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request as Prism saw it, and the answer our code got."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any  # the request's JSON, or None
    status: int
    answer: Any  # the answer's JSON (reshaped, if the test asked for it), or None
    rejections: tuple[str, ...]  # what Prism said about the request; empty when accepted

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}"


def rejections_of(status: int, headers: http.client.HTTPMessage, answer: Any) -> tuple[str, ...]:
    """Prism's objections to a request: a problem+json answer, or request-side violations.

    Response-side violations are the spec's own examples disagreeing with its schemas (POST
    /responses does): not ours to fix, so they are not counted.
    """
    found = []
    if "problem+json" in headers.get("content-type", "") and isinstance(answer, dict):
        details = [v.get("message", "") for v in answer.get("validation", [])]
        found.append(f"{status} {answer.get('title', '')}: {answer.get('detail', '')}")
        found += [f"  {detail}" for detail in details]
    violations = headers.get("sl-violations", "")
    if violations.startswith("["):
        for violation in json.loads(violations):
            if violation.get("location", [""])[0] == "request":
                found.append(f"request violation: {violation.get('message')}")
    return tuple(found)


class Recorder:
    """Every exchange of the current test, and the reshapers it asked for (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.exchanges: list[Exchange] = []
        self._reshapers: list[tuple[str, re.Pattern[str], Reshaper]] = []

    def reset(self) -> None:
        with self._lock:
            self.exchanges = []
            self._reshapers = []

    def add_reshaper(self, method: str, path: str, reshape: Reshaper) -> None:
        with self._lock:
            self._reshapers.append((method.upper(), re.compile(path), reshape))

    def reshaper(self, method: str, path: str) -> Reshaper | None:
        with self._lock:
            for wanted, pattern, reshape in self._reshapers:
                if wanted == method and pattern.fullmatch(path):
                    return reshape
        return None

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def do_GET(self) -> None:
        self._forward()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: Prism's own log is the record."""

    def _forward(self) -> None:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.send_error(501, "the contract proxy forwards Content-Length bodies only")
            return
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        url = urlsplit(self.path)
        sent = (self.command, url.path, parse_qs(url.query), _json_or_none(body))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
        except OSError as exc:
            # Prism died or hung: record it as a rejection rather than drop the connection.
            failure = f"Prism did not answer: {type(exc).__name__}: {exc}"
            self.server.recorder.add(Exchange(*sent, 502, None, (failure,)))
            self.send_error(502, "Prism did not answer")
            return
        finally:
            upstream.close()
        answer = _json_or_none(data)
        rejections = rejections_of(reply.status, reply.headers, answer)
        reshape = self.server.recorder.reshaper(self.command, url.path)
        if reshape is not None and reply.status < 300 and answer is not None:
            answer = reshape(sent[3], answer)
            data = json.dumps(answer).encode()
        self.server.recorder.add(Exchange(*sent, reply.status, answer, rejections))
        self.send_response(reply.status)
        for name, value in reply.getheaders():
            if name.lower() not in _NOT_FORWARDED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: tuple[str, int], recorder: Recorder) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream
        self.recorder = recorder


# --- Prism ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class PrismServer:
    """Prism on a free local port, behind the recording proxy; ``url`` is the proxy's."""

    def __init__(self, spec: Path, workdir: Path) -> None:
        self.spec = spec
        self.log_path = workdir / "prism.log"
        self.port = free_port()
        self.recorder = Recorder()
        self._log_mark = 0
        started = time.monotonic()
        served = prism_ready_spec(spec, workdir)
        self.prepare_seconds = time.monotonic() - started
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            command = [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(self.port), str(served)]
            self.process = subprocess.Popen(
                command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - started
        self._proxy = _ProxyServer(("127.0.0.1", self.port), self.recorder)
        threading.Thread(target=self._proxy.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._proxy.server_address[1]}"

    def _wait_ready(self, started: float) -> None:
        while not _port_open(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Prism exited with code {self.process.returncode} before it was ready:\n"
                    + self.log_tail(from_start=True)
                )
            if time.monotonic() - started > READY_DEADLINE_SECONDS:
                raise RuntimeError(
                    f"Prism was not listening after {READY_DEADLINE_SECONDS:g} s:\n"
                    + self.log_tail(from_start=True)
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the proxy, then Prism: terminate, and kill if it does not go."""
        proxy = getattr(self, "_proxy", None)
        if proxy is not None:
            proxy.shutdown()
            proxy.server_close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    # --- per test

    def begin_test(self) -> None:
        self.recorder.reset()
        self._log_mark = self.log_path.stat().st_size

    def log_tail(self, *, from_start: bool = False) -> str:
        """The last lines Prism logged (during this test), without its list of routes."""
        with self.log_path.open("rb") as log:
            log.seek(0 if from_start else self._log_mark)
            text = log.read().decode("utf-8", "replace")
        lines = [line for line in text.splitlines() if "[CLI]" not in line or from_start]
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(nothing logged)"

    @property
    def exchanges(self) -> list[Exchange]:
        return list(self.recorder.exchanges)

    def calls(self, method: str, path: str) -> list[Exchange]:
        """The exchanges of this test to ``method path`` (a regular expression), in order."""
        pattern = re.compile(path)
        return [
            e for e in self.exchanges if e.method == method.upper() and pattern.fullmatch(e.path)
        ]

    def reshape(self, method: str, path: str, reshape: Reshaper) -> None:
        """Answer ``method path`` with ``reshape(request_json, prism_answer)`` for this test."""
        self.recorder.add_reshaper(method, path, reshape)

    def explain(self, context: str = "") -> str:
        """Everything Prism rejected in this test, each exchange, and Prism's log tail."""
        rejected = [e for e in self.exchanges if e.rejections]
        parts = [context] if context else []
        parts.append("Exchanges: " + (", ".join(map(str, self.exchanges)) or "none"))
        for exchange in rejected:
            parts.append(f"Prism rejected {exchange}:\n" + "\n".join(exchange.rejections))
        parts.append("Prism log (this test):\n" + self.log_tail())
        return "\n".join(parts)

    def assert_all_accepted(self) -> None:
        """Fail when Prism rejected any request of this test."""
        rejected = [e for e in self.exchanges if e.rejections]
        assert not rejected, self.explain(f"{len(rejected)} request(s) broke the OpenAI spec")

    async def expect_ok(self, call: Awaitable[T]) -> T:
        """Await ``call``; on any error fail with what Prism said about the requests."""
        try:
            return await call
        except Exception as exc:
            raise AssertionError(self.explain(f"{type(exc).__name__}: {exc}")) from exc

    def settings(self, **openai: Any) -> Settings:
        """Project settings pointing the openai provider at Prism (no retries)."""
        provider = {"base_url": self.url, "max_retries": 0, "timeout_seconds": 30, **openai}
        return Settings(providers={"openai": provider})

    def write_settings(self, root: Path) -> Path:
        """``prompttracker.yaml`` in ``root`` pointing the CLI at Prism."""
        path = root / "prompttracker.yaml"
        provider = {"base_url": self.url, "max_retries": 0, "timeout_seconds": 30}
        path.write_text(yaml.safe_dump({"providers": {"openai": provider}}), encoding="utf-8")
        return path
