"""The simulated user's structured stop: it answers ``{message, stop, reason}`` where the route
supports structured output, the end marker is read from prose elsewhere, and why it stopped is
kept with the conversation."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.conversation import simulate
from prompttracker.interlocutor import END_MARKER, STOP_SCHEMA, LLMInterlocutor, read_reply
from prompttracker.llm import router
from prompttracker.llm.base import SessionOptions
from prompttracker.llm.call_layer import CallLayer
from prompttracker.messages import Message
from tests.conftest import load_fixture
from tests.helpers import body, key_fixture

URL = "https://api.openai.com/v1/chat/completions"
api_key = key_fixture("OPENAI_API_KEY", "sk-test-stop-SECRET")
USER_MODEL = ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"message": "Where is my refund?", "stop": false, "reason": ""}',
         ("Where is my refund?", False, None)),
        ('{"message": "Thanks, bye!", "stop": true, "reason": "refund confirmed"}',
         ("Thanks, bye!", True, "refund confirmed")),
        ('{"message": "", "stop": true, "reason": ""}', ("", True, "no reason given")),
        (f'{{"message": "Great. {END_MARKER}", "stop": false, "reason": ""}}',
         ("Great.", True, "the end marker")),
        (f"Thanks, that solves it. {END_MARKER}",
         ("Thanks, that solves it.", True, "the end marker, in a prose answer")),
        ("Can you check again?", ("Can you check again?", False, None)),
        ('{"stop": true}', ('{"stop": true}', False, None)),  # no message: read as prose
    ],
)  # fmt: skip
def test_read_reply_takes_the_fields_and_falls_back_to_the_marker(
    answer: str, expected: tuple[str, bool, str | None]
) -> None:
    assert read_reply(answer) == expected


def completion(content: str, number: int) -> httpx.Response:
    answer = load_fixture("openai/chat_completion.json")
    answer["id"] = f"chatcmpl-{number}"
    answer["choices"][0]["message"]["content"] = content
    return httpx.Response(200, json=answer)


async def test_the_simulated_user_asks_for_the_stop_schema_and_its_reason_is_kept(
    httpx2_mock: Any, api_key: str
) -> None:
    def answer(request: Any) -> httpx.Response:
        sent = json.loads(request.content)
        if "response_format" in sent:  # the simulated user
            verdict = {"message": "Perfect, thanks!", "stop": True, "reason": "refund promised"}
            return completion(json.dumps(verdict), 2)
        return completion("Your refund is on its way.", 1)

    route = httpx2_mock.post(URL).mock(side_effect=answer)
    settings = Settings(providers={"openai": {"max_retries": 0}})
    async with CallLayer(settings) as calls:
        session = router.open_session(USER_MODEL, settings, SessionOptions(calls=calls))
        user = LLMInterlocutor("You were charged twice.", USER_MODEL, settings, calls)
        result = await simulate(session, user, "I was charged twice.", max_turns=5)
    asked = body(route, 1)
    assert asked["response_format"]["type"] == "json_schema"
    assert asked["response_format"]["json_schema"]["schema"] == STOP_SCHEMA.schema
    assert "You were charged twice." in asked["messages"][0]["content"]
    assert result.stop_reason == "interlocutor_ended" and result.turn_count == 1
    assert result.metadata["stop"] == {"by": "simulated user", "reason": "refund promised"}
    # The closing line is the user's last word; the assistant never sees it.
    assert [m.content for m in result.messages] == [
        "I was charged twice.",
        "Your refund is on its way.",
        "Perfect, thanks!",
    ]
    assert route.call_count == 2


async def test_the_mock_simulated_user_stops_through_the_schema_too() -> None:
    mock = ModelConfig(provider="mock", model="gpt-4o-mini")
    settings = Settings()
    async with CallLayer(settings) as calls:
        session = router.open_session(mock, settings, SessionOptions(calls=calls))
        user = LLMInterlocutor("You want a refund.", mock, settings, calls)
        result = await simulate(session, user, "Hello", max_turns=10)
    assert result.stop_reason == "interlocutor_ended"
    assert result.metadata["stop"]["reason"] == "the customer's goal was reached (mock)"
    assert all(END_MARKER not in m.content and "{" not in m.content for m in result.messages)


def test_the_transcript_says_why_the_simulated_user_stopped() -> None:
    from prompttracker.messages import ConversationResult
    from prompttracker.report.transcript import _stop_line

    stopped = ConversationResult(
        messages=(),
        turn_count=2,
        completed=True,
        stop_reason="interlocutor_ended",
        metadata={"stop": {"by": "simulated user", "reason": "refund promised"}},
    )
    assert _stop_line(stopped).plain == (
        "stop reason: interlocutor_ended (simulated user: refund promised) · 2 turns"
    )


# --- the stop protocol on every route that offers structured output --------------------------

STOP = {"message": "Perfect, thanks!", "stop": True, "reason": "refund promised"}


def _responses(text: str) -> dict:
    from tests.test_responses import reply

    return reply("resp_1", text)


def _anthropic(text: str) -> dict:
    from tests.test_anthropic import reply

    return reply("msg_1", text, 20, 5)


def _gemini(text: str) -> dict:
    from tests.test_gemini import reply

    return reply("resp-1", text, 20, 5)


def _responses_schema(sent: dict) -> Any:
    assert sent["text"]["format"]["type"] == "json_schema"
    return sent["text"]["format"]["schema"]


ROUTES = {
    "openai/responses": (
        ModelConfig(provider="openai", api="responses", model="gpt-4o-mini"),
        ("OPENAI_API_KEY", "sk-test-stop-SECRET"),
        "https://api.openai.com/v1/responses",
        _responses,
        _responses_schema,
    ),
    "anthropic/messages": (
        ModelConfig(provider="anthropic", api="messages", model="claude-haiku-4-5"),
        ("ANTHROPIC_API_KEY", "sk-ant-test-stop-SECRET"),
        "https://api.anthropic.com/v1/messages",
        _anthropic,
        lambda sent: sent["output_config"]["format"]["schema"],
    ),
    "google/gemini": (
        ModelConfig(provider="google", api="gemini", model="gemini-2.5-flash"),
        ("GEMINI_API_KEY", "AIzaSyTEST-stop-0123456789abcdefgh"),
        "https://generativelanguage.googleapis.com/v1/models/gemini-2.5-flash:generateContent",
        _gemini,
        lambda sent: sent["generationConfig"]["responseJsonSchema"],
    ),
}


@pytest.mark.parametrize("route_name", list(ROUTES))
async def test_the_simulated_user_stops_through_the_schema_on_every_route(
    httpx2_mock: Any, monkeypatch: pytest.MonkeyPatch, route_name: str
) -> None:
    config, (variable, key), url, answer, schema_of = ROUTES[route_name]
    monkeypatch.setenv(variable, key)
    route = httpx2_mock.post(url__startswith=url.split(":generateContent")[0]).mock(
        return_value=httpx.Response(200, json=answer(json.dumps(STOP)))
    )
    settings = Settings(providers={config.provider: {"max_retries": 0}})
    user = LLMInterlocutor("You were charged twice.", config, settings)
    history = [
        Message(role="user", content="I was charged twice.", turn=1),
        Message(role="assistant", content="I have refunded it.", turn=1),
    ]
    assert await user.reply(history) == ("Perfect, thanks!", True, "refund promised", False)
    assert schema_of(body(route)) == STOP_SCHEMA.schema


@pytest.mark.parametrize("route_name", list(ROUTES))
async def test_a_prose_answer_on_any_route_falls_back_to_the_marker(
    httpx2_mock: Any, monkeypatch: pytest.MonkeyPatch, route_name: str
) -> None:
    config, (variable, key), url, answer, _ = ROUTES[route_name]
    monkeypatch.setenv(variable, key)
    httpx2_mock.post(url__startswith=url.split(":generateContent")[0]).mock(
        return_value=httpx.Response(200, json=answer(f"Great, thanks. {END_MARKER}"))
    )
    settings = Settings(providers={config.provider: {"max_retries": 0}})
    user = LLMInterlocutor("You were charged twice.", config, settings)
    history = [
        Message(role="user", content="Hi", turn=1),
        Message(role="assistant", content="Hello", turn=1),
    ]
    assert await user.reply(history) == (
        "Great, thanks.",
        True,
        "the end marker, in a prose answer",
        False,
    )
