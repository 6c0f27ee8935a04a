"""The Chat Completions session and the OpenAI client factory, over a mocked transport."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from prompttracker.config.models import FunctionTool, ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError, NotImplementedRouteError, RunStartError
from prompttracker.llm.base import JsonSchema, SessionOptions
from prompttracker.llm.clients import llm_call_error, openai_client, require_api_key
from prompttracker.llm.openai_chat_completions import (
    ChatCompletionsSession,
    answer_tool_calls,
    assistant_tool_call_message,
    request_params,
    to_chat_messages,
    tools_param,
    turn_from_completions,
)
from prompttracker.llm.redact import redact
from prompttracker.llm.tools import MAX_TOOL_ROUNDS
from prompttracker.messages import Message, ToolCall, Usage
from tests.conftest import load_fixture
from tests.helpers import (
    ORDER_HISTORY,
    assert_transport_errors,
    body,
    converse,
    key_fixture,
    no_retry_settings,
    ok,
    refused_then_slow,
    verdict,
)

URL = "https://api.openai.com/v1/chat/completions"
KEY = "sk-test-SECRET123"
CONFIG = ModelConfig(
    provider="openai",
    api="chat_completions",
    model="gpt-4o-mini",
    temperature=0.3,
    max_tokens=200,
)
VERDICT = verdict("reasoning")


api_key = key_fixture("OPENAI_API_KEY", KEY)
fast_settings = partial(no_retry_settings, "openai")


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


def session(
    settings: Settings | None = None, config: ModelConfig = CONFIG, **options: Any
) -> ChatCompletionsSession:
    return ChatCompletionsSession(config, settings or fast_settings(), SessionOptions(**options))


# --- the conversation over HTTP ------------------------------------------------------------


async def test_three_turns_resend_the_full_history(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(completion("chatcmpl-1", "Hello! How can I help?", 19, 7)),
            ok(completion("chatcmpl-2", "I can refund that.", 35, 6)),
            ok(completion("chatcmpl-3", "Done. Anything else?", 50, 5)),
        ]
    )
    chat = session(system_prompt="You are a billing agent.")
    turns = await converse(chat, "Hi", "I was charged twice", "Please refund")

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
    chat = session(system_prompt="Be brief.", history=ORDER_HISTORY)
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


# --- function calling -----------------------------------------------------------------------

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"],
    "additionalProperties": False,
}
REFUND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
    "required": ["order_id", "amount"],
}
TOOLS_CONFIG = ModelConfig.model_validate(
    {
        "provider": "openai",
        "api": "chat_completions",
        "model": "gpt-4o-mini",
        "tool_config": {
            "functions": [
                {
                    "name": "lookup_order",
                    "description": "Find an order by id",
                    "parameters": ORDER_SCHEMA,
                    "strict": True,
                },
                {"name": "refund_policy"},
                {"name": "issue_refund", "parameters": REFUND_SCHEMA},
            ]
        },
    }
)
FUNCTION_OUTPUTS = {
    "lookup_order": {"status": "charged_twice", "amount": 42.5},
    "issue_refund": "refund issued",  # text is sent as it is
}
SENT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "parameters": ORDER_SCHEMA,
            "description": "Find an order by id",
            "strict": True,
        },
    },
    {
        "type": "function",
        "function": {"name": "refund_policy", "parameters": {"type": "object", "properties": {}}},
    },
    {"type": "function", "function": {"name": "issue_refund", "parameters": REFUND_SCHEMA}},
]


def tool_call_completion(
    cid: str, calls: list[tuple[str, str, str]], prompt_tokens: int, completion_tokens: int
) -> dict:
    """The spec's tool-call example with our own id, calls (id, name, arguments) and usage."""
    payload = load_fixture("openai/chat_completion_tool_call.json")
    payload["id"] = cid
    payload["choices"][0]["message"]["tool_calls"] = [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        for call_id, name, arguments in calls
    ]
    payload["usage"].update(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )
    return payload


