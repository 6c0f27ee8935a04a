"""The Assistants session: threads, runs polled under our deadline, tool outputs, run steps."""

from __future__ import annotations

import asyncio
import copy
import json
import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any

import httpx
import pytest

from prompttracker.api_types import ApiType
from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError
from prompttracker.llm.base import JsonSchema, SessionOptions
from prompttracker.llm.openai_assistants import (
    FILE_SEARCH_CONTENT,
    AssistantsSession,
    reply_text,
    run_params,
    thread_messages,
)
from prompttracker.llm.router import session_class
from prompttracker.llm.tools import MAX_TOOL_ROUNDS
from prompttracker.messages import Message, ToolCall, Usage
from tests.conftest import load_fixture
from tests.helpers import body, key_fixture, no_retry_settings, ok

KEY = "sk-test-SECRET123"
API = "https://api.openai.com/v1"
THREAD = "thread_abc123"
THREADS_URL = f"{API}/threads"
MESSAGES_URL = f"{API}/threads/{THREAD}/messages"
RUNS_URL = f"{API}/threads/{THREAD}/runs"
SYSTEM = "You are a billing agent for Acme. Be brief."
CONFIG = ModelConfig(
    provider="openai",
    api="assistants",
    assistant_id="asst_abc123",
    model="gpt-4o-mini",
    temperature=0.3,
)


api_key = key_fixture("OPENAI_API_KEY", KEY)
fast_settings = partial(no_retry_settings, "openai")


def session(
    config: ModelConfig = CONFIG, deadline_seconds: float = 5.0, **options: Any
) -> AssistantsSession:
    options.setdefault("system_prompt", SYSTEM)
    return AssistantsSession(
        config,
        fast_settings(),
        SessionOptions(**options),
        poll_interval=0.001,
        deadline_seconds=deadline_seconds,
    )


