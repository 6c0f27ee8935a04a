"""OpenAI Chat Completions: the session keeps the whole message list and resends it every turn.

Also the route for anything OpenAI-compatible (vLLM, Ollama, LM Studio, gateways) through a
``base_url`` in the settings. Converters are plain functions, tested without HTTP.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError, NotImplementedRouteError
from prompttracker.llm.base import JsonSchema, Session, SessionOptions
from prompttracker.llm.clients import llm_call_error, openai_client
from prompttracker.messages import AssistantTurn, Message, Usage

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion

ChatMessage = dict[str, str]


def to_chat_messages(system_prompt: str, history: Sequence[Message]) -> list[ChatMessage]:
    """The opening message list: the system prompt (when not blank), then earlier turns."""
    messages: list[ChatMessage] = []
    if system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt})
    for message in history:
        if message.role not in ("user", "assistant"):
            # Tool messages need the tool calls they answer; those arrive with function calling.
            raise ValueError(
                f"chat_completions history takes user/assistant messages, not {message.role!r}"
            )
        messages.append({"role": message.role, "content": message.content})
    return messages


def response_format_param(response_format: JsonSchema) -> dict[str, Any]:
    """Structured output: strict JSON schema (the judges rely on the answer parsing)."""
    # The API only accepts [A-Za-z0-9_-]{1,64} as a schema name.
    name = re.sub(r"[^A-Za-z0-9_-]", "_", response_format.name)[:64] or "response"
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": response_format.schema, "strict": True},
    }


def request_params(
    config: ModelConfig, messages: Sequence[ChatMessage], response_format: JsonSchema | None
) -> dict[str, Any]:
    """The ``chat.completions.create`` arguments; unset options are left to the API's defaults."""
    params: dict[str, Any] = {"model": config.model, "messages": list(messages)}
    if config.temperature is not None:
        params["temperature"] = config.temperature
    if config.top_p is not None:
        params["top_p"] = config.top_p
    if config.max_tokens is not None:
        # The spec deprecates `max_tokens` in favour of `max_completion_tokens`, and o-series
        # (reasoning) models reject `max_tokens` outright.
        params["max_completion_tokens"] = config.max_tokens
    if response_format is not None:
        params["response_format"] = response_format_param(response_format)
    return params


def turn_from_completion(completion: ChatCompletion, latency_ms: float) -> AssistantTurn:
    """Our AssistantTurn from a ``chat.completion``: the first choice's text (or its refusal)."""
    if not completion.choices:
        raise LLMCallError(f"the chat completion {completion.id} has no choices")
    message = completion.choices[0].message
    if message.tool_calls:
        # We never send tools yet, so a tool call here means the server ignored the request.
        raise LLMCallError(
            f"the chat completion {completion.id} asked for tool calls, but no tools were sent",
            hint="function calling on chat_completions is not supported yet",
        )
    usage = completion.usage
    return AssistantTurn(
        content=message.refusal or message.content or "",
        response_id=completion.id,
        usage=Usage(
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        ),
        latency_ms=latency_ms,
    )


class ChatCompletionsSession(Session):
    """A conversation on ``/chat/completions``: every turn resends the full history."""

    conversation_mode: ClassVar[str] = "chat_completions"

    def __init__(self, config: ModelConfig, settings: Settings, options: SessionOptions) -> None:
        super().__init__(config, settings, options)
        if config.tools:
            # Never drop tools silently: a test of a tool-using prompt would pass for nothing.
            raise NotImplementedRouteError(
                f"{config.label} lists tools {config.tools}, but tool calling on chat_completions "
                "arrives with function calling support; remove tools or use --mock",
                hint="remove 'tools' from this model_config, or run with --mock",
            )
        self._client = openai_client(settings, http_client=options.http_client)
        self._messages = to_chat_messages(options.system_prompt, options.history)

    async def send(self, user_message: str) -> AssistantTurn:
        """Append the user message, send the whole list, append and return the reply."""
        import openai

        self._messages.append({"role": "user", "content": user_message})
        params = request_params(self.config, self._messages, self.options.response_format)
        started = time.perf_counter()
        try:
            completion = await self._client.chat.completions.create(**params)
        except openai.OpenAIError as exc:
            self._messages.pop()  # the failed turn is not part of the conversation
            # `from None`: the SDK exception's traceback is not needed and could carry the key.
            raise llm_call_error(
                exc, self.config.label, secrets=(self.settings.api_key("openai"),)
            ) from None
        turn = turn_from_completion(completion, (time.perf_counter() - started) * 1000)
        self._messages.append({"role": "assistant", "content": turn.content})
        return turn

    async def aclose(self) -> None:
        """Close the SDK client (and the HTTP client it owns)."""
        await self._client.close()
