"""OpenAI Chat Completions: the session keeps the whole message list and resends it every turn.

Also the route for anything OpenAI-compatible (vLLM, Ollama, LM Studio, gateways) through a
``base_url`` in the settings. Function calling: a turn may take several completions, each
tool-call message answered from the row's mock outputs, until the model answers in text.
Converters are plain functions on JSON-shaped dicts (what the API sends and receives), tested
without HTTP.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError, NotImplementedRouteError
from prompttracker.llm.base import JsonSchema, Session, SessionOptions, plain_turns, sampling_params
from prompttracker.llm.clients import openai_call, openai_events, openai_post
from prompttracker.llm.tools import (
    MAX_TOOL_ROUNDS,
    function_output,
    function_schema,
    output_value,
    parse_arguments,
    too_many_rounds,
)
from prompttracker.messages import AssistantTurn, Message, ToolCall, Usage

ChatMessage = dict[str, Any]
Completion = dict[str, Any]  # a chat completion as the API sends it


def to_chat_messages(system_prompt: str, history: Sequence[Message]) -> list[ChatMessage]:
    """The opening message list: the system prompt (when not blank), then earlier turns."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    return [*system, *plain_turns(history, "chat_completions history")]


def response_format_param(response_format: JsonSchema) -> dict[str, Any]:
    """Structured output: a JSON schema, strict unless it says not (the judges rely on their
    answers parsing)."""
    # The API only accepts [A-Za-z0-9_-]{1,64} as a schema name.
    name = re.sub(r"[^A-Za-z0-9_-]", "_", response_format.name)[:64] or "response"
    return {
        "type": "json_schema",
        "json_schema": {
            "name": name,
            "schema": response_format.schema,
            "strict": response_format.strict,
        },
    }


def tools_param(config: ModelConfig) -> list[dict[str, Any]]:
    """``tools``: one function tool per ``tool_config.functions`` entry."""
    return [
        {"type": "function", "function": function_schema(tool)}
        for tool in config.tool_config.functions
    ]


def request_params(
    config: ModelConfig,
    messages: Sequence[ChatMessage],
    response_format: JsonSchema | None,
    max_tokens_key: str = "max_completion_tokens",
) -> dict[str, Any]:
    """The ``chat.completions.create`` arguments; unset options are left to the API's defaults.

    The spec deprecates ``max_tokens`` for ``max_completion_tokens`` (o-series models refuse
    the old name); compatible servers often read only ``max_tokens``: ``max_tokens_key`` comes
    from the provider's settings (``Settings.max_tokens_param``).
    """
    params: dict[str, Any] = {"model": config.model, "messages": list(messages)}
    params.update(sampling_params(config, max_tokens_key))
    if response_format is not None:
        params["response_format"] = response_format_param(response_format)
    if config.tool_config.functions:
        params["tools"] = tools_param(config)
    return params


def reply_message(completion: Completion) -> ChatMessage:
    """The first choice's message; a completion without choices is an error."""
    choices = completion.get("choices") or []
    if not choices or not isinstance(choices[0].get("message"), dict):
        raise LLMCallError(f"the chat completion {completion.get('id')} has no choices")
    message: ChatMessage = choices[0]["message"]
    return message


