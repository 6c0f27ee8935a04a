"""Google Gemini (google-genai SDK): the session keeps the ``contents`` list and resends it.

The system prompt travels as ``system_instruction`` in the generation config, never as a turn;
the assistant's role is ``model``. The google-genai SDK is an optional extra; importing this
module without it raises ``ModuleNotFoundError`` naming ``google.genai``, which the router turns
into an install hint. Converters are plain functions, tested without HTTP.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

import httpx2
from google.genai import errors, types
from google.genai.types import GenerateContentResponse

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError
from prompttracker.llm.base import JsonSchema, Session, SessionOptions, sampling_params
from prompttracker.llm.clients import gemini_call_error
from prompttracker.llm.tools import refuse_tools
from prompttracker.messages import AssistantTurn, Message, Usage

try:  # the SDK's async transport when it is installed, httpx2 otherwise
    import aiohttp
except ImportError:  # pragma: no cover - depends on the environment
    _AIOHTTP_ERRORS: tuple[type[BaseException], ...] = ()
else:  # pragma: no cover
    _AIOHTTP_ERRORS = (aiohttp.ClientError,)

# What a failed call raises: the SDK wraps HTTP answers in APIError, not network errors.
CALL_ERRORS = (errors.APIError, httpx2.TransportError, TimeoutError, *_AIOHTTP_ERRORS)

ROLES = {"user": "user", "assistant": "model"}

# Finish reasons of a complete answer; any other is recorded with the turn.
NORMAL_FINISHES = frozenset({"STOP", "FINISH_REASON_UNSPECIFIED"})

# Parts a text conversation without tools never asks for; one in a reply is not dropped.
UNEXPECTED_PARTS = (
    "function_call",
    "tool_call",
    "executable_code",
    "code_execution_result",
    "inline_data",
    "file_data",
)

Content = dict[str, Any]


def to_contents(history: Sequence[Message]) -> list[Content]:
    """Earlier user/assistant turns as Gemini ``contents`` (the assistant is ``model``)."""
    return [content(message.role, message.content) for message in history]


def content(role: str, text: str) -> Content:
    """One turn: ``{"role": "user"|"model", "parts": [{"text": ...}]}``."""
    if role not in ROLES:
        raise ValueError(f"gemini history takes user/assistant messages, not {role!r}")
    return {"role": ROLES[role], "parts": [{"text": text}]}


def generation_config(
    config: ModelConfig, system_prompt: str, response_format: JsonSchema | None
) -> dict[str, Any]:
    """The ``GenerateContentConfig`` fields; unset options are left to the API's defaults."""
    params: dict[str, Any] = {}
    if system_prompt.strip():
        params["system_instruction"] = system_prompt
    params.update(sampling_params(config, "max_output_tokens"))
    if response_format is not None:
        # `response_json_schema` takes plain JSON Schema (additionalProperties included);
        # `response_schema` would need Google's OpenAPI subset.
        params["response_mime_type"] = "application/json"
        params["response_json_schema"] = response_format.schema
    return params


async def streamed_response(
    chunks: AsyncIterator[GenerateContentResponse], on_text: Callable[[str], None]
) -> GenerateContentResponse:
    """The response a ``streamGenerateContent`` stream adds up to: the last chunk (its finish
    reason and usage) with the text of them all; each piece goes to ``on_text`` as it comes."""
    texts: list[str] = []
    others: list[types.Part] = []  # what is not reply text stays, for turn_from_response
    last: GenerateContentResponse | None = None
    async for chunk in chunks:
        last = chunk
        for candidate in (chunk.candidates or [])[:1]:
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.text is not None and not part.thought:
                    texts.append(part.text)
                    on_text(part.text)
                elif part.text is None:
                    others.append(part)
    if last is None:
        raise LLMCallError("the gemini stream ended without a response")
    if not last.candidates:
        return last  # a blocked prompt: turn_from_response says why
    merged = last.model_copy(deep=True)
    candidate = merged.candidates[0]  # type: ignore[index]
    if candidate.content is None:
        candidate.content = types.Content(role="model", parts=[])
    candidate.content.parts = [*others, types.Part(text="".join(texts))]
    return merged


