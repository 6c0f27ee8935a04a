"""Where assistants come from: ``GET /v1/assistants`` page by page, or an exported list.

Pages are read oldest first (``order=asc``) so that the ``after`` cursor stays valid while
someone creates assistants during a sync (new ones land at the end), and at most ``max_pages``
pages are read: a server that always answers ``has_more: true`` cannot keep the loop going.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from pydantic import ValidationError

from prompttracker.config.settings import Settings
from prompttracker.errors import ConfigError, LLMCallError
from prompttracker.messages import Value
from prompttracker.sync import DEFAULT_MAX_PAGES
from prompttracker.sync.models import Assistant

P = ParamSpec("P")
R = TypeVar("R")

PAGE_SIZE = 100  # the API's maximum
ORDER = "asc"
API_LABEL = "openai/assistants list"
EXPORT_SHAPES = 'an object {"object": "list", "data": [...]} or a JSON array of assistants'


class AssistantList(Value):
    """The assistants read, in order, and how the paging went."""

    assistants: list[Assistant]
    pages: int = 0
    page_cap_reached: bool = False


async def fetch_assistants(
    settings: Settings, *, max_pages: int = DEFAULT_MAX_PAGES, http_client: Any = None
) -> AssistantList:
    """Every assistant of the account, ``PAGE_SIZE`` per request, at most ``max_pages`` requests.

    Raises ``RunStartError`` without a key, and ``LLMCallError`` on an API error; a 404 names
    the Assistants API's shutdown and points to ``--from-file``.
    """
    import openai

    from prompttracker.llm.clients import llm_call_error, openai_client, require_api_key

    # Checked here so that the hint names this command's way around a key, not run-tests' --mock.
    require_api_key(settings, "openai", instead="sync from a file with --from-file FILE")
    client = openai_client(settings, http_client=http_client)
    found: dict[str, Assistant] = {}
    pages, after, capped = 0, None, False
    try:
        while True:
            cursor = {"after": after} if after else {}
            page = await _quietly(
                client.beta.assistants.list, limit=PAGE_SIZE, order=ORDER, **cursor
            )
            pages += 1
            for item in page.data:
                # A server that repeats itself (a mock, a bad cursor) must not duplicate files.
                # to_dict leaves out what the server did not send (model_dump adds nulls).
                found.setdefault(item.id, _read_api_assistant(item.to_dict(mode="json")))
            if not page.has_more or not page.data:
                break
            if pages >= max_pages:
                capped = True
                break
            after = page.data[-1].id
    except openai.OpenAIError as exc:
        error = llm_call_error(exc, API_LABEL, secrets=(settings.api_key("openai"),))
        raise (sunset_error(error) if isinstance(exc, openai.NotFoundError) else error) from None
    finally:
        await client.close()
    return AssistantList(assistants=list(found.values()), pages=pages, page_cap_reached=capped)


def sunset_error(base: LLMCallError) -> LLMCallError:
    """A 404 on the list: the live Assistants API is gone, so read an export instead."""
    from prompttracker.llm.openai_assistants import SUNSET_DATE

    return LLMCallError(
        f"{base.message.rstrip('.')}. OpenAI shut the Assistants API down on {SUNSET_DATE}: "
        "the live API answers 404 to every Assistants call, so there is nothing to list; "
        "nothing was written",
        hint="sync from an export instead: `pt sync openai --from-file assistants.json` (the "
        'list\'s JSON, {"object": "list", "data": [...]}, or a JSON array); new files run on '
        "the Responses API, and `--as responses` moves files that still use the Assistants API. "
        "A compatible server that still serves the Assistants API works through "
        "providers.openai.base_url",
    )


def read_export(path: Path) -> list[Assistant]:
    """Assistants from an exported list; any problem is a ``ConfigError`` with file and place."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", hint="check the --from-file path") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}",
            hint=f"--from-file takes {EXPORT_SHAPES}",
        ) from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        items, base = data["data"], "data"
    elif isinstance(data, list):
        items, base = data, ""
    else:
        found = "an object without a 'data' list" if isinstance(data, dict) else _kind(data)
        raise ConfigError(f"{path}: expected {EXPORT_SHAPES}, found {found}")
    problems: list[str] = []
    assistants: list[Assistant] = []
    first_seen: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"{base}[{index}]"
        try:
            assistant = Assistant.model_validate(item)
        except ValidationError as exc:
            problems.extend(
                f"{path}: {where}{_location(e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            continue
        if assistant.id in first_seen:
            problems.append(
                f"{path}: {where}.id: {assistant.id!r} repeats {first_seen[assistant.id]}"
            )
            continue
        first_seen[assistant.id] = where
        assistants.append(assistant)
    if problems:
        raise ConfigError(
            f"{len(problems)} problem(s) in the assistants export:\n"
            + "\n".join(f"  {p}" for p in problems),
            hint="each entry needs at least an 'id' (asst_..., letters, digits, _ and -)",
        )
    return assistants


def _read_api_assistant(data: dict[str, Any]) -> Assistant:
    try:
        return Assistant.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LLMCallError(
            f"{API_LABEL}: the API sent an assistant we cannot read "
            f"({data.get('id')!r}{_location(first['loc'])}: {first['msg']})"
        ) from None


def _quietly(method: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Call a beta Assistants method without the SDK's DeprecationWarning: we call it on purpose.

    The SDK warns when the method is called, so the filter covers the call only, never an
    ``await`` (``catch_warnings`` is process-wide state).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return method(*args, **kwargs)


def _location(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _kind(data: Any) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(data), "null" if data is None else type(data).__name__
    )
