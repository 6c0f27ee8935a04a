"""The run-scoped call layer: one client and one pool per endpoint, every call counted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from prompttracker.config.loader import load_project
from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.engine import RunReport, execute, plan
from prompttracker.llm import clients
from prompttracker.llm.base import SessionOptions
from prompttracker.llm.call_layer import CallLayer
from prompttracker.llm.openai_chat_completions import ChatCompletionsSession
from prompttracker.store.store import Store
from tests.conftest import load_fixture
from tests.loopback import LoopbackServer, Request, chat_completion, send_json
from tests.project_factory import chat_prompt, write_project

CHAT = ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini")

JUDGED_PROMPT = chat_prompt(
    "refunds politely", '{ type: llm_judge, config: { custom_instructions: "Is it polite?" } }'
)
ROWS = "mode: conversational\nrows:\n" + "".join(
    f"""  - name: row {i}
    variables: {{ company: Acme, opening_message: "Hello {i}" }}
    interlocutor_simulation_prompt: You were charged twice.
    max_turns: 3
"""
    for i in range(1, 4)
)


async def answer_everything(request: Request, writer: asyncio.StreamWriter) -> None:
    """The assistant and the simulated user chat (the simulated user asks something new each
    turn, through its structured answer); a judge (asked for other JSON) gives 90."""
    body = request.json()
    schema = body.get("response_format", {}).get("json_schema", {}).get("name")
    if schema == "simulated_user_turn":
        asked = f"And what about charge number {len(body['messages'])}?"
        content = json.dumps({"message": asked, "stop": False, "reason": ""})
    elif schema:
        content = '{"feedback": "Polite.", "score": 90}'
    else:
        content = "Sure, I can refund that."
    await send_json(writer, chat_completion(content))


async def judged_run(root: Path, server: LoopbackServer, *, concurrency: int) -> RunReport:
    """Three 3-turn conversations, each judged once, against ``server``, with no SDK retries
    (only what the call layer does can save a call)."""
    settings = f"providers:\n  openai:\n    base_url: {server.url}\n    max_retries: 0\n"
    datasets = {"billing": ROWS}
    project = load_project(write_project(root, {"billing": JUDGED_PROMPT}, datasets, settings))
    with Store(root / "r.db") as store:
        return await execute(
            project, plan(project), store, mock=False, concurrency=concurrency, options={}
        )


async def test_a_run_opens_one_client_and_one_pool_per_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    built: list[Any] = []
    original = clients.openai_client

    def counting_factory(settings: Settings, http_client: Any = None, **options: Any) -> Any:
        built.append(http_client)
        return original(settings, http_client, **options)

    monkeypatch.setattr(clients, "openai_client", counting_factory)
    with LoopbackServer(answer_everything) as server:
        report = await judged_run(tmp_path, server, concurrency=2)

    assert [o.status for o in report.outcomes] == ["passed"] * 3
    # 3 rows × (3 assistant turns + 2 simulated-user turns + 1 judge call), all on one client:
    assert len(server.requests) == 18
    assert len(built) == 1
    # ... whose pool kept its connections: at most one per test run in flight.
    assert server.connections <= 2
    assert report.calls["openai"].requests == {"assistant": 9, "simulated_user": 6, "judge": 3}


async def test_clients_are_shared_per_provider_and_closed_with_the_layer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    async with CallLayer(Settings(), concurrency=4) as calls:
        openai = calls.openai()
        assert calls.openai() is openai
        anthropic = calls.anthropic()
        assert calls.clients_built == 2
        assert openai._client is not anthropic._client  # one pool per endpoint
    assert openai._client.is_closed and anthropic._client.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        calls.gemini()


async def test_a_session_leaves_the_runs_layer_open_and_closes_its_own(
    httpx2_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    httpx2_mock.post("https://api.openai.com/v1/chat/completions").respond(
        200, json=load_fixture("openai/chat_completion.json")
    )
    async with CallLayer(Settings()) as calls:
        shared = ChatCompletionsSession(CHAT, Settings(), SessionOptions(calls=calls))
        await shared.send("Hi")
        await shared.aclose()
        assert not calls.openai()._client.is_closed

    alone = ChatCompletionsSession(CHAT, Settings(), SessionOptions())
    await alone.send("Hi")
    await alone.aclose()
    assert alone.calls.openai  # its private layer ...
    assert alone.calls._closed  # ... is closed with it


async def test_a_missing_key_is_reported_before_any_client_is_built() -> None:
    from prompttracker.errors import RunStartError

    calls = CallLayer(Settings())
    with pytest.raises(RunStartError, match="OPENAI_API_KEY"):
        calls.openai()
    assert calls.clients_built == 0


@pytest.mark.parametrize(
    ("path", "resource", "params"),
    [
        (
            "/chat/completions",
            "chat.completions",
            {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "lookup", "arguments": '{"id": "1"}'},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_1", "content": '{"ok": true}'},
                ],
                "temperature": 0.2,
                "max_completion_tokens": 50,
                "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "v", "schema": {"type": "object"}, "strict": True},
                },
            },
        ),
        (
            "/responses",
            "responses",
            {
                "model": "gpt-4.1-mini",
                "instructions": "Be brief.",
                "input": [{"role": "user", "content": "Hi"}],
                "previous_response_id": "resp_1",
                "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}],
                "include": ["file_search_call.results"],
                "max_output_tokens": 50,
            },
        ),
    ],
)
async def test_the_lean_post_sends_what_the_sdk_method_sends(
    httpx2_mock: Any, monkeypatch: pytest.MonkeyPatch, path: str, resource: str, params: dict
) -> None:
    """``openai_post`` skips the SDK's conversions, nothing of the request or the answer."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    fixture = (
        "openai/chat_completion.json"
        if resource == "chat.completions"
        else "openai/responses_text.json"
    )
    route = httpx2_mock.post(f"https://api.openai.com/v1{path}").respond(
        200, json=load_fixture(fixture)
    )
    async with CallLayer(Settings()) as calls:
        client = calls.openai()
        method = (
            client.chat.completions.create
            if resource == "chat.completions"
            else client.responses.create
        )
        by_sdk = await method(**params)
        by_post = await clients.openai_post(client, path, params)
    sent_by_sdk, sent_by_post = (call.request for call in route.calls)
    assert json.loads(sent_by_post.content) == json.loads(sent_by_sdk.content)  # order aside
    ignored = {"x-stainless-retry-count", "x-stainless-read-timeout"}
    assert {k: v for k, v in sent_by_post.headers.items() if k not in ignored} == {
        k: v for k, v in sent_by_sdk.headers.items() if k not in ignored
    }
    assert by_post == load_fixture(fixture)
    assert by_sdk.to_dict(mode="json", warnings=False) == by_post


