"""One provider endpoint's HTTP client: a shared pool, a total deadline, rate limits waited out.

``EndpointClient`` is the ``httpx2.AsyncClient`` that the run's SDK clients send through (see
``call_layer``). Every request an SDK makes arrives at ``send``, so three rules live here once
instead of in every session:

- **A total deadline per attempt.** ``timeout_seconds`` bounds the whole exchange, body
  included: a server that trickles its answer a byte at a time is cut off like a silent one
  (httpx's own timeouts only bound each read). The SDK sees an ordinary timeout and retries it
  under its ``max_retries``.
- **HTTP 429 is waited out**, honouring ``Retry-After`` (or ``retry-after-ms``), within a time
  budget of its own (``rate_limit_wait_seconds``), separate from the SDK's retry count for
  server and connection errors. An exhausted budget or an exhausted quota reaches the SDK as a
  429 marked not to be retried.
- **Adaptive concurrency.** Calls in flight towards the endpoint are capped by a limit that
  halves while 429s persist and grows back by one after each window of successes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2

from prompttracker.llm.call_layer import current_caller
from prompttracker.llm.cassettes import current_cassette

# Set on a 429 handed back to the SDK: how long this call waited for the limit to clear.
WAITED_HEADER = "x-pt-rate-limit-waited"
# Stainless SDKs (openai, anthropic) honour it: our budget is spent, their retries must not
# start the wait all over again.
NO_RETRY_HEADER = "x-should-retry"

# The provider refused the key (or its access): every later request would be refused too.
REFUSED_STATUSES = (401, 403)
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 30.0  # seconds, when a 429 carries no Retry-After
_DECREASE_COOLDOWN = 1.0  # seconds between two halvings: one burst of 429s halves once


@dataclass
class EndpointStats:
    """What passed through one endpoint during the run."""

    requests: Counter[str] = field(default_factory=Counter)  # by caller
    rate_limited: int = 0  # 429 answers received
    waited_seconds: float = 0.0  # spent waiting them out
    lowest_limit: int = 0  # the adaptive concurrency's low point
    refused: int = 0  # requests answered 401/403 (the first by the API, the rest by us)


class AdaptiveLimit:
    """A concurrency cap that halves on rate limits and grows by one per window of successes.

    The window is the current limit: at 8 in flight, eight successes in a row allow nine.
    Waiters are served in order, so a halving does not starve the calls already queued.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.lowest = self.maximum
        self._active = 0
        self._successes = 0
        self._last_decrease = float("-inf")
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self._active < self.limit and not self._waiters:
            self._active += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif not waiter.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise

    def release(self) -> None:
        self._active -= 1
        self._wake()

    def succeeded(self) -> None:
        self._successes += 1
        if self.limit < self.maximum and self._successes >= self.limit:
            self.limit += 1
            self._successes = 0
            self._wake()

    def rate_limited(self) -> None:
        self._successes = 0
        now = time.monotonic()
        if now - self._last_decrease >= _DECREASE_COOLDOWN:
            self.limit = max(1, (self.limit + 1) // 2)
            self.lowest = min(self.lowest, self.limit)
            self._last_decrease = now

    def _wake(self) -> None:
        while self._waiters and self._active < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._active += 1
                waiter.set_result(None)


class EndpointClient(httpx2.AsyncClient):
    """The HTTP client of one provider endpoint, shared by every session of a run."""

    def __init__(
        self,
        *,
        deadline_seconds: float,
        rate_limit_wait_seconds: float,
        concurrency: int,
        **kwargs: Any,
    ) -> None:
        connections = max(concurrency, 1) * 2 + 4
        kwargs.setdefault(
            "limits",
            httpx2.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        kwargs.setdefault("follow_redirects", True)
        super().__init__(**kwargs)
        self.deadline_seconds = deadline_seconds
        self.rate_limit_wait_seconds = rate_limit_wait_seconds
        self.limit = AdaptiveLimit(concurrency)
        self.stats = EndpointStats(lowest_limit=self.limit.limit)
        # The first 401/403 the API gave: later requests get it again without going out.
        self.refusal: httpx2.Response | None = None

    async def send(self, request: httpx2.Request, *, stream: bool = False, **kwargs: Any) -> Any:
        """Send ``request`` under the deadline and the limit; wait out 429s within the budget.

        When the run records or replays (``llm/cassettes.py``), the test run's cassette answers
        what it holds, and what goes out is added to it. Once the API has refused the key
        (401/403), nothing more goes out: each request gets that refusal again.
        """
        self.stats.requests[current_caller.get()] += 1
        cassette = current_cassette.get()
        if cassette is not None:
            recorded = cassette.answer(request)
            if recorded is not None:
                return recorded
            if not cassette.calls_out:
                return cassette.miss(request)
        if self.refusal is not None:
            self.stats.refused += 1
            return _again(self.refusal, request)
        response = await self._send(request, stream=stream, **kwargs)
        if response.status_code in REFUSED_STATUSES:
            await response.aread()
            self.stats.refused += 1
            self.refusal = self.refusal or response
            response.headers[NO_RETRY_HEADER] = "false"
        if cassette is not None:
            await response.aread()
            cassette.record(request, response)
        return response

    async def _send(self, request: httpx2.Request, *, stream: bool, **kwargs: Any) -> Any:
        waited = 0.0
        attempt = 0
        while True:
            await self.limit.acquire()
            try:
                response = await self._attempt(request, stream=stream, **kwargs)
            finally:
                self.limit.release()
            if response.status_code != 429:
                self.limit.succeeded()
                return response
            self.limit.rate_limited()
            self.stats.rate_limited += 1
            self.stats.lowest_limit = self.limit.lowest
            await response.aread()
            delay = _retry_delay(response, attempt)
            # Only a body held in memory can be sent again (every SDK request is one).
            resendable = isinstance(request.stream, httpx2.ByteStream)
            if delay is None or not resendable or waited + delay > self.rate_limit_wait_seconds:
                response.headers[WAITED_HEADER] = f"{waited:.1f}"
                response.headers[NO_RETRY_HEADER] = "false"
                return response
            await asyncio.sleep(delay)
            waited += delay
            self.stats.waited_seconds += delay
            attempt += 1

    async def _attempt(self, request: httpx2.Request, *, stream: bool, **kwargs: Any) -> Any:
        """One exchange: headers and (unless streaming) the whole body within the deadline."""
        try:
            async with asyncio.timeout(self.deadline_seconds):
                response = await super().send(request, stream=True, **kwargs)
                if not stream:
                    try:
                        await response.aread()
                    except BaseException:
                        await response.aclose()
                        raise
        except TimeoutError:
            raise httpx2.ReadTimeout(
                f"no complete answer within {self.deadline_seconds:g} s", request=request
            ) from None
        return response


def _again(refusal: httpx2.Response, request: httpx2.Request) -> httpx2.Response:
    """The API's refusal, answered to ``request`` without sending it."""
    headers = {
        k: v
        for k, v in refusal.headers.items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    }
    headers[NO_RETRY_HEADER] = "false"
    return httpx2.Response(
        refusal.status_code, headers=headers, content=refusal.content, request=request
    )


def out_of_quota(response: Any) -> bool:
    """OpenAI answers an exhausted quota with 429 too; no wait makes it pass."""
    try:
        return b"insufficient_quota" in response.content
    except (AttributeError, httpx2.ResponseNotRead):
        return False


def _retry_delay(response: httpx2.Response, attempt: int) -> float | None:
    """Seconds to wait before trying again, or None when waiting cannot help (no quota left)."""
    if out_of_quota(response):
        return None
    headers = response.headers
    if "retry-after-ms" in headers:
        seconds = _number(headers["retry-after-ms"])
        if seconds is not None:
            return max(seconds / 1000, 0.0)
    if "retry-after" in headers:
        seconds = _number(headers["retry-after"])
        if seconds is None:
            seconds = _http_date_delay(headers["retry-after"])
        if seconds is not None:
            return max(seconds, 0.0)
    # No advice: exponential backoff with jitter, so that waiting callers spread out.
    return min(_BACKOFF_FIRST * 2**attempt, _BACKOFF_MAX) * random.uniform(0.5, 1.0)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _http_date_delay(text: str) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()
