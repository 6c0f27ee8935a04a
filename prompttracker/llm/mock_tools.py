"""Deterministic tool use for the offline mock, shaped like what the real routes record.

On the first assistant turn, and on any turn whose user message names a tool, the mock:

- calls functions: the ones the message names (``lookup_order`` or ``lookup order``), else the
  first one; arguments come from the parameters schema, the output from the row's
  ``mock_function_outputs`` (or the default that names the call), exactly as a real route would;
- uses each hosted tool in ``tools`` and reports a normalized result (``llm/tool_results.py``)
  whose file names, URLs and code say plainly that they are mock.

Nothing here reads files, searches or runs code.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prompttracker.config.models import FunctionTool, ModelConfig
from prompttracker.llm.tool_results import (
    code_interpreter_result,
    file_search_result,
    web_search_result,
)
from prompttracker.llm.tools import function_output, output_value
from prompttracker.messages import ToolCall

MOCK_VECTOR_STORE = "vs_mock"  # searched when file_search names no vector store
RESULT_KEYS = {
    "file_search": "file_search_results",
    "web_search": "web_search_results",
    "code_interpreter": "code_interpreter_results",
}


@dataclass
class ToolActivity:
    """What the mock did with tools in one turn."""

    tool_calls: list[ToolCall] = field(default_factory=list)
    extras: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # sentences for the reply text

    @property
    def summary(self) -> str:
        return " ".join(self.notes)


def names_tool(message: str, name: str) -> bool:
    """Whether ``message`` names a tool, as written or with spaces for ``_``/``-``."""
    spaced = re.sub(r"[_-]+", " ", name)
    return any(
        re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", message, re.IGNORECASE)
        for form in {name, spaced}
    )


def functions_to_call(config: ModelConfig, message: str, first_turn: bool) -> list[FunctionTool]:
    """The functions ``message`` names; if none, the first function, on the first turn only."""
    functions = config.tool_config.functions
    named = [f for f in functions if names_tool(message, f.name)]
    if named or not first_turn:
        return named
    return functions[:1]


def use_tools(
    config: ModelConfig,
    message: str,
    seed: str,
    *,
    first_turn: bool,
    function_outputs: dict[str, Any],
    arguments_for: Callable[[dict[str, Any], str], dict[str, Any]],
) -> ToolActivity:
    """Every tool call of one mock turn, in order: functions first, then hosted tools.

    ``arguments_for(schema, seed)`` builds arguments valid against a parameters schema.
    """
    activity = ToolActivity()
    for number, tool in enumerate(functions_to_call(config, message, first_turn)):
        arguments = arguments_for(tool.parameters, f"{seed}:{tool.name}")
        output = function_output(tool.name, arguments, function_outputs)
        activity.tool_calls.append(
            ToolCall(
                id=f"call_mock_{seed[:8]}_{number}",
                type="function",
                name=tool.name,
                arguments=arguments,
                output=output_value(output),
            )
        )
        activity.notes.append(f"I called {tool.name}: {output}.")
    for kind in config.tools:
        if not (first_turn or names_tool(message, kind)):
            continue
        arguments, result, note = HOSTED[kind](config, message, seed)
        activity.tool_calls.append(
            ToolCall(
                id=f"{kind}_mock_{seed[:8]}",
                type=kind,
                name=kind,
                arguments=arguments,
                output=result,
            )
        )
        activity.extras.setdefault(RESULT_KEYS[kind], []).append(result)
        activity.notes.append(note)
    return activity


HostedResult = tuple[dict[str, Any], dict[str, Any], str]  # arguments, result, note


def mock_file_search(config: ModelConfig, message: str, seed: str) -> HostedResult:
    """One mock file per vector store (up to ``max_num_results``), best score first."""
    settings = config.tool_config.file_search
    stores = (settings.vector_store_ids if settings else []) or [MOCK_VECTOR_STORE]
    limit = settings.max_num_results if settings and settings.max_num_results else len(stores)
    query = _query(message)
    files = [
        {
            "file_id": f"file-mock-{hashlib.sha256(f'{seed}:{store}'.encode()).hexdigest()[:8]}",
            "filename": f"mock-{store}-{i + 1}.txt",
            "score": round(0.9 - 0.1 * i, 2),
            "text": f"Mock passage from {store} about: {query} (no file was searched)",
        }
        for i, store in enumerate(stores[:limit])
    ]
    result = file_search_result([query], files)
    names = ", ".join(f["filename"] for f in files)
    return {"queries": [query]}, result, f"I searched the files and found {names}."


def mock_web_search(config: ModelConfig, message: str, seed: str) -> HostedResult:
    """Two example.com-style sources under ``/mock/``; the first is cited."""
    query = _query(message)
    slug = "-".join(re.findall(r"[a-z0-9]+", query.lower())[:6]) or "query"
    sources = [
        {"url": f"https://example.com/mock/{slug}", "title": f"Mock result: {query}"},
        {"url": f"https://example.org/mock/{seed[:8]}", "title": "Mock reference page"},
    ]
    result = web_search_result(query, sources, citations=sources[:1])
    return {"query": query}, result, f"I searched the web ({sources[0]['url']})."


def mock_code_interpreter(config: ModelConfig, message: str, seed: str) -> HostedResult:
    """A tiny snippet that counts the message's words, and the log it would print."""
    query = _query(message)
    code = (
        "# mock code interpreter: nothing was run\n"
        f"message = {query!r}\n"
        "print(len(message.split()))"
    )
    log = str(len(query.split()))
    result = code_interpreter_result(code, [log])
    return {"code": code}, result, f"I ran some code; it printed {log}."


HOSTED: dict[str, Callable[[ModelConfig, str, str], HostedResult]] = {
    "file_search": mock_file_search,
    "web_search": mock_web_search,
    "code_interpreter": mock_code_interpreter,
}


def _query(message: str, max_words: int = 12) -> str:
    return " ".join(message.split()[:max_words])
