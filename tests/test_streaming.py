"""Replies that stream (``SessionOptions.on_text``): Chat Completions and Responses over SSE, the
mock a word at a time; the turn they add up to is the one the unstreamed call returns."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from prompttracker.config.models import ModelConfig
from prompttracker.errors import LLMCallError
from prompttracker.llm import router
from prompttracker.llm.base import SessionOptions
from prompttracker.llm.call_layer import CallLayer
from tests.conftest import load_fixture
from tests.helpers import body, key_fixture, no_retry_settings
from tests.project_factory import write_project

CHAT_URL = "https://api.openai.com/v1/chat/completions"
RESPONSES_URL = "https://api.openai.com/v1/responses"
api_key = key_fixture("OPENAI_API_KEY", "sk-test-stream-SECRET")

CHAT = ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini")
RESPONSES = ModelConfig(provider="openai", api="responses", model="gpt-4o-mini")


def sse(*events: Any, done: bool = True) -> httpx.Response:
    text = "".join(f"data: {json.dumps(event)}\n\n" for event in events)
    text += "data: [DONE]\n\n" if done else ""
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=text)


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "chatcmpl-s1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
            "choices": [choice], **extra}  # fmt: skip


USAGE = {"id": "chatcmpl-s1", "object": "chat.completion.chunk", "choices": [],
         "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}  # fmt: skip


async def play(config: ModelConfig, *messages: str, **options: Any) -> tuple[list, list[str]]:
    pieces: list[str] = []
    async with CallLayer(no_retry_settings("openai")) as calls:
        options = SessionOptions(
            system_prompt="Be brief.", calls=calls, on_text=pieces.append, **options
        )
        session = router.open_session(config, calls.settings, options)
        turns = [await session.send(m) for m in messages]
        await session.aclose()
    return turns, pieces


async def test_chat_completions_stream_adds_up_to_the_whole_turn(
    httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(CHAT_URL).mock(
        return_value=sse(
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo."}),
            chunk({}, finish="stop"),
            USAGE,
        )
    )
    (turn,), pieces = await play(CHAT, "Hi")
    assert pieces == ["Hel", "lo."]
    assert turn.content == "Hello." and turn.response_id == "chatcmpl-s1"
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (12, 3)
    assert turn.cost_usd is not None and turn.cost_usd > 0  # metered like any call
    sent = body(route)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][-1] == {"role": "user", "content": "Hi"}


async def test_streamed_tool_call_deltas_are_answered_like_whole_ones(
    httpx2_mock: Any, api_key: str
) -> None:
    function = {"name": "lookup_order", "parameters": {"type": "object"}}
    config = ModelConfig.model_validate(
        {**CHAT.model_dump(by_alias=True), "tool_config": {"functions": [function]}}
    )
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "lookup_order", "arguments": '{"order'}}  # fmt: skip
    rest = {"index": 0, "function": {"arguments": '_id": "42"}'}}
    route = httpx2_mock.post(CHAT_URL).mock(
        side_effect=[
            sse(chunk({"tool_calls": [call]}), chunk({"tool_calls": [rest]}, finish="tool_calls")),
            sse(chunk({"content": "It ships Friday."}, finish="stop"), USAGE),
        ]
    )
    (turn,), pieces = await play(
        config, "Where is 42?", function_outputs={"lookup_order": {"eta": "Friday"}}
    )
    assert turn.content == "It ships Friday." and pieces == ["It ships Friday."]
    [tool_call] = turn.tool_calls
    assert tool_call.name == "lookup_order" and tool_call.arguments == {"order_id": "42"}
    second = body(route, 1)["messages"]
    assert second[-2]["tool_calls"][0]["function"]["arguments"] == '{"order_id": "42"}'
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == "call_1"
    assert json.loads(second[-1]["content"]) == {"eta": "Friday"}


def responses_events(number: int, text: str) -> httpx.Response:
    final = load_fixture("openai/responses_text.json")
    final["id"] = f"resp_{number}"
    final["output"][0]["content"][0]["text"] = text
    half = len(text) // 2
    return sse(
        {"type": "response.created", "response": {**final, "status": "in_progress"}},
        {"type": "response.output_text.delta", "delta": text[:half]},
        {"type": "response.output_text.delta", "delta": text[half:]},
        {"type": "response.completed", "response": final},
        done=False,
    )


async def test_responses_stream_ends_with_the_completed_response_and_chains(
    httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(RESPONSES_URL).mock(
        side_effect=[responses_events(1, "First answer."), responses_events(2, "Second.")]
    )
    turns, pieces = await play(RESPONSES, "one", "two")
    assert [t.content for t in turns] == ["First answer.", "Second."]
    assert "".join(pieces) == "First answer.Second." and len(pieces) == 4
    assert body(route, 0)["stream"] is True and "previous_response_id" not in body(route, 0)
    assert body(route, 1)["previous_response_id"] == "resp_1"


async def test_a_responses_stream_without_its_final_event_is_an_error(
    httpx2_mock: Any, api_key: str
) -> None:
    httpx2_mock.post(RESPONSES_URL).mock(
        return_value=sse({"type": "response.output_text.delta", "delta": "Hal"}, done=False)
    )
    with pytest.raises(LLMCallError, match="ended without a final response event"):
        await play(RESPONSES, "one")


async def test_the_mock_streams_a_word_at_a_time() -> None:
    (turn,), pieces = await play(ModelConfig(provider="mock", model="gpt-4o-mini"), "Hello there")
    assert len(pieces) > 3 and "".join(pieces) == turn.content


def test_pt_chat_in_a_terminal_draws_the_reply_as_it_streams(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prompttracker.cli import app
    from prompttracker.cli import chat as chat_cli

    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    screen = StringIO()
    terminal = Console(file=screen, force_terminal=True, width=80, color_system=None)
    monkeypatch.setattr(chat_cli, "console", terminal)
    drawn: list[str] = []
    original = chat_cli._Streamed.__call__

    def spy(self: Any, piece: str) -> None:
        drawn.append(piece)
        original(self, piece)

    monkeypatch.setattr(chat_cli._Streamed, "__call__", spy)
    args = ["chat", "billing_support", "--mock", "--row", "billing:angry double charge"]
    result = CliRunner().invoke(app, args, input="I was charged twice\n")
    assert result.exit_code == 0, result.output
    assert len(drawn) > 3 and "".join(drawn).startswith(drawn[0])
    shown = screen.getvalue()
    assert "Assistant · mock (chat_completions) gpt-4o-mini · turn 1" in shown
    assert 'You said: "I was charged twice"' in " ".join(shown.split())


ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
GEMINI_STREAM_URL = (
    "https://generativelanguage.googleapis.com/v1/models/gemini-2.5-flash:streamGenerateContent"
)


def anthropic_sse(mid: str, *texts: str) -> httpx.Response:
    message = {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 21, "output_tokens": 1},
    }
    block = {"type": "text", "text": ""}
    end = {"stop_reason": "end_turn", "stop_sequence": None}
    events = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": block},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
            for t in texts
        ),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": end, "usage": {"output_tokens": 7}},
        {"type": "message_stop"},
    ]
    text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=text)


async def test_anthropic_streams_and_keeps_the_conversation(httpx2_mock: Any, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-SECRET")
    route = httpx2_mock.post(ANTHROPIC_URL).mock(
        side_effect=[anthropic_sse("msg_1", "Hello", " there."), anthropic_sse("msg_2", "Done.")]
    )
    config = ModelConfig(provider="anthropic", api="messages", model="claude-haiku-4-5")
    pieces: list[str] = []
    async with CallLayer(no_retry_settings("anthropic")) as calls:
        options = SessionOptions(system_prompt="Be brief.", calls=calls, on_text=pieces.append)
        session = router.open_session(config, calls.settings, options)
        first = await session.send("Hi")
        second = await session.send("Refund it")
    assert pieces == ["Hello", " there.", "Done."]
    assert (first.content, first.response_id) == ("Hello there.", "msg_1")
    assert (first.usage.input_tokens, first.usage.output_tokens) == (21, 7)
    assert body(route, 0)["stream"] is True
    assert body(route, 1)["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there."},
        {"role": "user", "content": "Refund it"},
    ]
    assert second.content == "Done."


async def test_gemini_streams_and_adds_up_the_chunks(httpx2_mock: Any, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSyTEST-SECRET-0123456789abcdefgh")

    def piece(text: str, last: bool = False) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
        chunk: dict[str, Any] = {"responseId": "g-1", "candidates": [candidate]}
        if last:
            candidate["finishReason"] = "STOP"
            chunk["usageMetadata"] = {"promptTokenCount": 9, "candidatesTokenCount": 4,
                                      "totalTokenCount": 13}  # fmt: skip
        return chunk

    route = httpx2_mock.post(url__startswith=GEMINI_STREAM_URL).mock(
        return_value=sse(piece("Hel"), piece("lo!", last=True), done=False)
    )
    config = ModelConfig(provider="google", api="gemini", model="gemini-2.5-flash")
    (turn,), pieces = await play_with(config, "google", "Hi")
    assert pieces == ["Hel", "lo!"] and turn.content == "Hello!"
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (9, 4)
    assert route.calls[0].request.url.params["alt"] == "sse"
    assert body(route, 0)["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


async def play_with(config: ModelConfig, provider: str, *messages: str) -> tuple[list, list[str]]:
    pieces: list[str] = []
    async with CallLayer(no_retry_settings(provider)) as calls:
        options = SessionOptions(system_prompt="Be brief.", calls=calls, on_text=pieces.append)
        session = router.open_session(config, calls.settings, options)
        turns = [await session.send(m) for m in messages]
        await session.aclose()
    return turns, pieces
