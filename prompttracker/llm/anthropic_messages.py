"""Anthropic Messages: the session keeps the message list and resends it every turn.

The system prompt is the top-level ``system`` parameter, not a message. The anthropic SDK is an
optional extra; importing this module without it raises ``ModuleNotFoundError`` naming
``anthropic``, which the router turns into an install hint. Converters are plain functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import anthropic
from anthropic.types import Message as AnthropicMessage

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError
from prompttracker.llm.base import JsonSchema, Session, SessionOptions, plain_turns, sampling_params
from prompttracker.llm.clients import anthropic_call_error
from prompttracker.llm.tools import refuse_tools
from prompttracker.messages import AssistantTurn, Message, Usage

# The API requires `max_tokens`; this is the cap when model_config sets none. It is a ceiling,
# not a target (only generated tokens are billed), and it leaves room for models that think
# before answering, whose thinking counts toward it.
DEFAULT_MAX_TOKENS = 4096

# Stop reasons that mean the answer is complete; any other is recorded with the turn.
NORMAL_STOPS = frozenset({"end_turn", "stop_sequence"})

# Reasoning the model may return before its answer: not part of the answer, not resent.
THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})

AnthropicParam = dict[str, str]


def to_anthropic_messages(history: Sequence[Message]) -> list[AnthropicParam]:
    """Earlier user/assistant turns as Messages API ``messages``."""
    return plain_turns(history, "anthropic messages history")


def output_config(response_format: JsonSchema) -> dict[str, Any]:
    """Structured output: the answer is JSON that matches the schema (used by the judges)."""
    return {"format": {"type": "json_schema", "schema": response_format.schema}}


def request_params(
    config: ModelConfig,
    system_prompt: str,
    messages: Sequence[AnthropicParam],
    response_format: JsonSchema | None,
) -> dict[str, Any]:
    """The ``messages.create`` arguments.

    ``temperature`` and ``top_p`` go in ``extra_body``: the SDK dropped them from its signature
    because the newest models reject them, while older models still take them. Both are sent
    as written when both are set: some models refuse the pair, and the API's 400 says so,
    which is better than testing a configuration other than the one in the YAML.
    """
    params: dict[str, Any] = {
        "model": config.model,
        "max_tokens": config.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": list(messages),
    }
    if system_prompt.strip():
        params["system"] = system_prompt
    sampling = sampling_params(config, max_tokens_key=None)  # the cap is set above
    if sampling:
        params["extra_body"] = sampling
    if response_format is not None:
        params["output_config"] = output_config(response_format)
    return params


def turn_from_message(message: AnthropicMessage, latency_ms: float) -> AssistantTurn:
    """Our AssistantTurn from a Messages API response: its text blocks, joined.

    A reply without text cannot be resent (the API refuses empty assistant messages) and
    leaves nothing to evaluate, so it raises with the stop reason. A reply that stopped early
    (``max_tokens``, ``refusal``…) keeps its text and records why in ``extras["stop_reasons"]``.
    """
    texts = []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type not in THINKING_BLOCKS:
            # We never send tools, so a tool block means the request was not what we think.
            raise LLMCallError(
                f"the anthropic message {message.id} has a {block.type!r} block, "
                "but no tools were sent",
                hint="tools are not supported on the anthropic messages route",
            )
    text = "".join(texts)
    stop = _stop_record(message)
    if not text:
        raise LLMCallError(
            f"the anthropic message {message.id} from {message.model} has no text "
            f"(stop reason {stop['stop_reason']}{_detail(stop)})",
            hint=_EMPTY_HINTS.get(message.stop_reason or ""),
        )
    usage = message.usage
    return AssistantTurn(
        content=text,
        response_id=message.id,
        # Cached prompt tokens are counted apart from `input_tokens`; the prompt is their sum.
        usage=Usage(
            input_tokens=usage.input_tokens
            + (usage.cache_creation_input_tokens or 0)
            + (usage.cache_read_input_tokens or 0),
            output_tokens=usage.output_tokens,
        ),
        latency_ms=latency_ms,
        extras={} if message.stop_reason in NORMAL_STOPS else {"stop_reasons": [stop]},
    )


_EMPTY_HINTS = {
    "max_tokens": "raise max_tokens in the model_config (thinking counts toward it)",
    "refusal": "the API's safety classifiers stopped the reply: rephrase the prompt or the row",
}


def _stop_record(message: AnthropicMessage) -> dict[str, Any]:
    record: dict[str, Any] = {"response_id": message.id, "stop_reason": message.stop_reason}
    details = message.stop_details
    if details is not None and (details.category or details.explanation):
        record["detail"] = ": ".join(filter(None, (details.category, details.explanation)))
    return record


def _detail(stop: dict[str, Any]) -> str:
    return f", {stop['detail']}" if stop.get("detail") else ""


class AnthropicMessagesSession(Session):
    """A conversation on ``/v1/messages``: every turn resends the full history."""

    conversation_mode: ClassVar[str] = "messages"

    def __init__(self, config: ModelConfig, settings: Settings, options: SessionOptions) -> None:
        super().__init__(config, settings, options)
        refuse_tools(config, "anthropic messages")
        self._client = self.calls.anthropic()
        self._messages = to_anthropic_messages(options.history)

    async def _send(self, user_message: str) -> AssistantTurn:
        """Append the user message, send the whole list, append and return the reply."""
        self._messages.append({"role": "user", "content": user_message})
        params = request_params(
            self.config, self.options.system_prompt, self._messages, self.options.response_format
        )
        started = time.perf_counter()
        try:
            if self.options.on_text is None:
                message = await self._client.messages.create(**params)
            else:
                message = await self._streamed(params, self.options.on_text)
        except anthropic.AnthropicError as exc:
            self._messages.pop()  # the failed turn is not part of the conversation
            # `from None`: the SDK exception's traceback is not needed and could carry the key.
            raise anthropic_call_error(
                exc, self.config.label, secrets=(self.settings.api_key("anthropic"),)
            ) from None
        except BaseException:  # cancelled: not part of the conversation either
            self._messages.pop()
            raise
        try:
            turn = turn_from_message(message, (time.perf_counter() - started) * 1000)
        except LLMCallError:
            self._messages.pop()
            raise
        self._messages.append({"role": "assistant", "content": turn.content})
        return turn

    async def _streamed(self, params: dict[str, Any], on_text: Callable[[str], None]) -> Any:
        """The message a stream adds up to (the SDK assembles it, usage included); its text
        goes to ``on_text`` as it comes."""
        async with self._client.messages.stream(**params) as stream:
            async for text in stream.text_stream:
                on_text(text)
            return await stream.get_final_message()
