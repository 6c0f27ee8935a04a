"""The Google Gemini session and its client factory, over a mocked transport."""

from __future__ import annotations

import json
import sys
from functools import partial
from typing import Any

import httpx
import httpx2
import pytest
from google.genai import errors, models
from google.genai.types import GenerateContentResponse

from prompttracker.api_types import ApiType
from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError, NotImplementedRouteError, RunStartError
from prompttracker.llm import router
from prompttracker.llm.base import SessionOptions
from prompttracker.llm.clients import gemini_call_error, gemini_client
from prompttracker.llm.google_gemini import (
    GeminiSession,
    generation_config,
    to_contents,
    turn_from_response,
)
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

BASE = "https://generativelanguage.googleapis.com"
URL = f"{BASE}/v1/models/gemini-2.5-flash:generateContent"
KEY = "AIzaSyTEST-SECRET-0123456789abcdefgh"
CONFIG = ModelConfig(provider="google", api="gemini", model="gemini-2.5-flash")
VERDICT = verdict("feedback")


api_key = key_fixture("GEMINI_API_KEY", KEY)
fast_settings = partial(no_retry_settings, "google")


def reply(rid: str, text: str, prompt_tokens: int, answer_tokens: int, **candidate: Any) -> dict:
    """The fixture response with our own id, text and token counts (no thinking tokens)."""
    payload = load_fixture("google/generate_content.json")
    payload["responseId"] = rid
    payload["candidates"][0]["content"]["parts"][0]["text"] = text
    payload["candidates"][0].update(candidate)
    payload["usageMetadata"] = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": answer_tokens,
        "totalTokenCount": prompt_tokens + answer_tokens,
    }
    return payload


def parsed(payload: dict) -> GenerateContentResponse:
    """A wire payload as the SDK hands it to us (camelCase → snake_case)."""
    return GenerateContentResponse.model_validate(
        models._GenerateContentResponse_from_mldev(payload)
    )


def session(
    settings: Settings | None = None, config: ModelConfig = CONFIG, **options: Any
) -> GeminiSession:
    return GeminiSession(config, settings or fast_settings(), SessionOptions(**options))


def user(text: str) -> dict:
    return {"role": "user", "parts": [{"text": text}]}


def model(text: str) -> dict:
    return {"role": "model", "parts": [{"text": text}]}


# --- the conversation over HTTP ------------------------------------------------------------


async def test_three_turns_resend_the_full_history(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(reply("resp-1", "Hello! How can I help?", 12, 7)),
            ok(reply("resp-2", "I can refund that.", 30, 6)),
            ok(reply("resp-3", "Done. Anything else?", 45, 5)),
        ]
    )
    config = CONFIG.model_copy(update={"temperature": 0.4, "top_p": 0.8, "max_tokens": 300})
    chat = session(config=config, system_prompt="You are a billing agent.")
    turns = await converse(chat, "Hi", "I was charged twice", "Please refund")

    assert route.call_count == 3
    first, second, third = (body(route, i) for i in range(3))
    assert first == {
        "contents": [user("Hi")],
        # the SDK wraps a plain-text system instruction as a user-role content
        "systemInstruction": {"role": "user", "parts": [{"text": "You are a billing agent."}]},
        "generationConfig": {"temperature": 0.4, "topP": 0.8, "maxOutputTokens": 300},
    }
    assert second["contents"] == [
        user("Hi"),
        model("Hello! How can I help?"),
        user("I was charged twice"),
    ]
    assert third["systemInstruction"] == first["systemInstruction"]
    assert third["generationConfig"] == first["generationConfig"]
    assert third["contents"] == [
        user("Hi"),
        model("Hello! How can I help?"),
        user("I was charged twice"),
        model("I can refund that."),
        user("Please refund"),
    ]
    assert [t.content for t in turns] == [
        "Hello! How can I help?",
        "I can refund that.",
        "Done. Anything else?",
    ]
    assert [t.response_id for t in turns] == ["resp-1", "resp-2", "resp-3"]
    assert [t.usage for t in turns] == [
        Usage(input_tokens=12, output_tokens=7),
        Usage(input_tokens=30, output_tokens=6),
        Usage(input_tokens=45, output_tokens=5),
    ]
    assert all(t.latency_ms > 0 for t in turns)
    assert route.calls[0].request.headers["x-goog-api-key"] == KEY
    assert "key=" not in str(route.calls[0].request.url)
    assert chat.conversation_mode == "contents"


