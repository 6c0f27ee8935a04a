"""JSON Lines datasets: one JSON object per line, one row each; an optional first line
``{"dataset": {...}}`` holds the dataset's own fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prompttracker.config.tabular.table import (
    DATASET_FIELDS,
    PERSONA,
    Invalid,
    Issue,
    Row,
    Table,
    json_size,
    parse_json,
)
from prompttracker.errors import ConfigError, did_you_mean

SETTINGS_EXAMPLE = '{"dataset": {"mode": "single_turn"}}'


def parse_jsonl(text: str) -> Table:
    """Every non-blank line as a row (or the first as the dataset's fields), with its line;
    reading goes on past a bad line."""
    table = Table(empty="the file has no JSON lines (one row object per line)")
    first = True
    # Only "\n" ends a line: a JSON string may hold U+2028 and the other breaks splitlines sees.
    for index, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        is_first, first = first, False
        try:
            value = parse_json(line)
            table.spend(json_size(value), "JSON values")
        except Invalid as exc:
            table.issues.append(Issue(index, table.next_number(), str(exc)))
            continue
        if isinstance(value, dict) and "dataset" in value:
            _read_settings(table, value, index, is_first)
            continue
        number = table.next_number()
        if not isinstance(value, dict):
            found = f"expected a JSON object (one row per line), found {_kind(value)}"
            table.issues.append(Issue(index, number, found))
        table.rows.append(Row(index, number, value))
        table.has_persona = table.has_persona or (isinstance(value, dict) and PERSONA in value)
    table.persona_reason = (
        f"the first line sets mode conversational: add {PERSONA}, or set mode single_turn"
        if "mode" in table.settings
        else f"a row has {PERSONA}, so every row is a conversation: add it, or make the first "
        f"line {SETTINGS_EXAMPLE}"
    )
    return table


def _read_settings(table: Table, value: dict[str, Any], line: int, is_first: bool) -> None:
    settings = value["dataset"]
    if not is_first:
        message = f"a {SETTINGS_EXAMPLE} line must be the first line of the file"
        table.issues.append(Issue(line, None, message))
    elif len(value) > 1 or not isinstance(settings, dict):
        message = (
            f"the first line holds only the dataset's fields, as {SETTINGS_EXAMPLE}; write rows "
            "on lines of their own"
        )
        table.issues.append(Issue(line, None, message))
    else:
        table.settings_line = line
        for key, setting in settings.items():
            if key in DATASET_FIELDS:
                table.settings[key] = setting
            else:
                message = f"dataset.{key}: unknown field" + did_you_mean(key, DATASET_FIELDS)
                table.issues.append(Issue(line, None, message))


def _kind(value: Any) -> str:
    kinds = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def jsonl_line(path: Path, table: Table, row: dict[str, Any]) -> str:
    """``row`` as one JSON line (no line break); refused when it would change the mode."""
    if PERSONA in row and table.mode == "single_turn" and "mode" not in table.settings:
        raise ConfigError(
            f"{path} is single_turn (no row has {PERSONA}) and a row with one would make every "
            "row a conversation; it was not changed",
            hint=f"make the file's first line {SETTINGS_EXAMPLE}, or save the row into a "
            "conversational dataset",
        )
    try:
        return json.dumps(row, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"the row cannot be written as JSON ({exc})",
            hint="use only text, numbers, booleans, lists and mappings",
        ) from None
