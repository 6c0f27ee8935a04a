"""Helpers shared by the route tests: keys, settings, what was sent, how a session failed."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError
from prompttracker.llm.base import JsonSchema, Session
from prompttracker.messages import AssistantTurn, Message

# Earlier turns handed to a session through ``SessionOptions.history``.
ORDER_HISTORY = (
    Message(role="user", content="Where is my order?", turn=1),
    Message(role="assistant", content="It ships today.", turn=1),
)
# A one-shot conversation for ``router.complete``: the last message is the one sent.
YES_NO_QUESTIONS = (
    Message(role="user", content="Is it sunny?", turn=1),
    Message(role="assistant", content="No.", turn=1),
    Message(role="user", content="Is it warm?", turn=2),
)


def key_fixture(variable: str, key: str) -> Any:
    """An ``api_key`` fixture: sets ``variable`` to ``key`` for the test and returns the key."""

    @pytest.fixture
    def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
        monkeypatch.setenv(variable, key)
        return key

    return api_key


def verdict(reason: str) -> JsonSchema:
    """A judge's structured output: an integer score and a text field named ``reason``."""
    return JsonSchema(
        name="verdict",
        schema={
            "type": "object",
            "properties": {"score": {"type": "integer"}, reason: {"type": "string"}},
            "required": ["score", reason],
            "additionalProperties": False,
        },
    )


def no_retry_settings(provider: str, **overrides: Any) -> Settings:
    """No SDK retries, so error paths answer at once."""
    return Settings(providers={provider: {"max_retries": 0, **overrides}})


def ok(payload: dict[str, Any]) -> httpx.Response:
    """A 200 answer carrying ``payload``."""
    return httpx.Response(200, json=payload)


def body(route: Any, index: int = 0) -> Any:
    """The JSON body of the ``index``-th request a respx route received."""
    return json.loads(route.calls[index].request.content)


def error_text(error: LLMCallError) -> str:
    """Everything the user sees of an error: its message and its hint."""
    return f"{error} {error.hint}"


async def converse(chat: Session, *messages: str) -> list[AssistantTurn]:
    """Send ``messages`` in order, then close the session; the assistant's turns."""
    turns = [await chat.send(message) for message in messages]
    await chat.aclose()
    return turns


async def refused_then_slow(chat: Session) -> tuple[LLMCallError, LLMCallError]:
    """Two turns that fail (a refused connection, then a timeout), then close the session."""
    with pytest.raises(LLMCallError) as refused:
        await chat.send("Hi")
    with pytest.raises(LLMCallError) as slow:
        await chat.send("Hi")
    await chat.aclose()
    return refused.value, slow.value


def assert_transport_errors(refused: LLMCallError, slow: LLMCallError, url: str) -> None:
    """A refused connection names the URL and its cause; a timeout says how to wait longer."""
    assert f"could not connect to {url}" in str(refused)
    assert "connection refused" in str(refused)
    assert "base_url" in (refused.hint or "")
    assert "timed out" in str(slow)
    assert "timeout_seconds" in (slow.hint or "")
