"""Pure converters: an OpenAI assistant → a prompt version, and how two versions differ.

No I/O here: the sync service reads assistants and files, these functions only compute.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from prompttracker.config.models import PromptVersion
from prompttracker.sync import SyncTarget
from prompttracker.sync.models import Assistant
from prompttracker.templating import TemplateError, render

# The first user turn of a synced version: the dataset row says what the user writes.
USER_PROMPT = "{{ user_message }}"
SYNCED_AT = "synced_at"
HOSTED_TOOLS = ("file_search", "code_interpreter")

_MARKUP = re.compile(r"\{[{%]")
_ENDRAW = re.compile(r"(\{%-?\s*endraw\s*-?%\})")


class ConversionError(ValueError):
    """The assistant cannot become a valid prompt version; the message says why."""


def assistant_version(
    assistant: Assistant, target: SyncTarget, synced_at: str, *, number: int = 1
) -> PromptVersion:
    """The active prompt version that runs ``assistant`` on ``target``'s API."""
    data = {
        "version": number,
        "status": "active",
        "system_prompt": liquid_literal(assistant.instructions or ""),
        "user_prompt": USER_PROMPT,
        "model_config": _model_config(assistant, target, synced_at),
    }
    try:
        return PromptVersion.model_validate(data)
    except ValidationError as exc:
        raise ConversionError("; ".join(_describe(e) for e in exc.errors())) from None


def lost_settings(assistant: Assistant, target: SyncTarget) -> list[str]:
    """Assistant settings a version on ``target`` cannot carry (said aloud, never dropped quietly).

    On ``assistants`` the assistant keeps them and applies them on every run.
    """
    if target is SyncTarget.assistants:
        return []
    lost = []
    if assistant.response_format not in (None, "auto"):
        lost.append("response_format")
    for tool in assistant.tools:
        if tool.type == "file_search" and (tool.file_search or {}).get("ranking_options"):
            lost.append("file_search.ranking_options")
    return lost


def liquid_literal(text: str) -> str:
    """``text`` as a Liquid template that renders to exactly ``text``.

    Instructions are plain text but system prompts are templates: ``{{`` or ``{%`` in them is
    wrapped in ``{% raw %}`` so that it reaches the model as written.
    """
    if not _MARKUP.search(text):
        return text
    parts = []
    for index, piece in enumerate(_ENDRAW.split(text)):
        if index % 2:  # an `{% endraw %}` of the text itself: it cannot sit inside a raw block
            parts.append("{{ '" + piece + "' }}")
        elif _MARKUP.search(piece):
            parts.append("{% raw %}" + piece + "{% endraw %}")
        else:
            parts.append(piece)
    escaped = "".join(parts)
    try:
        same = render(escaped, {}) == text
    except TemplateError:
        same = False
    if not same:
        raise ConversionError("the instructions hold Liquid markup that cannot be escaped")
    return escaped


def comparable(version: PromptVersion) -> dict[str, Any]:
    """What a sync compares: the version without its number, status, notes and sync time."""
    data = version.model_dump(mode="json", by_alias=True)
    for key in ("version", "status", "notes"):
        data.pop(key)
    data["model_config"]["metadata"].pop(SYNCED_AT, None)
    return data


def changed_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two dumps differ, e.g. ``model_config.temperature``."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(old.keys() | new.keys()):
            path = f"{prefix}.{key}" if prefix else str(key)
            changes.extend(changed_fields(old.get(key), new.get(key), path))
        return changes
    return [] if old == new else [prefix or "(all)"]


def _model_config(assistant: Assistant, target: SyncTarget, synced_at: str) -> dict[str, Any]:
    config: dict[str, Any] = {"provider": "openai", "api": target.value}
    if target is SyncTarget.responses:
        if not assistant.model:
            raise ConversionError("the assistant has no model, and --as responses needs one")
    else:
        config["assistant_id"] = assistant.id
    if assistant.model:
        config["model"] = assistant.model
    for key in ("temperature", "top_p"):
        if (value := getattr(assistant, key)) is not None:
            config[key] = value
    tools, tool_config = _tools(assistant)
    # A null entry ({"file_search": null}) says nothing: leave it out.
    resources = {k: v for k, v in (assistant.tool_resources or {}).items() if v is not None}
    if target is SyncTarget.responses:
        tool_config.update(_moved_resources(resources, tool_config))
    elif resources:
        config["tool_resources"] = resources
    config["tools"] = tools
    config["tool_config"] = tool_config
    config["metadata"] = _metadata(assistant, target, synced_at)
    return config


def _tools(assistant: Assistant) -> tuple[list[str], dict[str, Any]]:
    tools: list[str] = []
    functions: list[dict[str, Any]] = []
    tool_config: dict[str, Any] = {}
    for index, tool in enumerate(assistant.tools):
        if tool.type in HOSTED_TOOLS:
            tools.append(tool.type)
            limit = (tool.file_search or {}).get("max_num_results")
            if tool.type == "file_search" and limit is not None:
                tool_config["file_search"] = {"max_num_results": limit}
        elif tool.type == "function":
            if tool.function is None:
                raise ConversionError(f"tools[{index}] is a function tool without a 'function'")
            functions.append(tool.function.model_dump(exclude_none=True))
        else:
            raise ConversionError(
                f"tools[{index}] has type {tool.type!r}, which a prompt version cannot hold "
                "(known: code_interpreter, file_search, function)"
            )
    if functions:
        tool_config["functions"] = functions
    return tools, tool_config


def _moved_resources(resources: dict[str, Any], tool_config: dict[str, Any]) -> dict[str, Any]:
    """Assistants keep vector stores and files in tool_resources; Responses in tool_config."""
    unknown = sorted(set(resources) - set(HOSTED_TOOLS))
    if unknown:
        raise ConversionError(f"tool_resources {unknown} have no Responses equivalent")
    moved: dict[str, Any] = {}
    stores = (resources.get("file_search") or {}).get("vector_store_ids") or []
    if stores:
        moved["file_search"] = {**tool_config.get("file_search", {}), "vector_store_ids": stores}
    files = (resources.get("code_interpreter") or {}).get("file_ids") or []
    if files:
        moved["code_interpreter"] = {"file_ids": files}
    return moved


def _metadata(assistant: Assistant, target: SyncTarget, synced_at: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if target is SyncTarget.responses:
        metadata["assistant_id"] = assistant.id  # where this version came from
    if assistant.name is not None:
        metadata["name"] = assistant.name
    if assistant.description is not None:
        metadata["description"] = assistant.description
    metadata[SYNCED_AT] = synced_at
    if assistant.metadata:
        metadata["assistant_metadata"] = assistant.metadata
    return metadata


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
