"""THE routing table: ApiType → session class. Conversations and one-shot calls both go through it.

Entries are import paths so that ``pt --help`` imports no SDK; a route is imported on first use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from importlib import import_module

from prompttracker.api_types import ApiType
from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import NotImplementedRouteError, RunStartError
from prompttracker.llm.base import JsonSchema, Session, SessionOptions
from prompttracker.llm.call_layer import Caller, CallLayer, calling_as
from prompttracker.messages import AssistantTurn, Message

ROUTES: dict[ApiType, str] = {
    ApiType.OPENAI_CHAT_COMPLETIONS: (
        "prompttracker.llm.openai_chat_completions:ChatCompletionsSession"
    ),
    ApiType.OPENAI_RESPONSES: "prompttracker.llm.openai_responses:ResponsesSession",
    ApiType.OPENAI_ASSISTANTS: "prompttracker.llm.openai_assistants:AssistantsSession",
    ApiType.ANTHROPIC_MESSAGES: "prompttracker.llm.anthropic_messages:AnthropicMessagesSession",
    ApiType.GOOGLE_GEMINI: "prompttracker.llm.google_gemini:GeminiSession",
    ApiType.MOCK: "prompttracker.llm.mock:MockSession",
}

# The optional SDK behind a route, and how to install it.
_SDK_EXTRAS = {"anthropic": "anthropic", "google": "google"}


def session_class(api_type: ApiType) -> type[Session]:
    """The session class for an ApiType, imported on first use."""
    target = ROUTES.get(api_type)
    if target is None:
        raise NotImplementedRouteError(
            f"the {api_type.value} route is valid configuration but not implemented yet",
            hint="use another api for this version for now, or run with --mock",
        )
    module, _, name = target.partition(":")
    try:
        loaded = import_module(module)
    except ModuleNotFoundError as exc:
        extra = _SDK_EXTRAS.get(api_type.provider)
        if extra is None or (exc.name or "").startswith("prompttracker"):
            raise
        raise RunStartError(
            f"the {api_type.provider} SDK is not installed ({exc.name} is missing)",
            hint=f"pip install 'prompttracker[{extra}]'",
        ) from None
    cls: type[Session] = getattr(loaded, name)
    return cls


def effective_config(config: ModelConfig, *, mock: bool) -> ModelConfig:
    """With ``--mock`` every route answers offline: keep the model name, swap the provider."""
    if not mock or config.provider == "mock":
        return config
    return config.model_copy(update={"provider": "mock", "api": config.api})


def open_session(
    config: ModelConfig, settings: Settings, options: SessionOptions | None = None
) -> Session:
    """Open a session on the API that ``config`` names. A version's ``response_format`` is the
    session's structured output unless the caller asks for its own (a judge's)."""
    options = options or SessionOptions()
    wanted = config.response_format
    if wanted is not None and options.response_format is None:
        schema = JsonSchema(name=wanted.name, schema=wanted.schema_, strict=wanted.strict)
        options = dataclasses.replace(options, response_format=schema)
    return session_class(config.api_type)(config, settings, options)


async def complete(
    config: ModelConfig,
    settings: Settings,
    *,
    system_prompt: str,
    messages: Sequence[Message],
    response_format: JsonSchema | None = None,
    calls: CallLayer | None = None,
    caller: Caller = "assistant",
    sample: int = 0,
) -> AssistantTurn:
    """One-shot call: the last message is sent, the ones before it are history.

    ``calls`` is the run's call layer (None: a private one for this call); ``caller`` says
    whose call it is (the simulated user's, a judge's) for the layer's accounting; ``sample``
    which of several draws of the same call this is (a judge's votes: the mock varies by it).
    """
    if not messages or messages[-1].role != "user":
        raise ValueError("complete() needs a conversation that ends with a user message")
    session = open_session(
        config,
        settings,
        SessionOptions(
            system_prompt=system_prompt,
            history=messages[:-1],
            response_format=response_format,
            calls=calls,
            sample=sample,
        ),
    )
    try:
        with calling_as(caller):
            return await session.send(messages[-1].content)
    finally:
        await session.aclose()
