"""The one routing table: (provider, api) → ApiType → session class, with no fallbacks."""

from __future__ import annotations

import subprocess
import sys

import pydantic
import pytest

from prompttracker.api_types import ApiType
from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import ConfigError, NotImplementedRouteError
from prompttracker.llm import router
from prompttracker.llm.base import JsonSchema, Session
from prompttracker.llm.mock import MOCK_JUDGEMENT, MockSession
from prompttracker.llm.openai_chat_completions import ChatCompletionsSession
from prompttracker.messages import AssistantTurn, Message

NOT_BUILT_HERE = (
    ApiType.OPENAI_RESPONSES,
    ApiType.OPENAI_ASSISTANTS,
    ApiType.ANTHROPIC_MESSAGES,
    ApiType.GOOGLE_GEMINI,
)


@pytest.mark.parametrize(
    ("provider", "api", "expected"),
    [
        ("openai", "chat_completions", ApiType.OPENAI_CHAT_COMPLETIONS),
        ("openai", "responses", ApiType.OPENAI_RESPONSES),
        ("openai", "assistants", ApiType.OPENAI_ASSISTANTS),
        ("anthropic", "messages", ApiType.ANTHROPIC_MESSAGES),
        ("google", "gemini", ApiType.GOOGLE_GEMINI),
        ("mock", None, ApiType.MOCK),
        ("mock", "chat_completions", ApiType.MOCK),
        ("mock", "assistants", ApiType.MOCK),
    ],
)
def test_design_pairs_map_to_api_types(provider: str, api: str | None, expected: ApiType) -> None:
    assert ApiType.from_config(provider, api) is expected


@pytest.mark.parametrize(
    ("provider", "api"),
    [
        ("openai", "completions"),
        ("anthropic", "chat_completions"),
        ("azure", "responses"),
        ("openai", None),
    ],
)
def test_unknown_pair_lists_the_supported_ones(provider: str, api: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        ApiType.from_config(provider, api)
    assert provider in str(caught.value)
    hint = caught.value.hint or ""
    for pair in ("openai/chat_completions", "openai/responses", "openai/assistants"):
        assert pair in hint
    assert "anthropic/messages" in hint and "google/gemini" in hint and "mock" in hint


def test_unknown_pair_fails_model_config_validation() -> None:
    with pytest.raises(
        pydantic.ValidationError, match=r"supported pairs: .*openai/chat_completions"
    ):
        ModelConfig(provider="openai", api="completion", model="gpt-4o-mini")


def test_session_classes_for_the_built_routes() -> None:
    assert router.session_class(ApiType.OPENAI_CHAT_COMPLETIONS) is ChatCompletionsSession
    assert router.session_class(ApiType.MOCK) is MockSession


@pytest.mark.parametrize("api_type", NOT_BUILT_HERE)
def test_missing_route_raises_instead_of_falling_back(
    api_type: ApiType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(router.ROUTES, api_type, raising=False)
    with pytest.raises(NotImplementedRouteError) as caught:
        router.session_class(api_type)
    assert api_type.value in str(caught.value)
    assert "not implemented" in str(caught.value)
    assert "--mock" in (caught.value.hint or "")


def test_anthropic_config_does_not_fall_back_to_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(router.ROUTES, ApiType.ANTHROPIC_MESSAGES, raising=False)
    config = ModelConfig(provider="anthropic", api="messages", model="claude-sonnet-4-5")
    with pytest.raises(NotImplementedRouteError, match="anthropic_messages"):
        router.open_session(config, Settings())


@pytest.mark.parametrize("api_type", list(ApiType))
def test_every_api_type_is_routed_or_refused(api_type: ApiType) -> None:
    """Whatever the table holds today: a Session subclass, or a clear refusal, never a KeyError."""
    if api_type in router.ROUTES:
        assert issubclass(router.session_class(api_type), Session)
    else:
        with pytest.raises(NotImplementedRouteError):
            router.session_class(api_type)


async def test_complete_with_a_mock_config_returns_a_turn() -> None:
    config = ModelConfig(provider="mock", model="gpt-4o-mini")
    messages = [
        Message(role="user", content="Where is my parcel?", turn=1),
        Message(role="assistant", content="On its way.", turn=1),
        Message(role="user", content="When will it arrive?", turn=2),
    ]
    turn = await router.complete(config, Settings(), system_prompt="Be brief.", messages=messages)
    assert isinstance(turn, AssistantTurn)
    assert "When will it arrive?" in turn.content
    assert turn.response_id and turn.response_id.startswith("mock-")


async def test_complete_passes_the_response_format() -> None:
    schema = JsonSchema("v", {"type": "object", "properties": {"reasoning": {"type": "string"}}})
    turn = await router.complete(
        ModelConfig(provider="mock"),
        Settings(),
        system_prompt="judge",
        messages=[Message(role="user", content="x", turn=1)],
        response_format=schema,
    )
    assert turn.content == f'{{"reasoning": "{MOCK_JUDGEMENT}"}}'


async def test_complete_needs_a_final_user_message() -> None:
    with pytest.raises(ValueError, match="ends with a user message"):
        await router.complete(
            ModelConfig(provider="mock"),
            Settings(),
            system_prompt="",
            messages=[Message(role="assistant", content="hi", turn=1)],
        )


def test_effective_config_swaps_to_mock_and_keeps_the_model() -> None:
    real = ModelConfig(
        provider="openai", api="chat_completions", model="gpt-4o-mini", temperature=0.2
    )
    swapped = router.effective_config(real, mock=True)
    assert swapped.provider == "mock"
    assert swapped.api_type is ApiType.MOCK
    assert swapped.model == "gpt-4o-mini"
    assert swapped.api == "chat_completions"
    assert swapped.temperature == 0.2
    assert swapped.label.startswith("mock") and swapped.label.endswith("gpt-4o-mini")
    assert router.effective_config(real, mock=False) is real
    assert router.session_class(swapped.api_type) is MockSession


def test_effective_config_keeps_assistant_ids() -> None:
    assistants = ModelConfig(provider="openai", api="assistants", assistant_id="asst_abc123")
    swapped = router.effective_config(assistants, mock=True)
    assert swapped.api_type is ApiType.MOCK
    assert swapped.assistant_id == "asst_abc123"


@pytest.mark.parametrize(
    "module",
    ["prompttracker.llm.router", "prompttracker.llm.mock", "prompttracker.llm.clients"],
)
def test_importing_routes_does_not_import_the_sdk(module: str) -> None:
    code = f"import {module}, sys; assert 'openai' not in sys.modules, 'openai imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
