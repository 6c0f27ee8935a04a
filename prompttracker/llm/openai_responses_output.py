"""OpenAI Responses output: what one turn's output items amount to, as plain values.

Text (refusals included), function calls with the outputs we sent back, and hosted tool calls
normalized into the shapes of ``tool_results``. Pure functions on JSON-shaped dicts, tested
without HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prompttracker.errors import LLMCallError
from prompttracker.llm.tool_results import (
    code_interpreter_result,
    file_search_result,
    web_search_result,
)
from prompttracker.llm.tools import parse_arguments
from prompttracker.messages import ToolCall, Usage

Item = dict[str, Any]

# Output items that are not part of the transcript: reasoning stays on the server and reaches
# the next turn through previous_response_id / the conversation.
_SKIPPED_ITEMS = {"reasoning"}


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
