"""OpenAI Responses: the server keeps the conversation, chained by ``previous_response_id``.

With ``conversation_state: conversation`` a Conversations-API conversation keeps it instead.
Either way ``instructions`` are resent every turn: the API does not carry them over.

Converters are plain functions on JSON-shaped dicts (what the API sends and receives), tested
without HTTP. Hosted tool calls are normalized into the shapes of ``tool_results``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError
from prompttracker.llm.base import JsonSchema, Session, SessionOptions
from prompttracker.llm.clients import llm_call_error, openai_client
from prompttracker.llm.openai_chat_completions import response_format_param
from prompttracker.llm.tool_results import (
    code_interpreter_result,
    file_search_result,
    web_search_result,
)
from prompttracker.llm.tools import (
    MAX_TOOL_ROUNDS,
    function_output,
    function_schema,
    parse_arguments,
    too_many_rounds,
)
from prompttracker.messages import AssistantTurn, Message, ToolCall, Usage

Item = dict[str, Any]
T = TypeVar("T")

# Output items that are not part of the transcript: reasoning stays on the server and reaches
# the next turn through previous_response_id / the conversation.
_SKIPPED_ITEMS = {"reasoning"}

# What each hosted tool needs in ``include`` so that evaluators see its results.
_INCLUDES = {
    "web_search": "web_search_call.action.sources",
    "file_search": "file_search_call.results",
    "code_interpreter": "code_interpreter_call.outputs",
}


# --- requests ---------------------------------------------------------------------------------


def user_item(text: str) -> Item:
    """One user message as an input item."""
    return {"role": "user", "content": text}


def input_items(history: Sequence[Message], user_message: str) -> list[Item]:
    """The first turn's input: earlier user/assistant messages, then the new user message."""
    items: list[Item] = []
    for message in history:
        if message.role not in ("user", "assistant"):
            raise ValueError(
                f"responses history takes user/assistant messages, not {message.role!r}"
            )
        items.append({"role": message.role, "content": message.content})
    items.append(user_item(user_message))
    return items


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
    if config.temperature is not None:
        params["temperature"] = config.temperature
    if config.top_p is not None:
        params["top_p"] = config.top_p
    if config.max_tokens is not None:
        params["max_output_tokens"] = config.max_tokens
    tools = tools_param(config)
    if tools:
        params["tools"] = tools
    include = include_param(config)
    if include:
        params["include"] = include
    if response_format is not None:
        params["text"] = {"format": text_format_param(response_format)}
    return params


# --- responses --------------------------------------------------------------------------------


def usage_of(response: Item) -> Usage:
    """Input/output tokens of one response (0 when the server reports none)."""
    usage = response.get("usage") or {}
    return Usage(
        input_tokens=usage.get("input_tokens") or 0, output_tokens=usage.get("output_tokens") or 0
    )


def check_status(response: Item, api_label: str) -> None:
    """Raise ``LLMCallError`` for a response the server marked as failed."""
    if response.get("status") != "failed":
        return
    error = response.get("error") or {}
    detail = error.get("message") or "no error message"
    code = f" ({error['code']})" if error.get("code") else ""
    raise LLMCallError(
        f"{api_label}: the response {response.get('id')} failed{code}: {detail}",
        hint="check the model_config parameters and tools, or retry later",
    )


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


