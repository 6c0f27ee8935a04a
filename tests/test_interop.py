"""Settings that make compatible servers work: the token cap's name on Chat Completions, the
Gemini API version, typed Responses input items."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.llm import router
from prompttracker.llm.base import SessionOptions
from prompttracker.llm.call_layer import CallLayer
from tests.conftest import load_fixture
from tests.helpers import body

CAPPED = ModelConfig(provider="openai", api="chat_completions", model="m", max_tokens=50)


async def one_turn(config: ModelConfig, settings: Settings) -> None:
    async with CallLayer(settings) as calls:
        session = router.open_session(config, settings, SessionOptions(calls=calls))
        await session.send("Hi")


@pytest.mark.parametrize(
    ("provider", "sent"),
    [
        ({}, "max_completion_tokens"),  # OpenAI's own API: the current name
        ({"base_url": "https://api.openai.com/v1"}, "max_completion_tokens"),
        ({"base_url": "http://127.0.0.1:9/v1"}, "max_tokens"),  # a compatible server
        (
            {"base_url": "http://127.0.0.1:9/v1", "max_tokens_param": "max_completion_tokens"},
            "max_completion_tokens",
        ),
        ({"max_tokens_param": "max_tokens"}, "max_tokens"),
    ],
)
async def test_the_token_cap_is_sent_under_the_name_the_server_reads(
    httpx2_mock: Any, monkeypatch: pytest.MonkeyPatch, provider: dict[str, Any], sent: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-interop")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    base = provider.get("base_url", "https://api.openai.com/v1")
    route = httpx2_mock.post(f"{base}/chat/completions").mock(
        return_value=httpx.Response(200, json=load_fixture("openai/chat_completion.json"))
    )
    settings = Settings(providers={"openai": {"max_retries": 0, **provider}})
    await one_turn(CAPPED, settings)
    request = body(route)
    assert request[sent] == 50
    other = {"max_tokens", "max_completion_tokens"} - {sent}
    assert not other & set(request)


async def test_gemini_uses_the_api_version_of_the_settings(
    httpx2_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSyTEST-interop-0123456789abcdefgh")
    route = httpx2_mock.post(
        "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:generateContent"
    ).mock(return_value=httpx.Response(200, json=load_fixture("google/generate_content.json")))
    google = {"base_url": "http://127.0.0.1:9", "api_version": "v1beta", "max_retries": 0}
    config = ModelConfig(provider="google", api="gemini", model="gemini-2.5-flash")
    await one_turn(config, Settings(providers={"google": google}))
    assert route.call_count == 1


async def test_responses_input_items_are_typed_messages(
    httpx2_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-interop")
    route = httpx2_mock.post("https://api.openai.com/v1/responses").mock(
        return_value=httpx.Response(200, json=load_fixture("openai/responses_text.json"))
    )
    config = ModelConfig(provider="openai", api="responses", model="gpt-4o-mini")
    await one_turn(config, Settings(providers={"openai": {"max_retries": 0}}))
    assert body(route)["input"] == [{"type": "message", "role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("caller", "named"),
    [("assistant", "prompt under test"), ("simulated_user", "simulated user"), ("judge", "judge")],
)
async def test_an_error_names_whose_call_failed_and_the_url_with_its_port(
    httpx2_mock: Any, monkeypatch: pytest.MonkeyPatch, caller: str, named: str
) -> None:
    from prompttracker.errors import LLMCallError
    from prompttracker.messages import Message

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-interop")
    url = "http://127.0.0.1:18099/v1/chat/completions"
    httpx2_mock.post(url).mock(
        return_value=httpx.Response(500, json={"error": {"message": "model crashed"}})
    )
    settings = Settings(providers={"openai": {"base_url": "http://127.0.0.1:18099/v1",
                                              "max_retries": 0}})  # fmt: skip
    config = ModelConfig(provider="openai", api="chat_completions", model="m")
    with pytest.raises(LLMCallError) as caught:
        await router.complete(
            config,
            settings,
            system_prompt="s",
            messages=[Message(role="user", content="Hi", turn=1)],
            caller=caller,  # type: ignore[arg-type]
        )
    assert str(caught.value) == (
        f"{named}: openai/chat_completions m: the API answered HTTP 500: model crashed (from {url})"
    )
