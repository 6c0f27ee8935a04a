"""OpenAI Responses: the server keeps the conversation, chained by ``previous_response_id``.

With ``conversation_state: conversation`` a Conversations-API conversation keeps it instead.
Either way ``instructions`` are resent every turn: the API does not carry them over.

Converters are plain functions on JSON-shaped dicts (what the API sends and receives), tested
without HTTP; reading a turn's output items back lives in ``openai_responses_output``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError
from prompttracker.llm.base import JsonSchema, Session, SessionOptions, plain_turns, sampling_params
from prompttracker.llm.clients import openai_call, openai_events, openai_post
from prompttracker.llm.openai_chat_completions import response_format_param
from prompttracker.llm.openai_responses_output import Item, check_status, parse_turn, usage_of
from prompttracker.llm.tools import (
    MAX_TOOL_ROUNDS,
    function_output,
    function_schema,
    parse_arguments,
    too_many_rounds,
)
from prompttracker.messages import AssistantTurn, Message, Usage

# What each hosted tool needs in ``include`` so that evaluators see its results.
_INCLUDES = {
    "web_search": "web_search_call.action.sources",
    "file_search": "file_search_call.results",
    "code_interpreter": "code_interpreter_call.outputs",
}


# --- requests ---------------------------------------------------------------------------------


def user_item(text: str) -> Item:
    """One user message as an input item, typed: the easy form without ``"type"`` is valid
    for OpenAI, but compatible servers (llama-server) refuse it."""
    return {"type": "message", "role": "user", "content": text}


def history_items(history: Sequence[Message]) -> list[Item]:
    """Earlier user/assistant messages as typed input items."""
    return [{"type": "message", **turn} for turn in plain_turns(history, "responses history")]


def input_items(history: Sequence[Message], user_message: str) -> list[Item]:
    """The first turn's input: earlier user/assistant messages, then the new user message."""
    return [*history_items(history), user_item(user_message)]


def tools_param(config: ModelConfig) -> list[Item]:
    """The hosted tools in ``config.tools`` (in order), then the function tools."""
    tools: list[Item] = []
    settings = config.tool_config
    for name in config.tools:
        if name == "web_search":
            tool: Item = {"type": "web_search"}
            if settings.web_search and settings.web_search.search_context_size:
                tool["search_context_size"] = settings.web_search.search_context_size
        elif name == "file_search":
            search = settings.file_search
            tool = {
                "type": "file_search",
                "vector_store_ids": search.vector_store_ids if search else [],
            }
            if search and search.max_num_results is not None:
                tool["max_num_results"] = search.max_num_results
        else:
            code = settings.code_interpreter
            container: Item = {"type": "auto", "file_ids": code.file_ids if code else []}
            if code and code.memory_limit:
                container["memory_limit"] = code.memory_limit
            tool = {"type": "code_interpreter", "container": container}
        tools.append(tool)
    for function in settings.functions:
        # The Responses API treats an omitted `strict` as true and then rejects any schema
        # without additionalProperties:false; unset means not strict, as on chat_completions.
        strict = function.strict if function.strict is not None else False
        tools.append({"type": "function", **function_schema(function), "strict": strict})
    return tools


def include_param(config: ModelConfig) -> list[str]:
    """The extra output each hosted tool needs for its results to reach the evaluators."""
    return [_INCLUDES[name] for name in config.tools]


def text_format_param(response_format: JsonSchema) -> Item:
    """Structured output for ``text.format``: a strict JSON schema (the judges parse it)."""
    return {"type": "json_schema", **response_format_param(response_format)["json_schema"]}


def request_params(
    config: ModelConfig,
    *,
    instructions: str,
    input: list[Item],
    previous_response_id: str | None = None,
    conversation_id: str | None = None,
    response_format: JsonSchema | None = None,
    store: bool | None = None,
) -> dict[str, Any]:
    """The ``responses.create`` arguments for one request; unset options are left to the API."""
    if previous_response_id and conversation_id:
        raise ValueError("a request chains by previous_response_id or by conversation, not both")
    params: dict[str, Any] = {"model": config.model, "input": input}
    if instructions.strip():
        params["instructions"] = instructions
    if previous_response_id:
        params["previous_response_id"] = previous_response_id
    if conversation_id:
        params["conversation"] = conversation_id
    if store is not None:
        params["store"] = store
    params.update(sampling_params(config, "max_output_tokens"))
    tools = tools_param(config)
    if tools:
        params["tools"] = tools
    include = include_param(config)
    if include:
        params["include"] = include
    if response_format is not None:
        params["text"] = {"format": text_format_param(response_format)}
    return params


# --- function rounds --------------------------------------------------------------------------


async def streamed_response(events: AsyncIterator[Item], on_text: Callable[[str], None]) -> Item:
    """The response a stream of Responses events ends with (``response.completed``, or the
    failed or incomplete one, which ``check_status`` then reports); the text deltas go to
    ``on_text`` as they come."""
    final: Item | None = None
    async for event in events:
        kind = event.get("type", "")
        if kind == "response.output_text.delta" and event.get("delta"):
            on_text(event["delta"])
        elif kind in ("response.completed", "response.failed", "response.incomplete"):
            final = event.get("response")
    if not isinstance(final, dict):
        raise LLMCallError(
            "the Responses stream ended without a final response event",
            hint="check the provider's base_url: it should point at an OpenAI-compatible API",
        )
    return final