@dataclass
class ParsedTurn:
    """What the output items of one turn (over all its tool rounds) amount to."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    extras: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add_hosted(self, item: Item, tool: str, arguments: dict[str, Any], result: Item) -> None:
        """A hosted tool call: its normalized result in extras and in the transcript."""
        self.extras.setdefault(f"{tool}_results", []).append(result)
        self.tool_calls.append(
            ToolCall(
                id=item.get("id", ""), type=tool, name=tool, arguments=arguments, output=result
            )
        )


def parse_turn(items: Sequence[Item], answers: dict[str, str] | None = None) -> ParsedTurn:
    """Text, tool calls and normalized hosted-tool results from a turn's output items.

    ``answers`` maps a function call's ``call_id`` to the output we sent back. Item types we do
    not know are kept as ``ToolCall(type=<item type>)`` with the raw item as output, so they
    reach the transcript instead of vanishing. The answer's url citations go on the turn's last
    web search: the answer follows all of the turn's searches.
    """
    messages = [_message_text(item) for item in items if item.get("type") == "message"]
    citations = [c for _, cited in messages for c in cited]
    searches = [i for i, item in enumerate(items) if item.get("type") == "web_search_call"]
    parsed = ParsedTurn(text="\n\n".join(text for text, _ in messages if text))
    for index, item in enumerate(items):
        kind = item.get("type", "")
        if kind == "function_call":
            call_id = item.get("call_id", "")
            parsed.tool_calls.append(
                ToolCall(
                    id=call_id,
                    name=item.get("name", ""),
                    arguments=parse_arguments(item.get("arguments")),
                    output=(answers or {}).get(call_id),
                )
            )
        elif kind == "web_search_call":
            _add_web_search(parsed, item, citations if index == searches[-1] else [])
        elif kind == "file_search_call":
            queries = list(item.get("queries") or [])
            result = file_search_result(queries, list(item.get("results") or []))
            parsed.add_hosted(item, "file_search", {"queries": queries}, result)
        elif kind == "code_interpreter_call":
            _add_code_interpreter(parsed, item)
        elif kind not in _SKIPPED_ITEMS | {"message"}:
            parsed.tool_calls.append(
                ToolCall(id=item.get("id", ""), type=kind, name=kind, output=item)
            )
    if citations and not searches:
        # Cited pages without a search call still tell evaluators where the answer came from.
        parsed.extras["web_search_results"] = [web_search_result("", [], citations)]
    return parsed


def _message_text(item: Item) -> tuple[str, list[Item]]:
    """The text of one output message (refusals included) and its url citations."""
    parts: list[str] = []
    citations: list[Item] = []
    for part in item.get("content") or []:
        kind = part.get("type")
        if kind == "output_text":
            parts.append(part.get("text") or "")
            annotations = part.get("annotations") or []
            citations.extend(a for a in annotations if a.get("type") == "url_citation")
        elif kind == "refusal":
            parts.append(part.get("refusal") or "")
        else:
            raise LLMCallError(
                f"the output message {item.get('id')} has a content part of unknown type {kind!r}",
                hint="this content type is not supported yet; please report it",
            )
    return "".join(parts), citations


def _add_web_search(parsed: ParsedTurn, item: Item, citations: list[Item]) -> None:
    action = item.get("action") or {}
    if action.get("type") == "search":
        query = action.get("query") or " | ".join(action.get("queries") or [])
        arguments: dict[str, Any] = {"query": query}
        sources = [s for s in action.get("sources") or [] if s.get("url")]
    else:
        # open_page / find_in_page read one page: that page is the source, there is no query.
        query = ""
        arguments = {k: v for k, v in action.items() if k != "sources"}
        sources = [{"url": action["url"]}] if action.get("url") else []
    status = item.get("status") or "completed"
    result = web_search_result(query, sources, citations, status=status)
    parsed.add_hosted(item, "web_search", arguments, result)


def _add_code_interpreter(parsed: ParsedTurn, item: Item) -> None:
    outputs = item.get("outputs") or []
    logs = [o.get("logs") or "" for o in outputs if o.get("type") == "logs"]
    images = [o.get("url") or "" for o in outputs if o.get("type") == "image"]
    code = item.get("code") or ""
    status = item.get("status") or "completed"
    result = code_interpreter_result(code, logs, images, status=status)
    parsed.add_hosted(item, "code_interpreter", {"code": code}, result)


# --- the session ------------------------------------------------------------------------------


class ResponsesSession(Session):
    """A conversation on ``/responses``, chained by response id or by a Conversations-API id."""

    conversation_mode: ClassVar[str] = "response_api"

    def __init__(self, config: ModelConfig, settings: Settings, options: SessionOptions) -> None:
        super().__init__(config, settings, options)
        self._client = openai_client(settings, http_client=options.http_client)
        self._use_conversation = config.conversation_state == "conversation"
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

    async def send(self, user_message: str) -> AssistantTurn:
        """Send one user message, answer function calls until the model replies in text."""
        if self._use_conversation and self._conversation_id is None:
            conversation = await self._call(self._client.conversations.create())
            self._conversation_id = conversation.id
        started = time.perf_counter()
        payload = (
            [user_item(user_message)]
            if self._opened
            else input_items(self.options.history, user_message)
        )
        previous = self._previous_id
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
            payload = function_call_outputs(calls, self.options.function_outputs)
            answers.update({answer["call_id"]: answer["output"] for answer in payload})
            previous = response["id"]
        # Only a completed turn moves the chain on: a failed one is not part of the conversation.
        self._previous_id = None if self._use_conversation else response["id"]
        self._opened = True
        parsed = parse_turn(items, answers)
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
        )
        sdk_response = await self._call(self._client.responses.create(**params))
        # Plain JSON, so that item types newer than the SDK's union reach parse_turn untouched.
        response: Item = sdk_response.to_dict(mode="json", warnings=False)
        self._response_ids.append(response["id"])
        check_status(response, self.config.label)
        return response

    async def _call(self, request: Awaitable[T]) -> T:
        """Await an SDK request, turning SDK errors into a key-free ``LLMCallError``."""
        import openai

        try:
            return await request
        except openai.OpenAIError as exc:
            # `from None`: the SDK exception's traceback is not needed and could carry the key.
            raise llm_call_error(
                exc, self.config.label, secrets=(self.settings.api_key("openai"),)
            ) from None

    async def aclose(self) -> None:
        """Close the SDK client (and the HTTP client it owns)."""
        await self._client.close()