def turn_from_response(response: GenerateContentResponse, latency_ms: float) -> AssistantTurn:
    """Our AssistantTurn from ``generateContent``: the first candidate's text (thoughts left out).

    A blocked prompt (no candidates) and a reply without text raise with the reason: neither
    can be resent nor evaluated. A reply cut short keeps its text and records the finish reason
    in ``extras["stop_reasons"]``.
    """
    rid = response.response_id
    name = f"the gemini response {rid}" if rid else "the gemini response"
    if not response.candidates:
        raise _blocked_prompt(response, name)
    candidate = response.candidates[0]
    texts = []
    for part in (candidate.content.parts if candidate.content else None) or []:
        unexpected = [kind for kind in UNEXPECTED_PARTS if getattr(part, kind) is not None]
        if unexpected:
            raise LLMCallError(
                f"{name} has a {unexpected[0]} part, but no tools were sent",
                hint="tools are not supported on the google gemini route",
            )
        if part.text is not None and not part.thought:
            texts.append(part.text)
    text = "".join(texts)
    finish = _name(candidate.finish_reason) or "FINISH_REASON_UNSPECIFIED"
    stop: dict[str, Any] = {"response_id": rid, "stop_reason": finish}
    if candidate.finish_message:
        stop["detail"] = candidate.finish_message
    if not text:
        detail = f", {stop['detail']}" if "detail" in stop else ""
        raise LLMCallError(
            f"{name} has no text (finish reason {finish}{detail})",
            hint="raise max_tokens in the model_config (thinking counts toward it)"
            if finish == "MAX_TOKENS"
            else None,
        )
    return AssistantTurn(
        content=text,
        response_id=rid,
        usage=_usage(response),
        latency_ms=latency_ms,
        extras={} if finish in NORMAL_FINISHES else {"stop_reasons": [stop]},
    )


def _blocked_prompt(response: GenerateContentResponse, name: str) -> LLMCallError:
    feedback = response.prompt_feedback
    reason = (_name(feedback.block_reason) if feedback else None) or "no reason given"
    if feedback and feedback.block_reason_message:
        reason += f": {feedback.block_reason_message}"
    return LLMCallError(
        f"{name} has no candidates: the prompt was blocked ({reason})",
        hint="the API's safety filters refused the prompt: rephrase the prompt or the row",
    )


def _usage(response: GenerateContentResponse) -> Usage:
    meta = response.usage_metadata
    if meta is None:
        return Usage()
    # Thinking is billed as output, like Anthropic's thinking and OpenAI's reasoning tokens.
    return Usage(
        input_tokens=meta.prompt_token_count or 0,
        output_tokens=(meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
    )


def _name(value: Any) -> str | None:
    """An SDK enum's wire name (``"SAFETY"``), or None."""
    return None if value is None else str(getattr(value, "value", value))


class GeminiSession(Session):
    """A conversation on ``models.generateContent``: every turn resends the full history."""

    conversation_mode: ClassVar[str] = "contents"

    def __init__(self, config: ModelConfig, settings: Settings, options: SessionOptions) -> None:
        super().__init__(config, settings, options)
        refuse_tools(config, "google gemini")
        self._client = self.calls.gemini()
        self._contents = to_contents(options.history)
        self._config = generation_config(config, options.system_prompt, options.response_format)

    async def _send(self, user_message: str) -> AssistantTurn:
        """Append the user message, send all contents, append and return the reply."""
        self._contents.append(content("user", user_message))
        started = time.perf_counter()
        try:
            arguments = {
                "model": self.config.model or "",
                "contents": self._contents,
                "config": dict(self._config),
            }
            if self.options.on_text is None:
                response = await self._client.aio.models.generate_content(**arguments)
            else:
                chunks = await self._client.aio.models.generate_content_stream(**arguments)
                response = await streamed_response(chunks, self.options.on_text)
            turn = turn_from_response(response, (time.perf_counter() - started) * 1000)
        except CALL_ERRORS as exc:
            self._contents.pop()  # the failed turn is not part of the conversation
            # `from None`: the SDK exception's traceback is not needed and could carry the key.
            raise gemini_call_error(
                exc, self.config.label, secrets=(self.settings.api_key("google"),)
            ) from None
        except BaseException:  # an LLMCallError of ours, or cancelled
            self._contents.pop()
            raise
        self._contents.append(content("assistant", turn.content))
        return turn