async def test_tool_rounds_are_answered_and_resent(httpx2_mock: Any, api_key: str) -> None:
    """Turn 1 takes two rounds of calls; turns 2 and 3 resend every call and answer."""
    refund_args = '{"order_id": "12345", "amount": 42.5}'
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(load_fixture("openai/chat_completion_tool_calls_parallel.json")),
            ok(
                tool_call_completion(
                    "chatcmpl-r2", [("call_refund_3", "issue_refund", refund_args)], 180, 20
                )
            ),
            ok(completion("chatcmpl-t1", "Refunded 42.50 to you.", 200, 9)),
            ok(completion("chatcmpl-t2", "You are welcome.", 230, 5)),
            ok(completion("chatcmpl-t3", "Goodbye!", 245, 3)),
        ]
    )
    chat = session(
        config=TOOLS_CONFIG,
        system_prompt="You are a billing agent.",
        function_outputs=FUNCTION_OUTPUTS,
    )
    turns = await converse(chat, "I was charged twice for order 12345", "Thanks!", "Bye")

    assert route.call_count == 5
    sent = [body(route, i) for i in range(5)]
    assert all(b["tools"] == SENT_TOOLS for b in sent)
    opening = [
        {"role": "system", "content": "You are a billing agent."},
        {"role": "user", "content": "I was charged twice for order 12345"},
    ]
    assert sent[0] == {"model": "gpt-4o-mini", "messages": opening, "tools": SENT_TOOLS}
    round_one = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_lookup_1",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order_id": "12345"}'},
                },
                {
                    "id": "call_policy_2",
                    "type": "function",
                    "function": {"name": "refund_policy", "arguments": "{}"},
                },
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_lookup_1",
            "content": '{"status": "charged_twice", "amount": 42.5}',
        },
        {
            "role": "tool",
            "tool_call_id": "call_policy_2",
            # no mock output for this function: the default names the call
            "content": '{"mock": true, "function": "refund_policy", "arguments": {}, '
            '"result": "ok"}',
        },
    ]
    assert sent[1]["messages"] == opening + round_one
    round_two = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_refund_3",
                    "type": "function",
                    "function": {"name": "issue_refund", "arguments": refund_args},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_refund_3", "content": "refund issued"},
    ]
    assert sent[2]["messages"] == opening + round_one + round_two
    turn_one = [
        *opening,
        *round_one,
        *round_two,
        {"role": "assistant", "content": "Refunded 42.50 to you."},
    ]
    assert sent[3]["messages"] == [*turn_one, {"role": "user", "content": "Thanks!"}]
    assert sent[4]["messages"] == [
        *turn_one,
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You are welcome."},
        {"role": "user", "content": "Bye"},
    ]

    first = turns[0]
    assert first.content == "Refunded 42.50 to you."
    assert first.response_id == "chatcmpl-t1"
    assert first.usage == Usage(input_tokens=120 + 180 + 200, output_tokens=41 + 20 + 9)
    assert first.extras == {"tool_round_response_ids": ["chatcmpl-par456", "chatcmpl-r2"]}
    assert first.tool_calls == (
        ToolCall(
            id="call_lookup_1",
            name="lookup_order",
            arguments={"order_id": "12345"},
            output={"status": "charged_twice", "amount": 42.5},
        ),
        ToolCall(
            id="call_policy_2",
            name="refund_policy",
            arguments={},
            output={"mock": True, "function": "refund_policy", "arguments": {}, "result": "ok"},
        ),
        ToolCall(
            id="call_refund_3",
            name="issue_refund",
            arguments={"order_id": "12345", "amount": 42.5},
            output="refund issued",
        ),
    )
    assert all(c.type == "function" for c in first.tool_calls)
    assert turns[1].tool_calls == () and turns[1].extras == {}
    assert turns[1].usage == Usage(input_tokens=230, output_tokens=5)
    assert [t.response_id for t in turns] == ["chatcmpl-t1", "chatcmpl-t2", "chatcmpl-t3"]


async def test_tool_rounds_stop_at_the_cap(httpx2_mock: Any, api_key: str) -> None:
    """A model that never stops calling gets MAX_TOOL_ROUNDS answers, then the turn fails."""
    looping = [
        ok(
            tool_call_completion(
                f"chatcmpl-loop{i}", [(f"call_{i}", "lookup_order", '{"order_id": "1"}')], 10, 2
            )
        )
        for i in range(MAX_TOOL_ROUNDS + 1)
    ]
    route = httpx2_mock.post(URL).mock(
        side_effect=[*looping, ok(completion("chatcmpl-ok", "Hi", 5, 1))]
    )
    chat = session(config=TOOLS_CONFIG, function_outputs=FUNCTION_OUTPUTS)
    with pytest.raises(LLMCallError) as caught:
        await chat.send("Loop forever")
    assert route.call_count == 1 + MAX_TOOL_ROUNDS == 11
    assert "after 10 rounds" in str(caught.value)
    assert "openai/chat_completions gpt-4o-mini" in str(caught.value)
    assert "mock_function_outputs" in (caught.value.hint or "")
    last = body(route, MAX_TOOL_ROUNDS)["messages"]
    assert len(last) == 1 + 2 * MAX_TOOL_ROUNDS  # the user message, then call/answer pairs
    # The failed turn's calls and answers are not kept: the next turn starts clean.
    turn = await chat.send("Hello again")
    await chat.aclose()
    assert body(route, MAX_TOOL_ROUNDS + 1)["messages"] == [
        {"role": "user", "content": "Hello again"}
    ]
    assert turn.content == "Hi"


