"""The Chat Completions session and the OpenAI client factory, over a mocked transport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openai.types.chat import ChatCompletion

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError, NotImplementedRouteError, RunStartError
from prompttracker.llm.base import JsonSchema, SessionOptions
from prompttracker.llm.clients import llm_call_error, openai_client, require_api_key
from prompttracker.llm.openai_chat_completions import (
    ChatCompletionsSession,
    request_params,
    to_chat_messages,
    turn_from_completion,
)
from prompttracker.llm.redact import redact
from prompttracker.messages import Message, Usage
from tests.conftest import load_fixture

URL = "https://api.openai.com/v1/chat/completions"
KEY = "sk-test-SECRET123"
CONFIG = ModelConfig(
    provider="openai",
    api="chat_completions",
    model="gpt-4o-mini",
    temperature=0.3,
    max_tokens=200,
)
VERDICT = JsonSchema(
    name="verdict",
    schema={
        "type": "object",
        "properties": {"score": {"type": "integer"}, "reasoning": {"type": "string"}},
        "required": ["score", "reasoning"],
        "additionalProperties": False,
    },
)


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


def fast_settings(**openai: Any) -> Settings:
    """No SDK retries, so error paths answer at once."""
    return Settings(providers={"openai": {"max_retries": 0, **openai}})


def completion(cid: str, content: str, prompt_tokens: int, completion_tokens: int) -> dict:
    """The spec's example completion with our own id, text and token counts."""
    payload = load_fixture("openai/chat_completion.json")
    payload["id"] = cid
    payload["choices"][0]["message"]["content"] = content
    payload["usage"].update(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )
    return payload


def body(route: Any, index: int = 0) -> dict:
    return json.loads(route.calls[index].request.content)


def session(
    settings: Settings | None = None, config: ModelConfig = CONFIG, **options: Any
) -> ChatCompletionsSession:
    return ChatCompletionsSession(config, settings or fast_settings(), SessionOptions(**options))


# --- the conversation over HTTP ------------------------------------------------------------


async def test_three_turns_resend_the_full_history(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            httpx.Response(200, json=completion("chatcmpl-1", "Hello! How can I help?", 19, 7)),
            httpx.Response(200, json=completion("chatcmpl-2", "I can refund that.", 35, 6)),
            httpx.Response(200, json=completion("chatcmpl-3", "Done. Anything else?", 50, 5)),
        ]
    )
    chat = session(system_prompt="You are a billing agent.")
    turns = [
        await chat.send("Hi"),
        await chat.send("I was charged twice"),
        await chat.send("Please refund"),
    ]
    await chat.aclose()

    assert route.call_count == 3
    first, second, third = (body(route, i) for i in range(3))
    assert first == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a billing agent."},
            {"role": "user", "content": "Hi"},
        ],
        "temperature": 0.3,
        "max_completion_tokens": 200,
    }
    assert "max_tokens" not in first  # deprecated in the spec
    assert second["messages"] == [
        {"role": "system", "content": "You are a billing agent."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "I was charged twice"},
    ]
    assert third["messages"][:4] == second["messages"]
    assert third["messages"][4:] == [
        {"role": "assistant", "content": "I can refund that."},
        {"role": "user", "content": "Please refund"},
    ]
    assert [t.content for t in turns] == [
        "Hello! How can I help?",
        "I can refund that.",
        "Done. Anything else?",
    ]
    assert [t.response_id for t in turns] == ["chatcmpl-1", "chatcmpl-2", "chatcmpl-3"]
    assert turns[1].usage == Usage(input_tokens=35, output_tokens=6)
    assert all(t.latency_ms > 0 for t in turns)
    assert route.calls[0].request.headers["authorization"] == f"Bearer {KEY}"


