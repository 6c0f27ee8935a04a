"""CSV datasets: a header row names the columns, each record below it is a row."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from prompttracker.config.loader import union_options
from prompttracker.config.models import DatasetRow
from prompttracker.config.tabular.table import (
    PERSONA,
    ROW_FIELDS,
    Column,
    Invalid,
    Issue,
    Row,
    Table,
    parse_json,
    short,
)
from prompttracker.errors import ConfigError, did_you_mean

MAX_CELL_CHARS = 1_000_000  # one cell; a longer one is most likely a quote left open
_WHOLE_NUMBER = re.compile(r"\s*[+-]?[0-9]+\s*")


def parse_csv(text: str) -> Table:
    """The header, then the rows, each with the line it starts on. A record of only empty
    cells is skipped (spreadsheets write them); reading goes on past a bad record."""
    table = Table(empty="the file is empty (a header row, then one row per line)")
    table.persona_reason = (
        f"the file has an {PERSONA} column, so every row is a conversation: fill the cell in, "
        "or drop the column for single_turn rows"
    )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header_line, end = None, 0
    with _cell_limit():
        while True:
            start = end + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                end = reader.line_num
                if header_line is None:  # no columns to read the rows by
                    table.issues.append(Issue(start, None, f"header: {_csv_error(exc)}"))
                    return table
                table.issues.append(Issue(start, table.next_number(), _csv_error(exc)))
                continue
            end = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            table.spend(len(record), "cells")
            if header_line is None:
                header_line = start
                table.columns = _header(record, start, table.issues)
                table.has_persona = any(c and c.name == PERSONA for c in table.columns)
            else:
                _read_row(table, record, start, header_line)
    if header_line is not None:
        table.empty = f"the header (line {header_line}) has no rows under it"
    return table


@contextmanager
def _cell_limit() -> Iterator[None]:
    """``csv``'s cell size limit is process-wide: set it for this read only."""
    previous = csv.field_size_limit(MAX_CELL_CHARS)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _csv_error(exc: csv.Error) -> str:
    text = str(exc)
    if text.startswith("field larger than field limit"):
        return f"a cell longer than {MAX_CELL_CHARS:,} characters (a quote left open?)"
    if text == "unexpected end of data":
        return "a quoted cell is not closed before the end of the file"
    return f"not valid CSV ({text}): quote a cell that holds quotes, and double them inside"


def _header(record: list[str], line: int, issues: list[Issue]) -> list[Column | None]:
    """Each header cell's column (``None`` for one that cannot be used, with its issue)."""
    if len(record) == 1 and (";" in record[0] or "\t" in record[0]):
        separator = "a semicolon" if ";" in record[0] else "a tab"
        message = f"the header is one column holding {separator}: pt reads comma-separated files"
        issues.append(Issue(line, None, message + "; export the file with commas"))
    columns: list[Column | None] = []
    seen: dict[Column, int] = {}
    for index, cell in enumerate(record, 1):
        try:
            column: Column | None = _column(cell.strip(), index)
        except Invalid as exc:
            issues.append(Issue(line, None, str(exc)))
            column = None
        if column is not None and column in seen:
            what = f"variable {column.name!r}" if column.kind == "variable" else repr(column.name)
            issues.append(Issue(line, None, f"columns {seen[column]} and {index} both fill {what}"))
            column = None
        if column is not None:
            seen[column] = index
        columns.append(column)
    return columns


def _column(label: str, index: int) -> Column:
    """A row field when ``label`` is one's name, else a variable; a label that looks like a
    misspelt field (or holds a dot) is refused rather than read as a variable nobody uses."""
    if not label:
        raise Invalid(f"column {index} has no name: name it, or remove it and its cells")
    if label in ROW_FIELDS:
        return Column(label, _kind(DatasetRow.model_fields[label].annotation))
    if label == "variables":
        raise Invalid(
            "column 'variables': give each variable its own column ('company' or "
            "'variables.company')"
        )
    variable = label.removeprefix("variables.")
    if variable != label:
        if not variable:
            raise Invalid(f"column {index} ('variables.') names no variable")
        return Column(variable)
    if "." in label:
        rest = label.split(".", 1)[1]
        raise Invalid(
            f"column {label!r}: unknown column"
            + did_you_mean(label, [*ROW_FIELDS, f"variables.{rest}"])
            + " (a variable's name cannot hold '.')"
        )
    normalized = label.lower().replace(" ", "_").replace("-", "_")
    near = get_close_matches(normalized, ROW_FIELDS, n=1, cutoff=0.8)
    if near:
        raise Invalid(
            f"column {label!r}: unknown column; did you mean {near[0]!r}? (for a variable of "
            f"that name, name the column 'variables.{label}')"
        )
    return Column(label)