def run(
    rid: str,
    status: str,
    *,
    tools: Sequence[str] = (),
    usage: tuple[int, int] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The spec's example run on our thread, with our id, status, tools and usage."""
    payload = load_fixture("openai/assistants_run.json")
    payload.update(id=rid, thread_id=THREAD, status=status, tools=[{"type": t} for t in tools])
    payload["usage"] = (
        {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
        if usage
        else None
    )
    payload.update(fields)
    return payload


def user_message(mid: str, text: str) -> dict[str, Any]:
    payload = load_fixture("openai/assistants_message.json")
    payload.update(id=mid, thread_id=THREAD)
    payload["content"][0]["text"]["value"] = text
    return payload


def replies(rid: str, *texts: str) -> dict[str, Any]:
    """A message list holding one assistant message per text, written by run ``rid``."""
    listing = load_fixture("openai/assistants_messages.json")
    template = listing["data"][0]
    listing["data"] = []
    for i, text in enumerate(texts):
        message = copy.deepcopy(template)
        message.update(id=f"msg_{rid}_{i}", run_id=rid, thread_id=THREAD)
        message["content"][0]["text"]["value"] = text
        listing["data"].append(message)
    listing["first_id"] = listing["data"][0]["id"]
    listing["last_id"] = listing["data"][-1]["id"]
    return listing


def query(route: Any, index: int = 0) -> dict[str, list[str]]:
    params = route.calls[index].request.url.params
    return {name: params.get_list(name) for name in params}


def one_turn_routes(
    mock: Any, final: dict[str, Any] | httpx.Response, *reply: str
) -> dict[str, Any]:
    """Thread, message, a run created ``queued`` that polls to ``final``, and the replies."""
    polled = final if isinstance(final, httpx.Response) else ok(final)
    return {
        "thread": mock.post(THREADS_URL).respond(
            200, json=load_fixture("openai/assistants_thread.json")
        ),
        "message": mock.post(MESSAGES_URL).respond(200, json=user_message("msg_u1", "hi")),
        "create": mock.post(RUNS_URL).respond(200, json=run("run_1", "queued")),
        "poll": mock.get(f"{RUNS_URL}/run_1").mock(return_value=polled),
        **(
            {"list": mock.get(MESSAGES_URL).respond(200, json=replies("run_1", *reply))}
            if reply
            else {}
        ),
    }


async def test_three_turns_on_one_thread(httpx2_mock: Any, api_key: str) -> None:
    thread = httpx2_mock.post(THREADS_URL).respond(
        200, json=load_fixture("openai/assistants_thread.json")
    )
    added = httpx2_mock.post(MESSAGES_URL).mock(
        side_effect=[
            ok(user_message("msg_u1", "I was charged twice.")),
            ok(user_message("msg_u2", "Order 12345.")),
            ok(user_message("msg_u3", "Thanks!")),
        ]
    )
    created = httpx2_mock.post(RUNS_URL).mock(
        side_effect=[ok(run(f"run_{i}", "queued")) for i in (1, 2, 3)]
    )
    poll_1 = httpx2_mock.get(f"{RUNS_URL}/run_1").mock(
        side_effect=[
            ok(run("run_1", "queued")),
            ok(run("run_1", "in_progress")),
            ok(run("run_1", "completed", usage=(30, 8))),
        ]
    )
    poll_2 = httpx2_mock.get(f"{RUNS_URL}/run_2").respond(
        200, json=run("run_2", "completed", usage=(50, 9))
    )
    poll_3 = httpx2_mock.get(f"{RUNS_URL}/run_3").mock(
        side_effect=[ok(run("run_3", "in_progress")), ok(run("run_3", "completed", usage=(70, 4)))]
    )
    listed = httpx2_mock.get(MESSAGES_URL).mock(
        side_effect=[
            ok(replies("run_1", "Sorry about that. Which order?")),
            ok(replies("run_2", "I found it.", "A refund is on its way.")),
            ok(replies("run_3", "You're welcome.")),
        ]
    )
    chat = session()
    assert chat.metadata == {"thread_id": None, "assistant_id": "asst_abc123", "run_ids": []}

    first = await chat.send("I was charged twice.")
    second = await chat.send("Order 12345.")
    third = await chat.send("Thanks!")

    assert thread.call_count == 1
    assert body(thread) == {}
    assert [body(added, i) for i in range(3)] == [
        {"role": "user", "content": "I was charged twice."},
        {"role": "user", "content": "Order 12345."},
        {"role": "user", "content": "Thanks!"},
    ]
    expected_run = {
        "assistant_id": "asst_abc123",
        "model": "gpt-4o-mini",
        "instructions": SYSTEM,
        "temperature": 0.3,
    }
    assert [body(created, i) for i in range(3)] == [expected_run] * 3
    assert (poll_1.call_count, poll_2.call_count, poll_3.call_count) == (3, 1, 2)
    assert [query(listed, i) for i in range(3)] == [
        {"run_id": [f"run_{i}"], "order": ["asc"], "after": [f"msg_u{i}"]} for i in (1, 2, 3)
    ]
    assert [first.content, second.content, third.content] == [
        "Sorry about that. Which order?",
        "I found it.\n\nA refund is on its way.",
        "You're welcome.",
    ]
    assert [t.response_id for t in (first, second, third)] == ["run_1", "run_2", "run_3"]
    assert first.usage == Usage(input_tokens=30, output_tokens=8)
    assert third.usage == Usage(input_tokens=70, output_tokens=4)
    assert first.tool_calls == () and first.extras == {}
    assert first.latency_ms > 0
    assert chat.metadata == {
        "thread_id": THREAD,
        "assistant_id": "asst_abc123",
        "run_ids": ["run_1", "run_2", "run_3"],
    }
    assert chat.conversation_mode == "assistants_thread"
    assert all(c.request.headers["OpenAI-Beta"] == "assistants=v2" for c in httpx2_mock.calls)
    await chat.aclose()


async def test_history_opens_the_thread_and_blank_prompt_sends_no_instructions(
    httpx2_mock: Any, api_key: str
) -> None:
    routes = one_turn_routes(httpx2_mock, run("run_1", "completed"), "Sure.")
    config = ModelConfig(provider="openai", api="assistants", assistant_id="asst_abc123")
    history = [
        Message(role="user", content="Hello", turn=1),
        Message(role="assistant", content="Hi! How can I help?", turn=1),
    ]
    chat = session(config, system_prompt="  \n", history=history)

    await chat.send("Refund me")

    assert body(routes["thread"]) == {
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi! How can I help?"},
        ]
    }
    # No model override and no instructions: the assistant's own apply.
    assert body(routes["create"]) == {"assistant_id": "asst_abc123"}


async def test_response_format_and_limits_go_on_the_run(httpx2_mock: Any, api_key: str) -> None:
    routes = one_turn_routes(httpx2_mock, run("run_1", "completed"), '{"score": 90}')
    config = CONFIG.model_copy(update={"top_p": 0.9, "max_tokens": 512})
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}

    turn = await session(
        config, response_format=JsonSchema(name="judge verdict", schema=schema)
    ).send("Judge this")

    assert turn.content == '{"score": 90}'
    assert body(routes["create"]) == {
        "assistant_id": "asst_abc123",
        "model": "gpt-4o-mini",
        "instructions": SYSTEM,
        "temperature": 0.3,
        "top_p": 0.9,
        "max_completion_tokens": 512,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "judge_verdict", "schema": schema, "strict": True},
        },
    }


