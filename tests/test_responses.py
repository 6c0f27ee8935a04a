"""The Responses session: chaining, the Conversations API, tools, function calling, normalizing."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import httpx
import pytest

from prompttracker.config.models import ModelConfig
from prompttracker.errors import LLMCallError
from prompttracker.llm import router
from prompttracker.llm.base import JsonSchema, SessionOptions
from prompttracker.llm.openai_responses import (
    ResponsesSession,
    function_call_outputs,
    input_items,
    request_params,
    tools_param,
)
from prompttracker.llm.openai_responses_output import check_status, parse_turn
from prompttracker.llm.tools import MAX_TOOL_ROUNDS
from prompttracker.messages import Message, ToolCall, Usage
from tests.conftest import load_fixture
from tests.helpers import ORDER_HISTORY, body, converse, key_fixture, no_retry_settings, ok

URL = "https://api.openai.com/v1/responses"
CONVERSATIONS_URL = "https://api.openai.com/v1/conversations"
KEY = "sk-test-SECRET123"
CONFIG = ModelConfig(
    provider="openai",
    api="responses",
    model="gpt-4o-mini",
    temperature=0.3,
    top_p=0.9,
    max_tokens=200,
)
WEATHER = {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location", "unit"],
    },
}
WITH_FUNCTION = ModelConfig(
    provider="openai",
    api="responses",
    model="gpt-4o-mini",
    tool_config={"functions": [WEATHER]},
)
WEATHER_TOOL = {"type": "function", **WEATHER, "strict": False}
CALL_ID = "call_unLAR8MvFNptuiZK6K6HCy5k"


api_key = key_fixture("OPENAI_API_KEY", KEY)
fast_settings = partial(no_retry_settings, "openai")


def reply(rid: str, text: str, input_tokens: int = 10, output_tokens: int = 5) -> dict:
    """The spec's text response with our own id, text and token counts."""
    payload = load_fixture("openai/responses_text.json")
    payload["id"] = rid
    payload["output"][0]["content"][0]["text"] = text
    payload["usage"].update(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )
    return payload


def function_call(rid: str, call_id: str = CALL_ID, input_tokens: int = 291) -> dict:
    """The spec's function-call response with our own response and call ids."""
    payload = load_fixture("openai/responses_function_call.json")
    payload["id"] = rid
    payload["output"][0]["call_id"] = call_id
    payload["usage"]["input_tokens"] = input_tokens
    return payload


def session(config: ModelConfig = CONFIG, **options: Any) -> ResponsesSession:
    return ResponsesSession(config, fast_settings(), SessionOptions(**options))


# --- chaining over HTTP ---------------------------------------------------------------------


async def test_three_turns_chain_previous_response_id_and_resend_instructions(
    httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(reply("resp_1", "Hello! How can I help?", 19, 7)),
            ok(reply("resp_2", "I can refund that.", 35, 6)),
            ok(reply("resp_3", "Done. Anything else?", 50, 5)),
        ]
    )
    chat = session(system_prompt="You are a billing agent.")
    turns = await converse(chat, "Hi", "I was charged twice", "Please refund")

    assert route.call_count == 3
    assert body(route, 0) == {
        "model": "gpt-4o-mini",
        "input": [{"type": "message", "role": "user", "content": "Hi"}],
        "instructions": "You are a billing agent.",
        "temperature": 0.3,
        "top_p": 0.9,
        "max_output_tokens": 200,
    }
    for index, (previous, text) in enumerate(
        [("resp_1", "I was charged twice"), ("resp_2", "Please refund")], start=1
    ):
        assert body(route, index) == {
            "model": "gpt-4o-mini",
            "input": [{"type": "message", "role": "user", "content": text}],
            "instructions": "You are a billing agent.",
            "previous_response_id": previous,
            "temperature": 0.3,
            "top_p": 0.9,
            "max_output_tokens": 200,
        }
    assert [t.content for t in turns] == [
        "Hello! How can I help?",
        "I can refund that.",
        "Done. Anything else?",
    ]
    assert [t.response_id for t in turns] == ["resp_1", "resp_2", "resp_3"]
    assert turns[1].usage == Usage(input_tokens=35, output_tokens=6)
    assert all(t.latency_ms > 0 for t in turns)
    assert all(t.tool_calls == () and t.extras == {} for t in turns)
    assert chat.metadata == {
        "conversation_mode": "response_api",
        "response_ids": ["resp_1", "resp_2", "resp_3"],
    }
    assert ResponsesSession.conversation_mode == "response_api"
    assert route.calls[0].request.headers["authorization"] == f"Bearer {KEY}"