async def test_a_server_that_answers_without_json_is_a_clear_error(
    httpx2_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prompttracker.errors import LLMCallError

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    httpx2_mock.post("https://api.openai.com/v1/chat/completions").respond(
        200, text="<html>Welcome to nginx!</html>", headers={"content-type": "text/html"}
    )
    chat = ChatCompletionsSession(CHAT, Settings(), SessionOptions())
    with pytest.raises(LLMCallError) as failed:
        await chat.send("Hi")
    await chat.aclose()
    assert "not a JSON object" in str(failed.value) and "nginx" in str(failed.value)
    assert "base_url" in (failed.value.hint or "")


async def test_every_fourth_call_rate_limited_costs_no_test_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: 429 with Retry-After 0.1 on every fourth request, judges included."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    answered = 0

    async def limited(request: Request, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        answered += 1
        if answered % 4 == 0:
            error = {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}
            await send_json(writer, error, status=429, headers={"retry-after": "0.1"})
        else:
            await answer_everything(request, writer)

    with LoopbackServer(limited) as server:
        report = await judged_run(tmp_path, server, concurrency=3)

    assert [o.status for o in report.outcomes] == ["passed"] * 3
    stats = report.calls["openai"]
    assert stats.rate_limited == len(server.requests) // 4 > 0
    assert sum(stats.requests.values()) == 18  # every logical call counted once
    assert stats.lowest_limit < 3  # fewer calls at once while the limits lasted