def function_calls(output: Sequence[Item]) -> list[Item]:
    """The ``function_call`` items of one response's output."""
    return [item for item in output if item.get("type") == "function_call"]


def function_call_outputs(calls: Sequence[Item], outputs: dict[str, Any]) -> list[Item]:
    """One ``function_call_output`` item per call, from the row's mock outputs (or a default)."""
    return [
        {
            "type": "function_call_output",
            "call_id": call["call_id"],
            "output": function_output(
                call["name"], parse_arguments(call.get("arguments")), outputs
            ),
        }
        for call in calls
    ]


# --- the session ------------------------------------------------------------------------------


class ResponsesSession(Session):
    """A conversation on ``/responses``, chained by response id or by a Conversations-API id."""

    conversation_mode: ClassVar[str] = "response_api"

    def __init__(self, config: ModelConfig, settings: Settings, options: SessionOptions) -> None:
        super().__init__(config, settings, options)
        self._client = self.calls.openai()
        self._use_conversation = config.conversation_state == "conversation"
        # Stateless: nothing is kept by the server (store: false), so every request carries
        # the whole conversation — zero data retention, or a server without stored state.
        self._stateless = config.conversation_state == "stateless"
        self._items = history_items(options.history)
        self._conversation_id: str | None = None
        self._previous_id: str | None = None
        self._opened = False  # a turn completed: history has been sent
        self._response_ids: list[str] = []

    @property
    def metadata(self) -> dict[str, Any]:
        """Every response id in order (tool rounds included), and the conversation id if any."""
        data: dict[str, Any] = {
            "conversation_mode": self.conversation_mode,
            "response_ids": list(self._response_ids),
        }
        if self._conversation_id:
            data["conversation_id"] = self._conversation_id
        return data

    async def _send(self, user_message: str) -> AssistantTurn:
        """Send one user message, answer function calls until the model replies in text."""
        if self._use_conversation and self._conversation_id is None:
            conversation = await openai_call(
                self._client.conversations.create(), self.config.label, self.settings
            )
            self._conversation_id = conversation.id
        started = time.perf_counter()
        if self._stateless:
            payload = [*self._items, user_item(user_message)]
        elif self._opened:
            payload = [user_item(user_message)]
        else:
            payload = input_items(self.options.history, user_message)
        previous = None if self._stateless else self._previous_id
        items: list[Item] = []
        answers: dict[str, str] = {}
        usage = Usage()
        for round_ in range(MAX_TOOL_ROUNDS + 1):
            response = await self._create(payload, previous)
            usage = usage + usage_of(response)
            output = response.get("output") or []
            items.extend(output)
            calls = function_calls(output)
            if not calls:
                break
            if round_ == MAX_TOOL_ROUNDS:
                raise too_many_rounds(self.config.label)
            outputs = function_call_outputs(calls, self.options.function_outputs)
            answers.update({answer["call_id"]: answer["output"] for answer in outputs})
            if self._stateless:  # the calls and their outputs join the conversation sent
                payload = [*payload, *calls, *outputs]
            else:
                payload, previous = outputs, response["id"]
        # Only a completed turn moves the chain on: a failed one is not part of the conversation.
        self._previous_id = None if self._use_conversation else response["id"]
        self._opened = True
        parsed = parse_turn(items, answers)
        if self._stateless:
            assistant = {"type": "message", "role": "assistant", "content": parsed.text}
            self._items = [*payload, assistant]
        if response.get("status") == "incomplete":  # cut short: say why, keep the text
            reason = (response.get("incomplete_details") or {}).get("reason") or "incomplete"
            stop = {"response_id": response["id"], "stop_reason": reason}
            parsed.extras.setdefault("stop_reasons", []).append(stop)
        return AssistantTurn(
            content=parsed.text,
            response_id=response["id"],
            usage=usage,
            latency_ms=(time.perf_counter() - started) * 1000,
            tool_calls=tuple(parsed.tool_calls),
            extras=parsed.extras,
        )

    async def _create(self, payload: list[Item], previous: str | None) -> Item:
        params = request_params(
            self.config,
            instructions=self.options.system_prompt,
            input=payload,
            previous_response_id=None if self._use_conversation else previous,
            conversation_id=self._conversation_id,
            response_format=self.options.response_format,
            store=False if self._stateless else None,
        )
        # Plain JSON, so that item types newer than the SDK's union reach parse_turn untouched.
        on_text = self.options.on_text
        request = (
            openai_post(self._client, "/responses", params)
            if on_text is None
            else streamed_response(openai_events(self._client, "/responses", params), on_text)
        )
        try:
            response: Item = await openai_call(request, self.config.label, self.settings)
        except LLMCallError as exc:
            if previous and "previous_response_id" in exc.message:
                raise LLMCallError(
                    exc.message,
                    hint="this server keeps no responses to chain to: set "
                    "`conversation_state: stateless` in the model_config (the whole "
                    "conversation is sent every turn, with store: false)",
                ) from None
            raise
        self._response_ids.append(response["id"])
        check_status(response, self.config.label)
        return response
