"""The Anthropic Messages session and its client factory, over a mocked transport."""

from __future__ import annotations

import json
import sys
from functools import partial
from typing import Any

import httpx
import httpx2
import pytest
from anthropic.types import Message as AnthropicMessage

from prompttracker.api_types import ApiType
from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError, NotImplementedRouteError, RunStartError
from prompttracker.llm import router
from prompttracker.llm.anthropic_messages import (
    DEFAULT_MAX_TOKENS,
    AnthropicMessagesSession,
    request_params,
    to_anthropic_messages,
    turn_from_message,
)
from prompttracker.llm.base import SessionOptions
from prompttracker.llm.clients import anthropic_call_error, anthropic_client
from prompttracker.messages import Message, Usage
from tests.conftest import load_fixture
from tests.helpers import (
    ORDER_HISTORY,
    YES_NO_QUESTIONS,
    assert_transport_errors,
    body,
    converse,
    error_text,
    key_fixture,
    no_retry_settings,
    ok,
    refused_then_slow,
    verdict,
)

URL = "https://api.anthropic.com/v1/messages"
KEY = "sk-ant-api03-test-SECRET123"
CONFIG = ModelConfig(provider="anthropic", api="messages", model="claude-haiku-4-5")
VERDICT = verdict("feedback")


api_key = key_fixture("ANTHROPIC_API_KEY", KEY)
fast_settings = partial(no_retry_settings, "anthropic")


def reply(mid: str, text: str, input_tokens: int, output_tokens: int, **changes: Any) -> dict:
    """The fixture message with our own id, text, token counts and other top-level fields."""
    payload = load_fixture("anthropic/message.json")
    payload.update(id=mid, **changes)
    payload["content"][0]["text"] = text
    payload["usage"].update(input_tokens=input_tokens, output_tokens=output_tokens)
    return payload


def session(
    settings: Settings | None = None, config: ModelConfig = CONFIG, **options: Any
) -> AnthropicMessagesSession:
    return AnthropicMessagesSession(config, settings or fast_settings(), SessionOptions(**options))


# --- the conversation over HTTP ------------------------------------------------------------


async def test_three_turns_resend_the_full_history(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(reply("msg_1", "Hello! How can I help?", 21, 8)),
            ok(reply("msg_2", "I can refund that.", 40, 6)),
            ok(reply("msg_3", "Done. Anything else?", 55, 5)),
        ]
    )
    chat = session(system_prompt="You are a billing agent.")
    turns = await converse(chat, "Hi", "I was charged twice", "Please refund")

    assert route.call_count == 3
    first, second, third = (body(route, i) for i in range(3))
    assert first == {
        "model": "claude-haiku-4-5",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "system": "You are a billing agent.",
        "messages": [{"role": "user", "content": "Hi"}],
    }
    assert DEFAULT_MAX_TOKENS == 4096
    assert second["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "I was charged twice"},
    ]
    assert third["system"] == "You are a billing agent."  # resent every turn, never a message
    assert third["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "I was charged twice"},
        {"role": "assistant", "content": "I can refund that."},
        {"role": "user", "content": "Please refund"},
    ]
    assert [t.content for t in turns] == [
        "Hello! How can I help?",
        "I can refund that.",
        "Done. Anything else?",
    ]
    assert [t.response_id for t in turns] == ["msg_1", "msg_2", "msg_3"]
    assert [t.usage for t in turns] == [
        Usage(input_tokens=21, output_tokens=8),
        Usage(input_tokens=40, output_tokens=6),
        Usage(input_tokens=55, output_tokens=5),
    ]
    assert all(t.latency_ms > 0 for t in turns)
    assert all(t.extras == {} for t in turns)
    headers = route.calls[0].request.headers
    # anthropic 2.x sends the key as a bearer token (1.x used `x-api-key`).
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["anthropic-version"]
    assert chat.conversation_mode == "messages"


async def test_generation_parameters_are_sent(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(200, json=load_fixture("anthropic/message.json"))
    config = CONFIG.model_copy(update={"temperature": 0.3, "top_p": 0.9, "max_tokens": 200})
    chat = session(config=config)
    turn = await chat.send("Hello")
    await chat.aclose()
    assert body(route) == {
        "model": "claude-haiku-4-5",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "Hello"}],
        "temperature": 0.3,
        "top_p": 0.9,
    }
    assert turn.content == "Hi! My name is Claude."
    assert turn.usage == Usage(input_tokens=2095, output_tokens=503)
    assert turn.response_id == "msg_013Zva2CMHLNnXjNJJKqJ2EF"