async def streamed_completion(
    chunks: AsyncIterator[dict[str, Any]], on_text: Callable[[str], None]
) -> Completion:
    """The completion a stream of ``chat.completion.chunk`` events adds up to, as the
    unstreamed call would have returned it; each piece of text goes to ``on_text`` first."""
    first: dict[str, Any] = {}
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish_reason = None
    usage = None
    async for chunk in chunks:
        first = first or chunk
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                text.append(delta["content"])
                on_text(delta["content"])
            for part in delta.get("tool_calls") or []:
                call = calls.setdefault(
                    part.get("index", 0),
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                call["id"] = part.get("id") or call["id"]
                function = part.get("function") or {}
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""
            finish_reason = choice.get("finish_reason") or finish_reason
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {
        "id": first.get("id"),
        "object": "chat.completion",
        "model": first.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage,
    }


def completion_usage(completion: Completion) -> Usage:
    """Prompt and completion tokens (zero when a compatible server leaves usage out)."""
    usage = completion.get("usage") or {}
    return Usage(
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
    )


def assistant_tool_call_message(message: ChatMessage) -> ChatMessage:
    """The assistant message that asked for tool calls, as it must be resent before the answers."""
    calls = []
    for call in message.get("tool_calls") or ():
        if call.get("type") != "function":
            # We only ever send function tools; anything else cannot be answered.
            raise LLMCallError(
                f"the model made a {call.get('type')!r} tool call, but only function tools "
                "were sent"
            )
        function = call.get("function") or {}
        calls.append(
            {
                "id": call.get("id"),
                "type": "function",
                "function": {"name": function.get("name"), "arguments": function.get("arguments")},
            }
        )
    return {"role": "assistant", "content": message.get("content"), "tool_calls": calls}


def answer_tool_calls(
    request: ChatMessage, function_outputs: dict[str, Any]
) -> tuple[list[ChatMessage], list[ToolCall]]:
    """One ``tool`` message per call in ``request`` (an assistant tool-call message), and the
    calls with their outputs as ToolCall values."""
    messages: list[ChatMessage] = []
    calls: list[ToolCall] = []
    for call in request["tool_calls"]:
        name = call["function"]["name"]
        arguments = parse_arguments(call["function"]["arguments"])
        output = function_output(name, arguments, function_outputs)
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": output})
        calls.append(
            ToolCall(
                id=call["id"],
                type="function",
                name=name,
                arguments=arguments,
                output=output_value(output),
            )
        )
    return messages, calls


def turn_from_completions(
    completions: Sequence[Completion], tool_calls: Sequence[ToolCall], latency_ms: float
) -> AssistantTurn:
    """The turn: the last completion's text (or refusal) and id, usage summed over all rounds.

    The ids of the completions that asked for tool calls go to ``extras`` as
    ``tool_round_response_ids``, so that every billed completion can be traced.
    """
    last = completions[-1]
    message = reply_message(last)
    usage = Usage()
    for completion in completions:
        usage = usage + completion_usage(completion)
    extras: dict[str, Any] = {}
    if len(completions) > 1:
        extras["tool_round_response_ids"] = [c.get("id") for c in completions[:-1]]
    finish = (last.get("choices") or [{}])[0].get("finish_reason")
    if finish not in (None, "stop", "tool_calls", "function_call"):  # cut short: say why
        extras["stop_reasons"] = [{"response_id": last.get("id"), "stop_reason": finish}]
    return AssistantTurn(
        content=message.get("refusal") or message.get("content") or "",
        response_id=last.get("id"),
        usage=usage,
        latency_ms=latency_ms,
        tool_calls=tuple(tool_calls),
        extras=extras,
    )


class ChatCompletionsSession(Session):
    """A conversation on ``/chat/completions``: every turn resends the full history, including
    the assistant tool-call messages and the tool answers (the API requires the pairs)."""

    conversation_mode: ClassVar[str] = "chat_completions"

    def __init__(self, config: ModelConfig, settings: Settings, options: SessionOptions) -> None:
        super().__init__(config, settings, options)
        if config.tools:
            # The validator refuses these; a config built around it must not lose them silently.
            raise NotImplementedRouteError(
                f"{config.label} lists hosted tools {config.tools}, which chat_completions "
                "cannot call",
                hint="use api: responses for web_search, file_search and code_interpreter",
            )
        self._client = self.calls.openai()
        self._messages = to_chat_messages(options.system_prompt, options.history)

    async def _send(self, user_message: str) -> AssistantTurn:
        """Append the user message and play the turn's rounds; a failed turn leaves no trace."""
        mark = len(self._messages)
        self._messages.append({"role": "user", "content": user_message})
        try:
            return await self._play_turn()
        except BaseException:
            del self._messages[mark:]
            raise

    async def _play_turn(self) -> AssistantTurn:
        started = time.perf_counter()
        completions: list[Completion] = []
        tool_calls: list[ToolCall] = []
        for rounds in range(MAX_TOOL_ROUNDS + 1):
            completion = await self._create()
            completions.append(completion)
            message = reply_message(completion)
            if not message.get("tool_calls"):
                break
            if not self.config.tool_config.functions:
                raise LLMCallError(
                    f"{self.config.label}: the chat completion {completion.get('id')} asked "
                    "for tool calls, but no tools were sent",
                    hint="the server ignored the request: check the model and base_url",
                )
            if rounds == MAX_TOOL_ROUNDS:
                raise too_many_rounds(self.config.label)
            request = assistant_tool_call_message(message)
            answers, calls = answer_tool_calls(request, self.options.function_outputs)
            self._messages += [request, *answers]
            tool_calls += calls
        turn = turn_from_completions(
            completions, tool_calls, (time.perf_counter() - started) * 1000
        )
        self._messages.append({"role": "assistant", "content": turn.content})
        return turn

    async def _create(self) -> Completion:
        params = request_params(
            self.config,
            self._messages,
            self.options.response_format,
            self.settings.max_tokens_param(self.config.provider),
        )
        on_text = self.options.on_text
        if on_text is None:
            request = openai_post(self._client, "/chat/completions", params)
        else:
            params["stream_options"] = {"include_usage": True}
            events = openai_events(self._client, "/chat/completions", params)
            request = streamed_completion(events, on_text)
        return await openai_call(request, self.config.label, self.settings)
