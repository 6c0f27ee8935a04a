"""``pt evaluators list``: every evaluator type with its config keys, types and defaults."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from prompttracker.evaluators.catalog import ConfigKey, EvaluatorInfo

NEEDS = {
    "function": "model_config.tool_config.functions",
    "file_search": "file_search in model_config.tools",
    "web_search": "web_search in model_config.tools",
    "code_interpreter": "code_interpreter in model_config.tools",
}


def format_default(key: ConfigKey) -> str:
    """``required``, ``—`` for none, else the default as YAML-ish JSON (``[]``, ``true``)."""
    if key.required:
        return "required"
    if key.default is None:
        return "—"
    value: Any = key.default
    return value if isinstance(value, str) and value else json.dumps(value, ensure_ascii=False)


def evaluator_view(info: EvaluatorInfo) -> RenderableType:
    """One evaluator: name and description, what it looks at and needs, a table of its keys."""
    header = Text.assemble((info.type, "bold cyan"), " — ", info.description)
    facts = Text(f"looks at {info.looks_at}", style="dim")
    if info.requires_tool:
        facts.append(f" · needs {NEEDS.get(info.requires_tool, info.requires_tool)}")
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, expand=False)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("type")
    table.add_column("default")
    table.add_column("description")
    for key in info.keys:
        kind = f"{key.type} ({key.constraints})" if key.constraints else key.type
        table.add_row(Text(key.name), Text(kind), Text(format_default(key)), Text(key.description))
    return Group(header, facts, table)


def evaluators_view(infos: Sequence[EvaluatorInfo]) -> RenderableType:
    """Every evaluator type, one block each, and how to target a turn or role."""
    footer = Text(
        "Every evaluator also takes `name`, `turn` (1-based) and `role` (user | assistant) next "
        "to `type` and `config`.",
        style="dim",
    )
    blocks: list[RenderableType] = []
    for info in infos:
        blocks += [evaluator_view(info), Text("")]
    return Group(*blocks, footer)