async def test_blank_system_prompt_sends_no_instructions(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(side_effect=[ok(reply("resp_1", "a")), ok(reply("r2", "b"))])
    chat = session(
        config=ModelConfig(provider="openai", api="responses", model="m"), system_prompt="  \n"
    )
    await chat.send("one")
    await chat.send("two")
    await chat.aclose()
    assert body(route, 0) == {
        "model": "m",
        "input": [{"type": "message", "role": "user", "content": "one"}],
    }
    assert body(route, 1) == {
        "model": "m",
        "input": [{"type": "message", "role": "user", "content": "two"}],
        "previous_response_id": "resp_1",
    }


async def test_failed_turn_does_not_move_the_chain(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(reply("resp_1", "first")),
            httpx.Response(500, json=load_fixture("openai/error_server.json")),
            ok(reply("resp_3", "third")),
        ]
    )
    chat = session()
    await chat.send("one")
    with pytest.raises(LLMCallError):
        await chat.send("two")
    await chat.send("three")
    await chat.aclose()
    assert body(route, 2)["previous_response_id"] == "resp_1"
    assert body(route, 2)["input"] == [{"type": "message", "role": "user", "content": "three"}]


async def test_complete_sends_history_as_input_through_the_router(
    httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(URL).respond(200, json=reply("resp_judge", '{"score": 80}', 40, 9))
    history = [*ORDER_HISTORY, Message(role="user", content="Thanks!", turn=2)]
    verdict = JsonSchema(name="conversation judge!", schema={"type": "object"})
    turn = await router.complete(
        CONFIG, fast_settings(), system_prompt="Judge.", messages=history, response_format=verdict
    )
    assert body(route) == {
        "model": "gpt-4o-mini",
        "input": [
            {"type": "message", "role": "user", "content": "Where is my order?"},
            {"type": "message", "role": "assistant", "content": "It ships today."},
            {"type": "message", "role": "user", "content": "Thanks!"},
        ],
        "instructions": "Judge.",
        "temperature": 0.3,
        "top_p": 0.9,
        "max_output_tokens": 200,
        "text": {
            "format": {
                "type": "json_schema",
                "name": "conversation_judge_",
                "schema": {"type": "object"},
                "strict": True,
            }
        },
    }
    assert turn.content == '{"score": 80}'
    assert turn.usage == Usage(input_tokens=40, output_tokens=9)


# --- the Conversations API ------------------------------------------------------------------


async def test_conversation_state_uses_one_conversation(httpx2_mock: Any, api_key: str) -> None:
    created = httpx2_mock.post(CONVERSATIONS_URL).respond(
        200, json=load_fixture("openai/responses_conversation.json")
    )
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(reply("resp_1", "one")),
            ok(function_call("resp_2")),
            ok(reply("resp_3", "sunny")),
            ok(reply("resp_4", "bye")),
        ]
    )
    config = WITH_FUNCTION.model_copy(update={"conversation_state": "conversation"})
    history = [Message(role="user", content="earlier", turn=1)]
    chat = session(
        config=config,
        system_prompt="Be brief.",
        history=history,
        function_outputs={"get_current_weather": {"sky": "sunny"}},
    )
    await chat.send("Hi")
    weather = await chat.send("Weather in Boston?")
    await chat.send("Thanks")
    await chat.aclose()

    assert created.call_count == 1
    assert json.loads(created.calls[0].request.content) == {}
    assert route.call_count == 4
    sent = [body(route, i) for i in range(4)]
    assert all(b["conversation"] == "conv_123" for b in sent)
    assert all("previous_response_id" not in b for b in sent)
    assert all(b["instructions"] == "Be brief." for b in sent)
    assert sent[0]["input"] == [
        {"type": "message", "role": "user", "content": "earlier"},
        {"type": "message", "role": "user", "content": "Hi"},
    ]
    assert sent[1]["input"] == [
        {"type": "message", "role": "user", "content": "Weather in Boston?"}
    ]
    assert sent[2]["input"] == [
        {"type": "function_call_output", "call_id": CALL_ID, "output": '{"sky": "sunny"}'}
    ]
    assert sent[3]["input"] == [{"type": "message", "role": "user", "content": "Thanks"}]
    assert weather.content == "sunny"
    assert chat.metadata == {
        "conversation_mode": "response_api",
        "response_ids": ["resp_1", "resp_2", "resp_3", "resp_4"],
        "conversation_id": "conv_123",
    }