async def test_blank_system_prompt_sends_no_system_message(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(200, json=load_fixture("openai/chat_completion.json"))
    chat = session(system_prompt="  \n ")
    turn = await chat.send("Hello!")
    await chat.aclose()
    assert body(route)["messages"] == [{"role": "user", "content": "Hello!"}]
    assert turn.content == "Hello! How can I assist you today?"
    assert turn.usage == Usage(input_tokens=19, output_tokens=10)


async def test_history_option_comes_before_the_new_message(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(200, json=load_fixture("openai/chat_completion.json"))
    history = [
        Message(role="user", content="Where is my order?", turn=1),
        Message(role="assistant", content="It ships today.", turn=1),
    ]
    chat = session(system_prompt="Be brief.", history=history)
    await chat.send("Thanks!")
    await chat.aclose()
    assert body(route)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is my order?"},
        {"role": "assistant", "content": "It ships today."},
        {"role": "user", "content": "Thanks!"},
    ]


async def test_json_schema_response_format_is_strict(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(
        200, json=completion("chatcmpl-j", '{"score": 90, "reasoning": "ok"}', 40, 12)
    )
    judge = ModelConfig(provider="openai", api="chat_completions", model="gpt-4o", temperature=0)
    chat = session(config=judge, response_format=VERDICT)
    turn = await chat.send("Judge this")
    await chat.aclose()
    sent = body(route)
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": VERDICT.schema, "strict": True},
    }
    assert sent["temperature"] == 0
    assert "max_completion_tokens" not in sent and "top_p" not in sent
    assert json.loads(turn.content) == {"score": 90, "reasoning": "ok"}


async def test_base_url_from_settings_is_where_requests_go(httpx2_mock: Any, api_key: str) -> None:
    local = httpx2_mock.post("http://localhost:9999/v1/chat/completions").respond(
        200, json=load_fixture("openai/chat_completion.json")
    )
    settings = Settings(providers={"openai": {"base_url": "http://localhost:9999/v1"}})
    chat = session(settings)
    turn = await chat.send("Hello!")
    await chat.aclose()
    assert local.call_count == 1
    assert turn.response_id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"


async def test_refusal_becomes_the_content(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.post(URL).respond(200, json=load_fixture("openai/chat_completion_refusal.json"))
    chat = session()
    turn = await chat.send("Something not allowed")
    await chat.aclose()
    assert turn.content == "I'm sorry, I can't help with that request."


# --- errors ---------------------------------------------------------------------------------


async def test_server_error_names_status_and_hides_the_key(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.post(URL).respond(
        500, json=load_fixture("openai/error_server.json"), headers={"x-request-id": "req_abc123"}
    )
    chat = session()
    with pytest.raises(LLMCallError) as caught:
        await chat.send("Hi")
    await chat.aclose()
    text = f"{caught.value} {caught.value.hint}"
    assert "HTTP 500" in text
    assert "The server had an error" in text
    assert "req_abc123" in text
    assert "openai/chat_completions gpt-4o-mini" in text
    assert "\n" not in str(caught.value)
    assert "SECRET123" not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_an_echoed_key_is_redacted(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.post(URL).respond(401, json=load_fixture("openai/error_invalid_api_key.json"))
    chat = session()
    with pytest.raises(LLMCallError) as caught:
        await chat.send("Hi")
    await chat.aclose()
    assert "HTTP 401" in str(caught.value)
    assert "Incorrect API key provided: [REDACTED]" in str(caught.value)
    assert "SECRET123" not in f"{caught.value} {caught.value.hint}"
    assert "key" in (caught.value.hint or "")


async def test_failed_turn_is_not_kept_in_the_history(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            httpx.Response(500, json=load_fixture("openai/error_server.json")),
            httpx.Response(200, json=load_fixture("openai/chat_completion.json")),
        ]
    )
    chat = session()
    with pytest.raises(LLMCallError):
        await chat.send("first try")
    await chat.send("second try")
    await chat.aclose()
    assert body(route, 1)["messages"] == [{"role": "user", "content": "second try"}]


async def test_connection_and_timeout_errors_are_one_line(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.post(URL).mock(
        side_effect=[httpx.ConnectError("connection refused"), httpx.ReadTimeout("slow")]
    )
    chat = session()
    with pytest.raises(LLMCallError) as refused:
        await chat.send("Hi")
    with pytest.raises(LLMCallError) as slow:
        await chat.send("Hi")
    await chat.aclose()
    assert "could not connect to https://api.openai.com/v1/chat/completions" in str(refused.value)
    assert "connection refused" in str(refused.value)
    assert "base_url" in (refused.value.hint or "")
    assert "timed out" in str(slow.value)
    assert "timeout_seconds" in (slow.value.hint or "")


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(RunStartError) as caught:
        session()
    assert "OPENAI_API_KEY" in str(caught.value)
    assert "export OPENAI_API_KEY=" in (caught.value.hint or "")
    assert "--mock" in (caught.value.hint or "")


def test_require_api_key_uses_the_configured_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(providers={"anthropic": {"api_key_env": "MY_CLAUDE_KEY"}})
    with pytest.raises(RunStartError, match="MY_CLAUDE_KEY"):
        require_api_key(settings, "anthropic")
    monkeypatch.setenv("MY_CLAUDE_KEY", "sk-ant-test")
    require_api_key(settings, "anthropic")  # no error once it is set


def test_client_takes_settings(api_key: str) -> None:
    settings = Settings(
        providers={
            "openai": {"base_url": "http://gw.local/v1", "timeout_seconds": 7, "max_retries": 4}
        }
    )
    client = openai_client(settings)
    assert str(client.base_url).rstrip("/") == "http://gw.local/v1"
    assert client.timeout == 7
    assert client.max_retries == 4
    assert client.api_key == KEY


def test_tools_are_refused_not_dropped(api_key: str) -> None:
    config = CONFIG.model_copy(update={"tools": ["lookup_order"]})
    with pytest.raises(NotImplementedRouteError) as caught:
        session(config=config)
    assert "function calling" in str(caught.value)
    assert "--mock" in str(caught.value)


# --- pure converters and redaction -----------------------------------------------------------


def test_converters_without_http() -> None:
    assert to_chat_messages("", []) == []
    with pytest.raises(ValueError, match="tool"):
        to_chat_messages("sys", [Message(role="tool", content="{}", turn=1)])
    bare = ModelConfig(provider="openai", api="chat_completions", model="m", top_p=0.5)
    assert request_params(bare, [{"role": "user", "content": "x"}], None) == {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "top_p": 0.5,
    }
    odd_name = JsonSchema(name="conversation judge!", schema={"type": "object"})
    params = request_params(bare, [], odd_name)
    assert params["response_format"]["json_schema"]["name"] == "conversation_judge_"


def test_turn_from_completion_handles_empty_content() -> None:
    payload = load_fixture("openai/chat_completion.json")
    payload["choices"][0]["message"]["content"] = None
    turn = turn_from_completion(ChatCompletion.model_validate(payload), latency_ms=12.5)
    assert turn.content == ""
    assert turn.latency_ms == 12.5
    assert turn.response_id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    payload["choices"] = []
    with pytest.raises(LLMCallError, match="no choices"):
        turn_from_completion(ChatCompletion.model_validate(payload), latency_ms=1)


def test_llm_call_error_redacts_other_exceptions() -> None:
    error = llm_call_error(RuntimeError(f"bad key {KEY} and sk-proj-abcDEF123456"), "label")
    assert str(error) == "label: RuntimeError: bad key [REDACTED] and [REDACTED]"


def test_redact_literal_secrets_and_bearer_tokens() -> None:
    assert redact("token abc123XYZ789 leaked", ["abc123XYZ789"]) == "token [REDACTED] leaked"
    assert redact("Authorization: Bearer eyJhbGciOi.x.y") == "Authorization: Bearer [REDACTED]"
    # short placeholder keys are hidden as words, not inside other words
    assert redact("key EMPTY, EMPTYING", ["EMPTY"]) == "key [REDACTED], EMPTYING"
    assert redact("AIzaSyA1234567890abcdefghijklmnop") == "[REDACTED]"