def _kind(annotation: Any) -> str:
    """How a cell becomes the field's value: as text, a number, a boolean, or JSON."""
    options = [o for o in union_options(annotation) if o is not type(None)]
    if all(o is str for o in options):
        return "text"
    if options == [bool]:
        return "boolean"
    if options == [int]:
        return "integer"
    if set(options) <= {int, float}:
        return "number"
    return "json"


def _read_row(table: Table, record: list[str], line: int, header_line: int) -> None:
    number = table.next_number()
    if len(record) != len(table.columns):
        message = (
            f"{len(record)} cell(s), but the header (line {header_line}) has "
            f"{len(table.columns)} column(s): quote a cell that holds a comma, and give every "
            "row one cell per column (empty for none)"
        )
        table.issues.append(Issue(line, number, message))
        return
    fields: dict[str, Any] = {}
    for column, raw in zip(table.columns, record, strict=True):
        if column is None or raw == "":
            continue
        cell = raw.replace("\r\n", "\n")  # a line break in a cell is "\n", as YAML reads it
        if column.kind == "variable":
            fields.setdefault("variables", {})[column.name] = cell
            continue
        try:
            fields[column.name] = _cell_value(column.kind, cell)
        except Invalid as exc:
            table.issues.append(Issue(line, number, f"{column.name}: {exc}"))
    table.rows.append(Row(line, number, fields))


def _cell_value(kind: str, cell: str) -> Any:
    if kind == "text":
        return cell
    if kind == "integer":
        if not _WHOLE_NUMBER.fullmatch(cell):
            raise Invalid(f"expected a whole number, found {short(cell)}")
        return int(cell)
    if kind == "number":
        try:
            number = float(cell)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise Invalid(f"expected a number, found {short(cell)}")
        return number
    if kind == "boolean":
        if cell.strip().lower() not in ("true", "false"):
            raise Invalid(f"expected true or false, found {short(cell)}")
        return cell.strip().lower() == "true"
    try:
        return parse_json(cell)
    except Invalid as exc:
        example = '{"lookup_order": {"status": "ok"}}'
        raise Invalid(f"{exc}; write the cell as JSON, e.g. {example}") from None


def csv_record(path: Path, table: Table, row: dict[str, Any], newline: str) -> str:
    """``row`` as one record under the file's header; refused when a value has no column."""
    fields = {k: v for k, v in row.items() if k != "variables"}
    variables = dict(row.get("variables") or {})
    if PERSONA in fields and not table.has_persona:
        raise ConfigError(
            f"{path} is single_turn (it has no {PERSONA} column) and the row has a simulated "
            "user; it was not changed",
            hint="save the row into a conversational dataset",
        )
    cells = []
    for column in table.columns:
        if column is None:
            continue  # not reached: the file loaded
        if column.kind == "variable":
            value = variables.pop(column.name, None)
            if value is not None and not isinstance(value, str):
                raise ConfigError(
                    f"{path}: variable {column.name!r} is {type(value).__name__}, and a CSV cell "
                    "is text; it was not changed",
                    hint="save the row into a JSONL or YAML dataset, which keep types",
                )
            cells.append(value or "")
        else:
            cells.append(_cell_text(column.kind, fields.pop(column.name, None)))
    missing = [*fields, *variables]
    if missing:
        raise ConfigError(
            f"{path} has no column for {', '.join(map(repr, missing))} of the row; it was not "
            "changed",
            hint="add the column(s) to the header (and a cell to every row), then save again",
        )
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=newline).writerow(cells)
    return buffer.getvalue()


def _cell_text(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if kind == "boolean":
        return "true" if value else "false"
    return str(value)
