"""The endpoint client: a total deadline per request, 429s waited out, adaptive concurrency."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import httpx2
import pytest

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError
from prompttracker.llm import endpoint
from prompttracker.llm.base import SessionOptions
from prompttracker.llm.call_layer import CallLayer
from prompttracker.llm.endpoint import AdaptiveLimit, _retry_delay
from prompttracker.llm.openai_chat_completions import ChatCompletionsSession
from tests.conftest import load_fixture
from tests.helpers import key_fixture
from tests.loopback import LoopbackServer, Request

URL = "https://api.openai.com/v1/chat/completions"
CHAT = ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini")
api_key = key_fixture("OPENAI_API_KEY", "sk-test-SECRET")


def settings(**openai: Any) -> Settings:
    return Settings(providers={"openai": {"max_retries": 0, **openai}})


def rate_limited(retry_after: str | None = "0.01", code: str = "rate_limit_exceeded") -> Any:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    error = {"error": {"message": "Rate limit reached", "type": "requests", "code": code}}
    return httpx.Response(429, json=error, headers=headers)


def completion() -> Any:
    return httpx.Response(200, json=load_fixture("openai/chat_completion.json"))


# --- rate limits --------------------------------------------------------------------------


async def test_rate_limits_that_clear_never_cost_a_turn(httpx2_mock: Any, api_key: str) -> None:
    """Every fourth request is answered 429; with no SDK retries at all, every turn succeeds."""
    answers = iter([completion(), completion(), completion(), rate_limited()] * 10)
    route = httpx2_mock.post(URL).mock(side_effect=lambda request: next(answers))
    async with CallLayer(settings(), concurrency=4) as calls:
        chat = ChatCompletionsSession(CHAT, calls.settings, SessionOptions(calls=calls))
        turns = [await chat.send(f"Question {i}") for i in range(12)]
    assert len(turns) == 12
    assert route.call_count == 15  # 12 answers and 3 rate limits, each waited out and re-sent
    rate_limited_request, resent = route.calls[3].request, route.calls[4].request
    assert rate_limited_request.content == resent.content
    stats = calls.stats["openai"]
    assert stats.rate_limited == 3
    assert stats.requests == {"assistant": 12}
    assert stats.waited_seconds == pytest.approx(0.03)


async def test_an_exhausted_wait_budget_fails_without_sdk_retries(
    httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(URL).mock(side_effect=lambda request: rate_limited("0.05"))
    slow = settings(max_retries=2, rate_limit_wait_seconds=0.12)
    chat = ChatCompletionsSession(CHAT, slow, SessionOptions())
    with pytest.raises(LLMCallError) as failed:
        await chat.send("Hi")
    await chat.aclose()
    # Waits of 0.05 s twice fit in the 0.12 s budget, a third does not; the SDK's own two
    # retries would have started the wait over, and they did not happen.
    assert route.call_count == 3
    assert "HTTP 429" in str(failed.value)
    assert "waited 0.1 s" in (failed.value.hint or "")
    assert "rate_limit_wait_seconds" in (failed.value.hint or "")


async def test_no_quota_fails_at_once(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=lambda request: rate_limited("30", code="insufficient_quota")
    )
    chat = ChatCompletionsSession(CHAT, settings(max_retries=2), SessionOptions())
    started = time.monotonic()
    with pytest.raises(LLMCallError) as failed:
        await chat.send("Hi")
    await chat.aclose()
    assert time.monotonic() - started < 5  # the Retry-After of 30 s was not waited for
    assert route.call_count == 1
    assert "out of quota" in (failed.value.hint or "")


def test_retry_after_forms() -> None:
    def delay(headers: dict[str, str], body: bytes = b"{}") -> float | None:
        return _retry_delay(httpx2.Response(429, headers=headers, content=body), 0)

    assert delay({"retry-after": "2"}) == 2
    assert delay({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (delay({"retry-after": later}) or 0) <= 30
    assert delay({"retry-after": "-3"}) == 0
    assert 0.25 <= (delay({"retry-after": "soon"}) or 0) <= 0.5  # unreadable: backoff
    assert 0.25 <= (delay({}) or 0) <= 0.5
    assert delay({"retry-after": "1"}, b'{"error": {"code": "insufficient_quota"}}') is None


# --- adaptive concurrency -----------------------------------------------------------------


def test_the_limit_halves_on_rate_limits_and_grows_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint, "_DECREASE_COOLDOWN", 0)
    limit = AdaptiveLimit(8)
    for expected in (4, 2, 1, 1):
        limit.rate_limited()
        assert limit.limit == expected
    for expected in (2, 3, 4):  # one more after each window of `limit` successes
        for _ in range(limit.limit):
            limit.succeeded()
        assert limit.limit == expected
    for _ in range(100):
        limit.succeeded()
    assert limit.limit == 8 and limit.lowest == 1


def test_one_burst_of_rate_limits_halves_once() -> None:
    limit = AdaptiveLimit(16)
    for _ in range(10):
        limit.rate_limited()
    assert limit.limit == 8


async def test_calls_beyond_the_limit_wait_their_turn() -> None:
    limit = AdaptiveLimit(2)
    await limit.acquire()
    await limit.acquire()
    third = asyncio.create_task(limit.acquire())
    cancelled = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    assert not third.done()
    cancelled.cancel()
    limit.release()
    await asyncio.wait_for(third, 1)
    limit.release()
    limit.release()
    await limit.acquire()  # the cancelled waiter took no slot with it
    await limit.acquire()
    assert limit._active == 2


# --- the deadline -------------------------------------------------------------------------


async def trickle(request: Request, writer: asyncio.StreamWriter) -> None:
    """Headers at once, then the body one byte every 50 ms: 100 s for the whole answer."""
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2000\r\n\r\n"
    )
    for _ in range(2000):
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.05)


async def test_a_trickling_body_is_cut_off_by_the_deadline(api_key: str) -> None:
    with LoopbackServer(trickle) as server:
        slow = settings(base_url=server.url, timeout_seconds=0.5)
        chat = ChatCompletionsSession(CHAT, slow, SessionOptions())
        started = time.monotonic()
        with pytest.raises(LLMCallError) as failed:
            await chat.send("Hi")
        elapsed = time.monotonic() - started
        await chat.aclose()
    # Each read gets a byte within 50 ms, so only a deadline on the whole exchange stops it.
    assert "timed out" in str(failed.value)
    assert elapsed < 5


# --- a refused key ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_key_is_asked_once_then_answered_without_a_request(
    httpx2_mock: Any, api_key: str, status: int
) -> None:
    error = {"error": {"message": f"no: {api_key}", "type": "invalid_request_error"}}
    route = httpx2_mock.post(URL).mock(
        return_value=httpx.Response(status, json=error, headers={"content-encoding": "identity"})
    )
    async with CallLayer(settings(max_retries=2), concurrency=2) as calls:
        chat = ChatCompletionsSession(CHAT, calls.settings, SessionOptions(calls=calls))
        for _ in range(3):
            with pytest.raises(LLMCallError, match=f"HTTP {status}") as info:
                await chat.send("Hello")
            assert api_key not in str(info.value)
        refusals = calls.refusals()
    assert route.call_count == 1  # no SDK retry, and nothing after the first refusal
    assert calls.stats["openai"].refused == 3
    assert refusals == {"openai": f"HTTP {status}: no: [REDACTED]"}