async def test_conversation_create_error_is_an_llm_call_error(
    httpx2_mock: Any, api_key: str
) -> None:
    httpx2_mock.post(CONVERSATIONS_URL).respond(
        401, json=load_fixture("openai/error_invalid_api_key.json")
    )
    chat = session(config=CONFIG.model_copy(update={"conversation_state": "conversation"}))
    with pytest.raises(LLMCallError) as caught:
        await chat.send("Hi")
    await chat.aclose()
    assert "HTTP 401" in str(caught.value)
    assert "SECRET123" not in f"{caught.value} {caught.value.hint}"
    # /responses is not even mocked: the only request made was the failed create.
    assert [call.request.url.path for call in httpx2_mock.calls] == ["/v1/conversations"]


# --- tools and function calling -------------------------------------------------------------


async def test_every_tool_is_in_the_body_with_its_include(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(200, json=reply("resp_1", "ok"))
    config = ModelConfig(
        provider="openai",
        api="responses",
        model="gpt-4o",
        tools=["web_search", "file_search", "code_interpreter"],
        tool_config={
            "web_search": {"search_context_size": "high"},
            "file_search": {"vector_store_ids": ["vs_abc123"], "max_num_results": 5},
            "code_interpreter": {"file_ids": ["file-123"], "memory_limit": "4g"},
            "functions": [{**WEATHER, "strict": True}, {"name": "lookup_order"}],
        },
    )
    chat = session(config=config)
    await chat.send("Go")
    await chat.aclose()
    sent = body(route)
    assert sent["tools"] == [
        {"type": "web_search", "search_context_size": "high"},
        {"type": "file_search", "vector_store_ids": ["vs_abc123"], "max_num_results": 5},
        {
            "type": "code_interpreter",
            "container": {"type": "auto", "file_ids": ["file-123"], "memory_limit": "4g"},
        },
        {"type": "function", **WEATHER, "strict": True},
        {
            "type": "function",
            "name": "lookup_order",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        },
    ]
    assert sent["include"] == [
        "web_search_call.action.sources",
        "file_search_call.results",
        "code_interpreter_call.outputs",
    ]


def test_bare_hosted_tools_without_tool_config() -> None:
    config = ModelConfig(
        provider="openai", api="responses", model="m", tools=["code_interpreter", "web_search"]
    )
    assert tools_param(config) == [
        {"type": "code_interpreter", "container": {"type": "auto", "file_ids": []}},
        {"type": "web_search"},
    ]


async def test_function_call_is_answered_with_the_mock_output(
    httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(function_call("resp_fc", input_tokens=291)),
            ok(reply("resp_answer", "It is 21°C in Boston.", 320, 12)),
            ok(reply("resp_next", "You're welcome.", 350, 4)),
        ]
    )
    mock_output = {"temperature": 21, "unit": "celsius"}
    chat = session(
        config=WITH_FUNCTION,
        system_prompt="Weather bot.",
        function_outputs={"get_current_weather": mock_output},
    )
    turn = await chat.send("Weather in Boston?")
    after = await chat.send("Thanks")
    await chat.aclose()

    assert route.call_count == 3
    assert body(route, 1) == {
        "model": "gpt-4o-mini",
        "input": [
            {
                "type": "function_call_output",
                "call_id": CALL_ID,
                "output": json.dumps(mock_output),
            }
        ],
        "instructions": "Weather bot.",
        "previous_response_id": "resp_fc",
        "tools": [WEATHER_TOOL],
    }
    assert body(route, 2)["previous_response_id"] == "resp_answer"
    assert body(route, 2)["input"] == [{"type": "message", "role": "user", "content": "Thanks"}]
    assert turn.content == "It is 21°C in Boston."
    assert turn.response_id == "resp_answer"
    assert turn.usage == Usage(input_tokens=291 + 320, output_tokens=23 + 12)
    assert turn.tool_calls == (
        ToolCall(
            id=CALL_ID,
            type="function",
            name="get_current_weather",
            arguments={"location": "Boston, MA", "unit": "celsius"},
            output=json.dumps(mock_output),
        ),
    )
    assert after.tool_calls == ()
    assert chat.metadata["response_ids"] == ["resp_fc", "resp_answer", "resp_next"]