async def test_a_run_past_the_deadline_is_cancelled(httpx2_mock: Any, api_key: str) -> None:
    routes = one_turn_routes(httpx2_mock, run("run_1", "in_progress"))
    cancel = httpx2_mock.post(f"{RUNS_URL}/run_1/cancel").respond(
        200, json=run("run_1", "cancelling")
    )
    with pytest.raises(LLMCallError) as caught:
        # wait_for: a missing deadline fails this test instead of hanging it (no timing asserts:
        # how many polls fit in the deadline depends on the machine's load).
        await asyncio.wait_for(session(deadline_seconds=0.05).send("hello?"), timeout=30)

    assert "did not finish within 0.05 s" in caught.value.message
    assert "last status: in_progress" in caught.value.message
    assert "timeout_seconds" in (caught.value.hint or "")
    assert cancel.call_count == 1
    assert routes["poll"].call_count >= 1


async def test_a_failed_cancel_still_reports_the_deadline(httpx2_mock: Any, api_key: str) -> None:
    one_turn_routes(httpx2_mock, run("run_1", "queued"))
    httpx2_mock.post(f"{RUNS_URL}/run_1/cancel").respond(
        400, json={"error": {"message": "Cannot cancel run with status 'completed'."}}
    )

    with pytest.raises(LLMCallError, match=r"did not finish within 0\.02 s"):
        await asyncio.wait_for(session(deadline_seconds=0.02).send("hello?"), timeout=30)


def test_deadline_defaults_to_the_provider_timeout(api_key: str) -> None:
    chat = AssistantsSession(
        CONFIG, Settings(providers={"openai": {"timeout_seconds": 30}}), SessionOptions()
    )
    assert chat.deadline_seconds == 30
    assert chat.poll_interval == 0.5


async def test_a_failed_run_names_its_last_error(httpx2_mock: Any, api_key: str) -> None:
    failed = run(
        "run_1",
        "failed",
        last_error={"code": "rate_limit_exceeded", "message": "You exceeded your current quota."},
    )
    one_turn_routes(httpx2_mock, failed)

    with pytest.raises(LLMCallError) as caught:
        await session().send("hello")

    assert caught.value.message == (
        "prompt under test: openai/assistants gpt-4o-mini: the run run_1 ended failed "
        "(rate_limit_exceeded: You exceeded your current quota.)"
    )
    assert caught.value.hint


@pytest.mark.parametrize(
    ("status", "fields", "expected"),
    [
        ("expired", {}, "ended expired"),
        ("cancelled", {}, "ended cancelled"),
        (
            "incomplete",
            {"incomplete_details": {"reason": "max_completion_tokens"}},
            "ended incomplete (reason: max_completion_tokens)",
        ),
    ],
)
async def test_runs_that_end_unfinished_are_errors(
    httpx2_mock: Any, api_key: str, status: str, fields: dict[str, Any], expected: str
) -> None:
    one_turn_routes(httpx2_mock, run("run_1", status, **fields))

    with pytest.raises(LLMCallError) as caught:
        await session().send("hello")

    assert expected in caught.value.message
    assert "run_1" in caught.value.message
    assert caught.value.hint