async def test_tool_calls_without_tools_sent_are_an_error(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(
        200, json=load_fixture("openai/chat_completion_tool_call.json")
    )
    chat = session()
    with pytest.raises(LLMCallError, match="no tools were sent"):
        await chat.send("Weather?")
    await chat.aclose()
    assert "tools" not in body(route)
    assert route.call_count == 1


def test_tool_converters_without_http() -> None:
    assert tools_param(CONFIG) == []
    assert "tools" not in request_params(CONFIG, [], None)
    assert tools_param(TOOLS_CONFIG) == SENT_TOOLS
    one = ModelConfig(
        provider="openai",
        api="chat_completions",
        model="m",
        tool_config={"functions": [FunctionTool(name="f", strict=False)]},
    )
    assert tools_param(one)[0]["function"]["strict"] is False

    payload = load_fixture("openai/chat_completion_tool_call.json")
    payload["choices"][0]["message"]["tool_calls"].append(
        {"id": "call_bad", "type": "function", "function": {"name": "f", "arguments": "not json"}}
    )
    message = payload["choices"][0]["message"]
    request = assistant_tool_call_message(message)
    assert request["role"] == "assistant" and request["content"] is None
    answers, calls = answer_tool_calls(request, {"get_current_weather": {"temp_c": 21}})
    assert answers == [
        {"role": "tool", "tool_call_id": "call_abc123", "content": '{"temp_c": 21}'},
        {
            "role": "tool",
            "tool_call_id": "call_bad",
            "content": '{"mock": true, "function": "f", "arguments": {"_raw": "not json"}, '
            '"result": "ok"}',
        },
    ]
    assert calls[0] == ToolCall(
        id="call_abc123",
        name="get_current_weather",
        arguments={"location": "Boston, MA"},
        output={"temp_c": 21},
    )
    assert calls[1].arguments == {"_raw": "not json"}

    custom = load_fixture("openai/chat_completion_tool_call.json")
    custom["choices"][0]["message"]["tool_calls"] = [
        {"id": "call_c", "type": "custom", "custom": {"name": "grammar", "input": "x"}}
    ]
    with pytest.raises(LLMCallError, match="'custom' tool call"):
        assistant_tool_call_message(custom["choices"][0]["message"])


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
            ok(load_fixture("openai/chat_completion.json")),
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
    refused, slow = await refused_then_slow(session())
    assert_transport_errors(refused, slow, "https://api.openai.com/v1/chat/completions")


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


def test_hosted_tools_are_refused_not_dropped(api_key: str) -> None:
    with pytest.raises(ValidationError, match="use api: responses"):
        ModelConfig(provider="openai", api="chat_completions", model="m", tools=["web_search"])
    # A config built around the validator still cannot lose its tools silently.
    config = CONFIG.model_copy(update={"tools": ["web_search"]})
    with pytest.raises(NotImplementedRouteError) as caught:
        session(config=config)
    assert "web_search" in str(caught.value)
    assert "api: responses" in (caught.value.hint or "")


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


def test_turn_from_completions_handles_empty_content() -> None:
    payload = load_fixture("openai/chat_completion.json")
    payload["choices"][0]["message"]["content"] = None
    turn = turn_from_completions([payload], [], latency_ms=12.5)
    assert turn.content == ""
    assert turn.latency_ms == 12.5
    assert turn.response_id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert turn.tool_calls == () and turn.extras == {}
    payload["choices"] = []
    with pytest.raises(LLMCallError, match="no choices"):
        turn_from_completions([payload], [], latency_ms=1)


def test_llm_call_error_redacts_other_exceptions() -> None:
    error = llm_call_error(RuntimeError(f"bad key {KEY} and sk-proj-abcDEF123456"), "label")
    assert str(error) == "label: RuntimeError: bad key [REDACTED] and [REDACTED]"


def test_redact_literal_secrets_and_bearer_tokens() -> None:
    assert redact("token abc123XYZ789 leaked", ["abc123XYZ789"]) == "token [REDACTED] leaked"
    assert redact("Authorization: Bearer eyJhbGciOi.x.y") == "Authorization: Bearer [REDACTED]"
    # short placeholder keys are hidden as words, not inside other words
    assert redact("key EMPTY, EMPTYING", ["EMPTY"]) == "key [REDACTED], EMPTYING"
    assert redact("AIzaSyA1234567890abcdefghijklmnop") == "[REDACTED]"