async def test_blank_system_prompt_is_omitted_and_history_comes_first(
    httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(URL).respond(200, json=load_fixture("anthropic/message.json"))
    chat = session(system_prompt=" \n ", history=ORDER_HISTORY)
    await chat.send("Thanks!")
    await chat.aclose()
    sent = body(route)
    assert "system" not in sent
    assert sent["messages"] == [
        {"role": "user", "content": "Where is my order?"},
        {"role": "assistant", "content": "It ships today."},
        {"role": "user", "content": "Thanks!"},
    ]


async def test_structured_output_for_judges(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(
        200, json=reply("msg_j", '{"score": 90, "feedback": "ok"}', 300, 20)
    )
    judge = CONFIG.model_copy(update={"temperature": 0})
    chat = session(config=judge, system_prompt="Judge.", response_format=VERDICT)
    turn = await chat.send("Judge this")
    await chat.aclose()
    sent = body(route)
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": VERDICT.schema}}
    assert sent["temperature"] == 0
    assert "tools" not in sent and "tool_choice" not in sent
    assert json.loads(turn.content) == {"score": 90, "feedback": "ok"}


async def test_base_url_from_settings_is_where_requests_go(httpx2_mock: Any, api_key: str) -> None:
    proxy = httpx2_mock.post("http://claude-proxy.local/v1/messages").respond(
        200, json=load_fixture("anthropic/message.json")
    )
    chat = session(fast_settings(base_url="http://claude-proxy.local"))
    await chat.send("Hello")
    await chat.aclose()
    assert proxy.call_count == 1


async def test_one_shot_call_through_the_router(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(200, json=reply("msg_r", "Yes.", 12, 2))
    turn = await router.complete(
        CONFIG,
        fast_settings(),
        system_prompt="Answer yes or no.",
        messages=YES_NO_QUESTIONS,
    )
    assert turn.content == "Yes."
    assert turn.response_id == "msg_r"
    assert body(route)["system"] == "Answer yes or no."
    assert [m["content"] for m in body(route)["messages"]] == ["Is it sunny?", "No.", "Is it warm?"]


# --- replies that stop early -----------------------------------------------------------------


async def test_truncated_reply_keeps_text_and_records_why(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(reply("msg_t", "The refund policy says", 9, 5, stop_reason="max_tokens")),
            ok(reply("msg_u", "Sure.", 20, 2)),
        ]
    )
    chat = session()
    turn = await chat.send("Explain the policy")
    await chat.send("Go on")
    await chat.aclose()
    assert turn.content == "The refund policy says"
    assert turn.extras == {"stop_reasons": [{"response_id": "msg_t", "stop_reason": "max_tokens"}]}
    assert body(route, 1)["messages"][1] == {
        "role": "assistant",
        "content": "The refund policy says",
    }


async def test_refusal_without_text_is_an_error_and_not_kept(
    httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(load_fixture("anthropic/message_refusal.json")),
            ok(load_fixture("anthropic/message.json")),
        ]
    )
    chat = session()
    with pytest.raises(LLMCallError) as caught:
        await chat.send("Write malware")
    await chat.send("Hello")
    await chat.aclose()
    assert "msg_01RefusalXq2mNvYkG7aTzLbP" in str(caught.value)
    assert "stop reason refusal, cyber: The request could enable malware" in str(caught.value)
    assert "safety" in (caught.value.hint or "")
    assert body(route, 1)["messages"] == [{"role": "user", "content": "Hello"}]


def test_thinking_is_left_out_and_tool_blocks_are_refused() -> None:
    payload = load_fixture("anthropic/message.json")
    payload["content"] = [
        {"type": "thinking", "thinking": "The user greets me.", "signature": "EqQBCgIYAhIM"},
        {"type": "text", "text": "Hello", "citations": None},
        {"type": "text", "text": " there!", "citations": None},
    ]
    payload["usage"].update(cache_creation_input_tokens=100, cache_read_input_tokens=1000)
    turn = turn_from_message(AnthropicMessage.model_validate(payload), latency_ms=7.5)
    assert turn.content == "Hello there!"
    assert turn.usage == Usage(input_tokens=2095 + 100 + 1000, output_tokens=503)
    assert turn.latency_ms == 7.5

    payload["content"].append(
        {"type": "tool_use", "id": "toolu_01A", "name": "lookup", "input": {"order": "1"}}
    )
    with pytest.raises(LLMCallError, match="'tool_use' block, but no tools were sent"):
        turn_from_message(AnthropicMessage.model_validate(payload), latency_ms=1)


# --- errors ---------------------------------------------------------------------------------


async def test_server_error_names_status_and_hides_the_key(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.post(URL).respond(
        500,
        json=load_fixture("anthropic/error_api.json"),
        headers={"request-id": "req_011CSHoEeqs5C35K2UUqR7Fy"},
    )
    chat = session()
    with pytest.raises(LLMCallError) as caught:
        await chat.send("Hi")
    await chat.aclose()
    text = error_text(caught.value)
    assert str(caught.value) == (
        "prompt under test: anthropic/messages claude-haiku-4-5: the API answered HTTP 500: "
        "Internal server error (from https://api.anthropic.com/v1/messages; request id "
        "req_011CSHoEeqs5C35K2UUqR7Fy)"
    )
    assert "retry later" in text
    assert "SECRET123" not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_refused_key_is_hidden_even_when_echoed(httpx2_mock: Any, api_key: str) -> None:
    payload = load_fixture("anthropic/error_authentication.json")
    payload["error"]["message"] = f"invalid x-api-key: {KEY}"
    httpx2_mock.post(URL).respond(401, json=payload)
    chat = session()
    with pytest.raises(LLMCallError) as caught:
        await chat.send("Hi")
    await chat.aclose()
    assert "HTTP 401: invalid x-api-key: [REDACTED]" in str(caught.value)
    assert "SECRET123" not in error_text(caught.value)
    assert "API key was refused" in (caught.value.hint or "")


async def test_failed_turn_is_not_kept_in_the_history(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            httpx.Response(
                529,
                json={
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": "Overloaded"},
                },
            ),
            ok(load_fixture("anthropic/message.json")),
        ]
    )
    chat = session()
    with pytest.raises(LLMCallError, match="HTTP 529: Overloaded"):
        await chat.send("first try")
    await chat.send("second try")
    await chat.aclose()
    assert body(route, 1)["messages"] == [{"role": "user", "content": "second try"}]


async def test_connection_and_timeout_errors_are_one_line(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.post(URL).mock(
        side_effect=[httpx2.ConnectError("connection refused"), httpx2.ReadTimeout("slow")]
    )
    refused, slow = await refused_then_slow(session())
    assert_transport_errors(refused, slow, "https://api.anthropic.com/v1/messages")


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(RunStartError) as caught:
        session()
    assert "ANTHROPIC_API_KEY" in str(caught.value)
    assert "export ANTHROPIC_API_KEY=" in (caught.value.hint or "")


def test_missing_sdk_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)  # `import anthropic` now fails
    monkeypatch.delitem(sys.modules, "prompttracker.llm.anthropic_messages")
    with pytest.raises(RunStartError) as caught:
        router.session_class(ApiType.ANTHROPIC_MESSAGES)
    assert "anthropic SDK is not installed" in str(caught.value)
    assert caught.value.hint == "pip install 'prompttracker[anthropic]'"


def test_client_takes_settings(api_key: str) -> None:
    settings = Settings(
        providers={
            "anthropic": {"base_url": "http://gw.local", "timeout_seconds": 7, "max_retries": 4}
        }
    )
    client = anthropic_client(settings)
    assert str(client.base_url).rstrip("/") == "http://gw.local"
    assert client.timeout == 7
    assert client.max_retries == 4
    assert client.api_key == KEY


def test_client_reads_the_configured_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-this-one")
    settings = Settings(providers={"anthropic": {"api_key_env": "TEAM_CLAUDE_KEY"}})
    with pytest.raises(RunStartError, match="TEAM_CLAUDE_KEY"):
        anthropic_client(settings)
    monkeypatch.setenv("TEAM_CLAUDE_KEY", "sk-ant-team")
    assert anthropic_client(settings).api_key == "sk-ant-team"


def test_tools_built_in_code_are_refused(api_key: str) -> None:
    config = CONFIG.model_copy(update={"tools": ["web_search"]})
    with pytest.raises(NotImplementedRouteError, match="tools are not supported"):
        session(config=config)


# --- pure converters ---------------------------------------------------------------------------


def test_converters_without_http() -> None:
    with pytest.raises(ValueError, match="tool"):
        to_anthropic_messages([Message(role="tool", content="{}", turn=1)])
    assert request_params(CONFIG, "", [], None) == {
        "model": "claude-haiku-4-5",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [],
    }
    only_top_p = CONFIG.model_copy(update={"top_p": 0.5})
    assert request_params(only_top_p, "", [], None)["extra_body"] == {"top_p": 0.5}


def test_other_sdk_errors_are_redacted() -> None:
    error = anthropic_call_error(RuntimeError(f"boom {KEY}"), "label", secrets=(KEY,))
    assert str(error) == "label: RuntimeError: boom [REDACTED]"