async def test_function_call_without_mock_output_gets_the_default(
    httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[ok(function_call("resp_fc")), ok(reply("resp_answer", "Done."))]
    )
    chat = session(config=WITH_FUNCTION)
    turn = await chat.send("Weather?")
    await chat.aclose()
    output = body(route, 1)["input"][0]["output"]
    assert json.loads(output) == {
        "mock": True,
        "function": "get_current_weather",
        "arguments": {"location": "Boston, MA", "unit": "celsius"},
        "result": "ok",
    }
    assert turn.tool_calls[0].output == output


async def test_function_calls_stop_after_max_rounds(httpx2_mock: Any, api_key: str) -> None:
    # The model calls a function in its first answer and in each of the 10 follow-ups: the
    # 11th call is not answered, and a 12th request is never made.
    calls = [ok(function_call(f"resp_{i}", call_id=f"call_{i}")) for i in range(12)]
    route = httpx2_mock.post(URL).mock(side_effect=calls)
    chat = session(config=WITH_FUNCTION)
    with pytest.raises(LLMCallError) as caught:
        await chat.send("Loop forever")
    await chat.aclose()
    assert MAX_TOOL_ROUNDS == 10
    assert route.call_count == 1 + MAX_TOOL_ROUNDS
    follow_ups = [body(route, i) for i in range(1, route.call_count)]
    assert [b["previous_response_id"] for b in follow_ups] == [f"resp_{i}" for i in range(10)]
    assert [b["input"][0]["call_id"] for b in follow_ups] == [f"call_{i}" for i in range(10)]
    assert "10 rounds" in str(caught.value)
    assert "mock_function_outputs" in (caught.value.hint or "")


def test_parallel_function_calls_get_one_output_each() -> None:
    calls = [
        {"type": "function_call", "call_id": "call_a", "name": "lookup_order", "arguments": "{}"},
        {
            "type": "function_call",
            "call_id": "call_b",
            "name": "get_current_weather",
            "arguments": '{"location": "Paris"}',
        },
    ]
    outputs = function_call_outputs(calls, {"lookup_order": "shipped"})
    assert outputs == [
        {"type": "function_call_output", "call_id": "call_a", "output": "shipped"},
        {
            "type": "function_call_output",
            "call_id": "call_b",
            "output": json.dumps(
                {
                    "mock": True,
                    "function": "get_current_weather",
                    "arguments": {"location": "Paris"},
                    "result": "ok",
                }
            ),
        },
    ]