def requires_action(rid: str, *calls: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    """The spec's requires_action run, on our thread, asking for ``calls`` (id, name, args)."""
    payload = load_fixture("openai/assistants_run_requires_action.json")
    payload.update(id=rid, thread_id=THREAD)
    payload["required_action"]["submit_tool_outputs"]["tool_calls"] = [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        for cid, name, args in calls
    ]
    return payload


async def test_function_calls_are_answered_with_mock_outputs(
    httpx2_mock: Any, api_key: str
) -> None:
    httpx2_mock.post(THREADS_URL).respond(200, json=load_fixture("openai/assistants_thread.json"))
    httpx2_mock.post(MESSAGES_URL).respond(200, json=user_message("msg_u1", "refund?"))
    asking = requires_action(
        "run_1",
        ("call_1", "lookup_order", {"order_id": "12345"}),
        ("call_2", "get_current_weather", {"location": "Paris"}),
    )
    httpx2_mock.post(RUNS_URL).respond(200, json=asking)
    submit = httpx2_mock.post(f"{RUNS_URL}/run_1/submit_tool_outputs").respond(
        200, json=run("run_1", "queued")
    )
    httpx2_mock.get(f"{RUNS_URL}/run_1").respond(200, json=run("run_1", "completed"))
    httpx2_mock.get(MESSAGES_URL).respond(200, json=replies("run_1", "It was charged twice."))
    outputs = {"lookup_order": {"status": "charged_twice"}}

    turn = await session(function_outputs=outputs).send("refund?")

    default = {
        "mock": True,
        "function": "get_current_weather",
        "arguments": {"location": "Paris"},
        "result": "ok",
    }
    assert body(submit) == {
        "tool_outputs": [
            {"tool_call_id": "call_1", "output": json.dumps({"status": "charged_twice"})},
            {"tool_call_id": "call_2", "output": json.dumps(default)},
        ]
    }
    assert turn.tool_calls == (
        ToolCall(
            id="call_1",
            name="lookup_order",
            arguments={"order_id": "12345"},
            output=json.dumps({"status": "charged_twice"}),
        ),
        ToolCall(
            id="call_2",
            name="get_current_weather",
            arguments={"location": "Paris"},
            output=json.dumps(default),
        ),
    )
    assert turn.content == "It was charged twice."


async def test_function_rounds_are_capped(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.post(THREADS_URL).respond(200, json=load_fixture("openai/assistants_thread.json"))
    httpx2_mock.post(MESSAGES_URL).respond(200, json=user_message("msg_u1", "loop"))
    asking = requires_action("run_1", ("call_1", "lookup_order", {}))
    httpx2_mock.post(RUNS_URL).respond(200, json=asking)
    submit = httpx2_mock.post(f"{RUNS_URL}/run_1/submit_tool_outputs").respond(200, json=asking)
    cancel = httpx2_mock.post(f"{RUNS_URL}/run_1/cancel").respond(
        200, json=run("run_1", "cancelling")
    )

    with pytest.raises(LLMCallError, match=f"after {MAX_TOOL_ROUNDS} rounds"):
        await session().send("loop")

    assert submit.call_count == MAX_TOOL_ROUNDS
    assert cancel.call_count == 1


async def test_run_steps_bring_file_search_and_code_interpreter_results(
    httpx2_mock: Any, api_key: str
) -> None:
    done = run("run_abc123", "completed", tools=["file_search", "code_interpreter"], usage=(9, 3))
    httpx2_mock.post(THREADS_URL).respond(200, json=load_fixture("openai/assistants_thread.json"))
    httpx2_mock.post(MESSAGES_URL).respond(200, json=user_message("msg_u1", "policy?"))
    httpx2_mock.post(RUNS_URL).respond(200, json=done)
    httpx2_mock.get(MESSAGES_URL).respond(200, json=load_fixture("openai/assistants_messages.json"))
    steps = httpx2_mock.get(f"{RUNS_URL}/run_abc123/steps").respond(
        200, json=load_fixture("openai/assistants_run_steps.json")
    )

    turn = await session().send("policy?")

    assert query(steps) == {"include[]": [FILE_SEARCH_CONTENT], "order": ["asc"]}
    file_search = {
        "query": "",
        "queries": [],
        "files": [
            {
                "file_id": "file-abc123",
                "filename": "refund_policy.pdf",
                "score": 0.87,
                "text": "Double charges are refunded within 5 business days.",
            },
            {
                "file_id": "file-def456",
                "filename": "billing_faq.md",
                "score": 0.42,
                "text": "Refunds go back to the original payment method.",
            },
        ],
        "scores": [0.87, 0.42],
    }
    code = {
        "code": "print(49.99 * 2)",
        "language": "python",
        "logs": ["99.98\n"],
        "files_created": ["file-img789"],
        "status": "completed",
    }
    assert turn.extras == {"file_search_results": [file_search], "code_interpreter_results": [code]}
    assert turn.tool_calls == (
        ToolCall(id="call_fs_abc123", type="file_search", name="file_search", output=file_search),
        ToolCall(
            id="call_ci_abc123",
            type="code_interpreter",
            name="code_interpreter",
            arguments={"code": "print(49.99 * 2)"},
            output=code,
        ),
    )
    assert turn.content == "Hi! How can I help you today?"
    assert turn.usage == Usage(input_tokens=9, output_tokens=3)


@pytest.mark.parametrize("where", ["thread", "poll"])
async def test_not_found_names_the_sunset_and_the_way_to_responses(
    httpx2_mock: Any, api_key: str, where: str
) -> None:
    gone = httpx.Response(404, json=load_fixture("openai/assistants_error_not_found.json"))
    if where == "thread":
        httpx2_mock.post(THREADS_URL).mock(return_value=gone)
    else:
        one_turn_routes(httpx2_mock, gone)

    with pytest.raises(LLMCallError) as caught:
        await session().send("hello")

    error = caught.value
    assert "HTTP 404" in error.message
    assert "No assistant found with id 'asst_abc123'" in error.message
    assert "2026-08-26" in error.message and "Assistants API" in error.message
    hint = error.hint or ""
    assert "api: responses" in hint
    assert "pt sync openai --from-file assistants.json --as responses" in hint
    assert "model: gpt-4o-mini" in hint
    assert "tool_config.file_search.vector_store_ids" in hint
    assert "base_url" in hint
    assert KEY not in error.message + hint


async def test_errors_never_carry_the_key(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.post(THREADS_URL).respond(
        401, json=load_fixture("openai/error_invalid_api_key.json")
    )

    with pytest.raises(LLMCallError) as caught:
        await session().send("hello")

    assert "HTTP 401" in caught.value.message
    assert KEY not in caught.value.message + (caught.value.hint or "")
    assert caught.value.__cause__ is None


async def test_no_deprecation_warning_escapes(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.post(THREADS_URL).respond(200, json=load_fixture("openai/assistants_thread.json"))
    httpx2_mock.post(MESSAGES_URL).respond(200, json=user_message("msg_u1", "refund?"))
    httpx2_mock.post(RUNS_URL).respond(
        200, json=requires_action("run_1", ("call_1", "lookup_order", {}))
    )
    httpx2_mock.post(f"{RUNS_URL}/run_1/submit_tool_outputs").respond(
        200, json=run("run_1", "queued")
    )
    httpx2_mock.get(f"{RUNS_URL}/run_1").respond(
        200, json=run("run_1", "completed", tools=["file_search"])
    )
    httpx2_mock.get(MESSAGES_URL).respond(200, json=replies("run_1", "Done."))
    httpx2_mock.get(f"{RUNS_URL}/run_1/steps").respond(
        200, json=load_fixture("openai/assistants_run_steps.json")
    )
    chat = session()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Control: the SDK does warn when its beta methods are called directly.
        chat._client.beta.threads.runs.retrieve("run_x", thread_id=THREAD).close()
        control = len(caught)
        await chat.send("refund?")
        await chat.aclose()

    assert control == 1 and issubclass(caught[0].category, DeprecationWarning)
    leaked = [w for w in caught[control:] if issubclass(w.category, DeprecationWarning)]
    assert leaked == []
    # The silence is local: the process-wide filters are as they were.
    with warnings.catch_warnings(record=True) as after:
        warnings.simplefilter("always")
        chat._client.beta.threads.runs.retrieve("run_x", thread_id=THREAD).close()
    assert [w.category for w in after] == [DeprecationWarning]


def test_converters_without_http() -> None:
    assert thread_messages([]) == []
    with pytest.raises(ValueError, match="user/assistant"):
        thread_messages([Message(role="tool", content="{}", turn=1)])
    assert run_params(CONFIG, "", None) == {
        "assistant_id": "asst_abc123",
        "model": "gpt-4o-mini",
        "temperature": 0.3,
    }


def test_the_route_table_points_here() -> None:
    assert session_class(ApiType.OPENAI_ASSISTANTS) is AssistantsSession


def test_reply_text_keeps_refusals_and_names_images() -> None:
    from openai.types.beta.threads import Message as ThreadMessage

    listing = replies("run_1", "Here is the chart.")
    message = listing["data"][0]
    message["content"] += [
        {"type": "image_file", "image_file": {"file_id": "file-img789", "detail": "auto"}},
        {"type": "refusal", "refusal": "I can't share card numbers."},
    ]
    user = user_message("msg_u1", "ignored: not the assistant's")
    parsed = [ThreadMessage.model_validate(m) for m in (user, message)]

    assert reply_text(parsed) == (
        "Here is the chart.\n\n[image file file-img789]\n\nI can't share card numbers."
    )
