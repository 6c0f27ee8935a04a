"""What a CSV or JSONL file says before the models check it, and the limits on reading it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from prompttracker.config.loader import MAX_DEPTH, MAX_VALUES, TooDeep, count_values
from prompttracker.config.models import Dataset, DatasetRow

# Far beyond any dataset worth playing (each row is a conversation with a model), far below
# what would take minutes to check: every row is rendered with every template that uses it
# (10,000 rows validate in about 2 s). Cells and JSON values share the YAML loader's budget.
MAX_ROWS = 100_000

PERSONA = "interlocutor_simulation_prompt"
ROW_FIELDS = [n for n in DatasetRow.model_fields if n != "variables"]
DATASET_FIELDS = [n for n in Dataset.model_fields if n != "rows"]


class TooBig(Exception):
    """A file past one of the limits: refused whole, nothing of it is checked."""


class Invalid(ValueError):
    """One value that cannot be read (bad JSON, a bad number); its message says why."""


@dataclass(frozen=True)
class Issue:
    """A problem at a line of the file (and its row number, for a row's problem)."""

    line: int | None
    row: int | None
    message: str

    @property
    def location(self) -> str:
        if self.line is None:
            return ""
        return f"line {self.line}" + (f" (row {self.row})" if self.row else "")


@dataclass(frozen=True)
class Column:
    """What a CSV column fills: a row field (its cells parsed by ``kind``) or a variable."""

    name: str
    kind: str = "variable"  # variable | text | integer | number | boolean | json


@dataclass
class Row:
    line: int  # where the row starts in the file
    number: int  # 1-based among the rows: row-N when it has no name
    fields: Any  # a dict, unless the line held something else (reported as read)


@dataclass
class Table:
    """A file's rows with their lines, the issues found reading it, and why its mode is what
    it is."""

    rows: list[Row] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # a JSONL first line's fields
    settings_line: int | None = None
    columns: list[Column | None] = field(default_factory=list)  # CSV only
    has_persona: bool = False
    persona_reason: str = ""
    empty: str = "the file is empty"
    counted: int = 0  # rows met, read or not
    values: int = 0

    @property
    def mode(self) -> Any:
        if "mode" in self.settings:
            return self.settings["mode"]
        return "conversational" if self.has_persona else "single_turn"

    def next_number(self) -> int:
        """The number of the row being read; past ``MAX_ROWS`` the file is refused."""
        self.counted += 1
        if self.counted > MAX_ROWS:
            raise TooBig(f"it has more than {MAX_ROWS:,} rows: split it into several datasets")
        return self.counted

    def spend(self, values: int, what: str) -> None:
        """Count cells or JSON values read; past ``MAX_VALUES`` the file is refused."""
        self.values += values
        if self.values > MAX_VALUES:
            raise TooBig(f"it holds more than {MAX_VALUES:,} {what}: split it into datasets")


def parse_json(text: str) -> Any:
    """``json.loads`` refusing what the YAML loader refuses: duplicate keys (the last would
    silently win) and nesting past ``MAX_DEPTH``. Raises ``Invalid`` saying why."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}" if "\n" in text else f"column {exc.colno}"
        raise Invalid(f"invalid JSON: {exc.msg} ({where})") from None
    except RecursionError:
        raise Invalid(f"refused: nested more than {MAX_DEPTH} levels deep") from None
    json_size(value)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise Invalid(f"invalid JSON: duplicate key {key!r}: the last one would win; keep one")
        seen.add(key)
    return dict(pairs)


def json_size(value: Any) -> int:
    """How many values ``value`` holds (keys too, as the YAML loader counts them); nesting past
    ``MAX_DEPTH`` raises ``Invalid``."""
    try:
        return count_values(value, limit=None)
    except TooDeep:
        raise Invalid(f"refused: nested more than {MAX_DEPTH} levels deep") from None


def short(text: str) -> str:
    """``text`` quoted for a message, cut at 40 characters."""
    return repr(text if len(text) <= 40 else text[:40] + "…")