# --- normalizing hosted tools ----------------------------------------------------------------


def test_web_search_calls_and_citations_are_normalized() -> None:
    parsed = parse_turn(load_fixture("openai/responses_web_search.json")["output"])
    assert parsed.text.startswith("As of today, one notable positive news story")
    search, page = parsed.extras["web_search_results"]
    assert search == {
        "query": "positive news story today",
        "status": "completed",
        "sources": [
            {
                "url": "https://www.example-news.com/good-news/turtles",
                "title": "",
                "domain": "www.example-news.com",
            },
            {
                "url": "https://apnews.com/article/sea-turtles-nesting",
                "title": "",
                "domain": "apnews.com",
            },
        ],
        "citations": [],
    }
    # The answer's citations go on the last search of the turn.
    assert page["query"] == ""
    assert page["sources"] == [
        {
            "url": "https://apnews.com/article/sea-turtles-nesting",
            "title": "",
            "domain": "apnews.com",
        }
    ]
    assert page["citations"] == [
        {
            "url": "https://apnews.com/article/sea-turtles-nesting?utm_source=chatgpt.com",
            "title": "Sea turtles set a nesting record",
            "domain": "apnews.com",
        }
    ]
    first, second = parsed.tool_calls
    assert first.type == first.name == "web_search"
    assert first.id == "ws_67ccf18f64008190a39b619f4c8455ef087bb177ab789d5c"
    assert first.arguments == {"query": "positive news story today"}
    assert first.output == search
    assert second.arguments == {
        "type": "open_page",
        "url": "https://apnews.com/article/sea-turtles-nesting",
    }
    assert second.output == page


def test_citations_without_a_search_call_are_kept() -> None:
    message = load_fixture("openai/responses_web_search.json")["output"][2]
    parsed = parse_turn([message])
    (result,) = parsed.extras["web_search_results"]
    assert result["query"] == "" and result["sources"] == []
    assert [c["title"] for c in result["citations"]] == ["Sea turtles set a nesting record"]
    assert parsed.tool_calls == []


def test_web_search_without_action_and_with_queries() -> None:
    # The spec's own example has no action (an older shape); newer ones send `queries`.
    items = [
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {
            "type": "web_search_call",
            "id": "ws_2",
            "status": "failed",
            "action": {"type": "search", "queries": ["a", "b"]},
        },
    ]
    parsed = parse_turn(items)
    bare, multi = parsed.extras["web_search_results"]
    assert bare["query"] == "" and bare["sources"] == []
    assert multi["query"] == "a | b" and multi["status"] == "failed"


def test_file_search_results_are_normalized() -> None:
    parsed = parse_turn(load_fixture("openai/responses_file_search.json")["output"])
    expected = {
        "query": "attributes of an ancient brown dragon",
        "queries": ["attributes of an ancient brown dragon"],
        "files": [
            {
                "file_id": "file-4wDz5b167pAf72nx1h9eiN",
                "filename": "dragons.pdf",
                "score": 0.92,
                "text": "Ancient brown dragons are huge, burrowing dragons of the desert.",
            },
            {
                "file_id": "file-2Fh8QmKj1pX3sVb7aR9tLc",
                "filename": "monster_manual.pdf",
                "score": 0.61,
                "text": "Brown dragons lair beneath the sands.",
            },
        ],
        "scores": [0.92, 0.61],
    }
    assert parsed.extras == {"file_search_results": [expected]}
    assert parsed.tool_calls == [
        ToolCall(
            id="fs_67ccf4c63cd08190887ef6464ba5681609504fb6872380d7",
            type="file_search",
            name="file_search",
            arguments={"queries": ["attributes of an ancient brown dragon"]},
            output=expected,
        )
    ]
    assert parsed.text == "The attributes of an ancient brown dragon include..."