async def test_fixture_reply_counts_thinking_as_output(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(200, json=load_fixture("google/generate_content.json"))
    chat = session(system_prompt="")
    turn = await chat.send("Hello")
    await chat.aclose()
    assert body(route) == {"contents": [user("Hello")]}  # no blank system, no default config
    assert turn.content == "Hello! How can I help you today?"
    assert turn.response_id == "mKzGaLn3EpC5gLUP5sWbqAM"
    assert turn.usage == Usage(input_tokens=9, output_tokens=9 + 24)
    assert turn.extras == {}


async def test_history_option_comes_before_the_new_message(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(200, json=load_fixture("google/generate_content.json"))
    chat = session(system_prompt="Be brief.", history=ORDER_HISTORY)
    await chat.send("Thanks!")
    await chat.aclose()
    assert body(route)["contents"] == [
        user("Where is my order?"),
        model("It ships today."),
        user("Thanks!"),
    ]


async def test_structured_output_for_judges(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(
        200, json=reply("resp-j", '{"score": 85, "feedback": "fine"}', 200, 15)
    )
    judge = CONFIG.model_copy(update={"temperature": 0})
    chat = session(config=judge, system_prompt="Judge.", response_format=VERDICT)
    turn = await chat.send("Judge this")
    await chat.aclose()
    assert body(route)["generationConfig"] == {
        "temperature": 0,
        "responseMimeType": "application/json",
        "responseJsonSchema": VERDICT.schema,
    }
    assert json.loads(turn.content) == {"score": 85, "feedback": "fine"}


async def test_base_url_from_settings_is_where_requests_go(httpx2_mock: Any, api_key: str) -> None:
    proxy = httpx2_mock.post(
        "http://gemini-proxy.local/v1/models/gemini-2.5-flash:generateContent"
    ).respond(200, json=load_fixture("google/generate_content.json"))
    chat = session(fast_settings(base_url="http://gemini-proxy.local"))
    await chat.send("Hello")
    await chat.aclose()
    assert proxy.call_count == 1


async def test_one_shot_call_through_the_router(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(200, json=reply("resp-r", "Yes.", 10, 1))
    turn = await router.complete(
        CONFIG,
        fast_settings(),
        system_prompt="Answer yes or no.",
        messages=YES_NO_QUESTIONS,
    )
    assert turn.content == "Yes."
    assert turn.response_id == "resp-r"
    assert body(route)["contents"] == [user("Is it sunny?"), model("No."), user("Is it warm?")]
    assert body(route)["systemInstruction"]["parts"] == [{"text": "Answer yes or no."}]


# --- replies that stop early or are blocked ---------------------------------------------------


async def test_blocked_prompt_is_an_error_and_not_kept(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            ok(load_fixture("google/generate_content_blocked.json")),
            ok(load_fixture("google/generate_content.json")),
        ]
    )
    chat = session()
    with pytest.raises(LLMCallError) as caught:
        await chat.send("Something forbidden")
    await chat.send("Hello")
    await chat.aclose()
    assert str(caught.value) == (
        "prompt under test: the gemini response Xq3GaKfBL5CvgLUPzNW5oAk has no candidates: "
        "the prompt was blocked (PROHIBITED_CONTENT)"
    )
    assert "safety" in (caught.value.hint or "")
    assert body(route, 1)["contents"] == [user("Hello")]


def test_truncated_reply_keeps_text_and_records_why() -> None:
    turn = turn_from_response(
        parsed(reply("resp-t", "The refund policy", 9, 3, finishReason="MAX_TOKENS")), 4.0
    )
    assert turn.content == "The refund policy"
    assert turn.extras == {"stop_reasons": [{"response_id": "resp-t", "stop_reason": "MAX_TOKENS"}]}
    assert turn.latency_ms == 4.0


def test_reply_without_text_names_the_finish_reason() -> None:
    payload = reply("resp-s", "", 9, 0, finishReason="SAFETY")
    payload["candidates"][0]["content"] = {"role": "model"}
    with pytest.raises(LLMCallError, match=r"resp-s has no text \(finish reason SAFETY\)"):
        turn_from_response(parsed(payload), 1)
    payload["candidates"][0]["finishReason"] = "MAX_TOKENS"
    with pytest.raises(LLMCallError) as caught:
        turn_from_response(parsed(payload), 1)
    assert "raise max_tokens" in (caught.value.hint or "")


def test_thoughts_are_left_out_and_function_calls_are_refused() -> None:
    payload = reply("resp-x", "Hello", 5, 2)
    parts = payload["candidates"][0]["content"]["parts"]
    parts.insert(0, {"text": "The user greets me.", "thought": True})
    parts.append({"text": " there!", "thoughtSignature": "Q2lRQnpZ"})
    assert turn_from_response(parsed(payload), 1).content == "Hello there!"
    parts.append({"functionCall": {"name": "lookup_order", "args": {"id": "1"}}})
    with pytest.raises(LLMCallError, match="function_call part, but no tools were sent"):
        turn_from_response(parsed(payload), 1)


# --- errors ---------------------------------------------------------------------------------


async def test_server_error_names_status_and_hides_the_key(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).respond(500, json=load_fixture("google/error_internal.json"))
    chat = session()
    with pytest.raises(LLMCallError) as caught:
        await chat.send("Hi")
    await chat.aclose()
    assert route.call_count == 1  # max_retries 0: no retry
    assert str(caught.value).startswith(
        "prompt under test: google/gemini gemini-2.5-flash: the API answered HTTP 500: An "
        "internal error has occurred."
    )
    assert str(caught.value).endswith(f"(INTERNAL) (from {URL})")
    assert "retry later" in (caught.value.hint or "")
    assert "SECRET" not in error_text(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_unauthenticated_and_invalid_key(httpx2_mock: Any, api_key: str) -> None:
    invalid = load_fixture("google/error_api_key_invalid.json")
    invalid["error"]["message"] = f"API key not valid: {KEY}"  # an echo must still be hidden
    httpx2_mock.post(URL).mock(
        side_effect=[  # a 401 last: after it the run sends nothing more to this provider
            httpx.Response(400, json=invalid),
            httpx.Response(401, json=load_fixture("google/error_unauthenticated.json")),
        ]
    )
    chat = session()
    with pytest.raises(LLMCallError) as bad_key:
        await chat.send("Hi")
    with pytest.raises(LLMCallError) as unauthenticated:
        await chat.send("Hi")
    await chat.aclose()
    assert "HTTP 401: Request had invalid authentication credentials" in str(unauthenticated.value)
    assert "UNAUTHENTICATED" in str(unauthenticated.value)
    assert "HTTP 400: API key not valid: [REDACTED] (INVALID_ARGUMENT)" in str(bad_key.value)
    for caught in (unauthenticated, bad_key):
        assert "API key was refused" in (caught.value.hint or "")
        assert "SECRET" not in error_text(caught.value)


async def test_connection_and_timeout_errors_are_one_line(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[httpx2.ConnectError("connection refused"), httpx2.ReadTimeout("slow")]
    )
    refused, slow = await refused_then_slow(session())
    assert str(refused) == (
        f"prompt under test: google/gemini gemini-2.5-flash: could not connect to {URL} "
        "(ConnectError: connection refused)"
    )
    assert_transport_errors(refused, slow, URL)
    assert body(route, 1)["contents"] == [user("Hi")]  # the failed turn was dropped


def test_a_key_in_the_query_is_hidden() -> None:
    request = httpx2.Request("POST", f"{URL}?key={KEY}&alt=json")
    exc = httpx2.ConnectError(f"failed POST {request.url}", request=request)
    error = gemini_call_error(exc, "google/gemini m")
    assert "SECRET" not in str(error)
    assert "key=[REDACTED]&alt=json" in str(error)
    assert f"could not connect to {URL} " in str(error)  # the URL itself loses its query
    # a key of any shape, in any URL of the message, even with no request to read it from
    bare = httpx2.ConnectError("proxy refused http://gw.local/v1?alt=json&key=plainsecret42")
    assert str(gemini_call_error(bare, "m")).endswith("?alt=json&key=[REDACTED])")


def test_api_error_without_a_response_is_mapped() -> None:
    exc = errors.ServerError(503, {"error": {"message": "The model is overloaded."}})
    error = gemini_call_error(exc, "google/gemini m", secrets=(KEY,))
    assert str(error) == "google/gemini m: the API answered HTTP 503: The model is overloaded."


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(RunStartError) as caught:
        session()
    assert "GEMINI_API_KEY" in str(caught.value)
    assert "export GEMINI_API_KEY=" in (caught.value.hint or "")


def test_google_api_key_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-from-google-variable")
    assert settings.api_key("google") == "AIza-from-google-variable"
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-from-gemini-variable")
    assert settings.api_key("google") == "AIza-from-gemini-variable"  # the default wins
    named = Settings(providers={"google": {"api_key_env": "TEAM_GEMINI_KEY"}})
    assert named.api_key("google") is None  # a named variable has no fallback
    assert settings.api_key("anthropic") is None  # only google has one


def test_missing_sdk_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.genai", None)  # `import google.genai` now fails
    monkeypatch.delitem(sys.modules, "prompttracker.llm.google_gemini")
    with pytest.raises(RunStartError) as caught:
        router.session_class(ApiType.GOOGLE_GEMINI)
    assert "google SDK is not installed" in str(caught.value)
    assert caught.value.hint == "pip install 'prompttracker[google]'"


def test_client_takes_settings(api_key: str) -> None:
    injected = httpx2.AsyncClient()
    settings = Settings(
        providers={
            "google": {"base_url": "http://gw.local", "timeout_seconds": 7.5, "max_retries": 4}
        }
    )
    client = gemini_client(settings, http_client=injected)
    options = client._api_client._http_options
    assert options.base_url.rstrip("/") == "http://gw.local"
    assert options.timeout == 7500  # milliseconds
    assert options.retry_options.attempts == 5
    assert options.httpx_async_client is injected
    assert client._api_client.api_key == KEY
    assert client._api_client.vertexai is False


def test_vertex_environment_cannot_switch_the_route(
    monkeypatch: pytest.MonkeyPatch, api_key: str
) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    assert gemini_client(fast_settings())._api_client.vertexai is False


def test_tools_built_in_code_are_refused(api_key: str) -> None:
    config = CONFIG.model_copy(update={"tools": ["web_search"]})
    with pytest.raises(NotImplementedRouteError, match="tools are not supported"):
        session(config=config)


# --- pure converters ---------------------------------------------------------------------------


def test_converters_without_http() -> None:
    assert to_contents([]) == []
    with pytest.raises(ValueError, match="tool"):
        to_contents([Message(role="tool", content="{}", turn=1)])
    assert generation_config(CONFIG, "  ", None) == {}
    assert generation_config(CONFIG.model_copy(update={"max_tokens": 50}), "Be kind.", None) == {
        "system_instruction": "Be kind.",
        "max_output_tokens": 50,
    }