def test_code_interpreter_output_is_normalized() -> None:
    parsed = parse_turn(load_fixture("openai/responses_code_interpreter.json")["output"])
    expected = {
        "code": "import math\nprint(math.sqrt(1764))",
        "language": "python",
        "logs": ["42.0\n"],
        "files_created": ["https://files.example.com/cntr_68a1b2c3/plot.png"],
        "status": "completed",
    }
    assert parsed.extras == {"code_interpreter_results": [expected]}
    (call,) = parsed.tool_calls
    assert call.type == call.name == "code_interpreter"
    assert call.arguments == {"code": "import math\nprint(math.sqrt(1764))"}
    assert call.output == expected
    assert parsed.text == "The square root of 1764 is 42."


async def test_file_search_results_reach_the_turn_extras(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(
        200, json=load_fixture("openai/responses_file_search.json")
    )
    config = ModelConfig(
        provider="openai",
        api="responses",
        model="gpt-4o-mini",
        tools=["file_search"],
        tool_config={"file_search": {"vector_store_ids": ["vs_1234567890"]}},
    )
    chat = session(config=config)
    turn = await chat.send("Tell me about brown dragons")
    await chat.aclose()
    assert body(route)["include"] == ["file_search_call.results"]
    (result,) = turn.extras["file_search_results"]
    assert [f["filename"] for f in result["files"]] == ["dragons.pdf", "monster_manual.pdf"]
    assert turn.tool_calls[0].type == "file_search"
    assert turn.usage == Usage(input_tokens=18307, output_tokens=348)


def test_unknown_items_are_kept_and_reasoning_is_skipped() -> None:
    image_call = {
        "type": "image_generation_call",
        "id": "ig_123",
        "status": "completed",
        "result": "iVBORw0KGgo=",
    }
    items = [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        image_call,
        load_fixture("openai/responses_text.json")["output"][0],
    ]
    parsed = parse_turn(items)
    assert parsed.tool_calls == [
        ToolCall(
            id="ig_123",
            type="image_generation_call",
            name="image_generation_call",
            output=image_call,
        )
    ]
    assert parsed.text.startswith("In a peaceful grove")


def test_message_text_joins_parts_and_keeps_refusals() -> None:
    message = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "content": [
            {"type": "output_text", "text": "Part one, ", "annotations": []},
            {"type": "output_text", "text": "part two.", "annotations": []},
        ],
    }
    refusal = {
        "type": "message",
        "id": "msg_2",
        "role": "assistant",
        "content": [{"type": "refusal", "refusal": "I can't help with that."}],
    }
    assert parse_turn([message, refusal]).text == "Part one, part two.\n\nI can't help with that."
    odd = {**message, "content": [{"type": "output_audio", "data": "..."}]}
    with pytest.raises(LLMCallError, match="output_audio"):
        parse_turn([odd])


# --- pure request converters ----------------------------------------------------------------


def test_request_params_without_options() -> None:
    bare = ModelConfig(provider="openai", api="responses", model="m")
    assert request_params(bare, instructions="", input=[{"role": "user", "content": "x"}]) == {
        "model": "m",
        "input": [{"role": "user", "content": "x"}],
    }
    with pytest.raises(ValueError, match="not both"):
        request_params(
            bare, instructions="", input=[], previous_response_id="r", conversation_id="c"
        )
    with pytest.raises(ValueError, match="tool"):
        input_items([Message(role="tool", content="{}", turn=1)], "hi")


# --- errors -----------------------------------------------------------------------------------


async def test_api_error_is_an_llm_call_error_without_the_key(
    httpx2_mock: Any, api_key: str
) -> None:
    httpx2_mock.post(URL).mock(
        side_effect=[  # a 401 last: after it the run sends nothing more to this provider
            httpx.Response(
                500,
                json=load_fixture("openai/error_server.json"),
                headers={"x-request-id": "req_9"},
            ),
            httpx.Response(401, json=load_fixture("openai/error_invalid_api_key.json")),
        ]
    )
    chat = session()
    with pytest.raises(LLMCallError) as broken:
        await chat.send("Hi")
    with pytest.raises(LLMCallError) as refused:
        await chat.send("Hi")
    await chat.aclose()
    for caught in (refused, broken):
        text = f"{caught.value} {caught.value.hint}"
        assert "openai/responses gpt-4o-mini" in text
        assert "SECRET123" not in text
        assert caught.value.__cause__ is None
    assert "HTTP 401" in str(refused.value)
    assert "[REDACTED]" in str(refused.value)
    assert "HTTP 500" in str(broken.value) and "req_9" in str(broken.value)
    assert chat.metadata["response_ids"] == []


async def test_failed_response_status_is_an_error(httpx2_mock: Any, api_key: str) -> None:
    failed = reply("resp_failed", "")
    failed.update(status="failed", error={"code": "server_error", "message": "Something broke."})
    httpx2_mock.post(URL).respond(200, json=failed)
    chat = session()
    with pytest.raises(LLMCallError) as caught:
        await chat.send("Hi")
    await chat.aclose()
    assert str(caught.value) == (
        "prompt under test: openai/responses gpt-4o-mini: the response resp_failed failed "
        "(server_error): "
        "Something broke."
    )
    check_status(reply("resp_ok", "fine"), "label")  # a completed response passes


# --- stateless: the whole conversation every turn, nothing stored -------------------------


STATELESS = ModelConfig(
    provider="openai", api="responses", model="gpt-4o-mini", conversation_state="stateless"
)


async def test_stateless_resends_the_whole_conversation_with_store_false(
    httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[ok(reply("resp_1", "Hello!", 10, 2)), ok(reply("resp_2", "Refunded.", 20, 2))]
    )
    chat = session(config=STATELESS, system_prompt="Be kind.")
    await chat.send("Hi")
    await chat.send("Refund me")
    await chat.aclose()
    first, second = body(route, 0), body(route, 1)
    assert first["store"] is False and second["store"] is False
    assert "previous_response_id" not in first and "previous_response_id" not in second
    assert second["instructions"] == "Be kind."
    assert second["input"] == [
        {"type": "message", "role": "user", "content": "Hi"},
        {"type": "message", "role": "assistant", "content": "Hello!"},
        {"type": "message", "role": "user", "content": "Refund me"},
    ]


async def test_stateless_function_rounds_carry_the_calls_and_their_outputs(
    httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(function_call("resp_fc", input_tokens=10)),
            ok(reply("resp_answer", "It is 21°C.", 20, 3)),
            ok(reply("resp_next", "Bye.", 30, 1)),
        ]
    )
    config = WITH_FUNCTION.model_copy(update={"conversation_state": "stateless"})
    mock_output = {"temperature": 21}
    chat = session(config=config, function_outputs={"get_current_weather": mock_output})
    await chat.send("Weather?")
    await chat.send("Thanks")
    await chat.aclose()
    round_two = body(route, 1)["input"]
    assert round_two[0] == {"type": "message", "role": "user", "content": "Weather?"}
    assert round_two[1]["type"] == "function_call" and round_two[1]["call_id"] == CALL_ID
    assert round_two[2] == {
        "type": "function_call_output",
        "call_id": CALL_ID,
        "output": json.dumps(mock_output),
    }
    next_turn = body(route, 2)["input"]
    assert next_turn[:3] == round_two
    assert next_turn[3:] == [
        {"type": "message", "role": "assistant", "content": "It is 21°C."},
        {"type": "message", "role": "user", "content": "Thanks"},
    ]
    assert "previous_response_id" not in body(route, 1)
