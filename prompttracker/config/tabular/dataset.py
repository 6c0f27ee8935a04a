"""A CSV or JSONL file as a ``Dataset``: load it (every problem at its line), append a row."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prompttracker.config.loader import Problem, error_message, location_text, relative
from prompttracker.config.models import Dataset, DatasetRow
from prompttracker.config.tabular.csv_file import csv_record, parse_csv
from prompttracker.config.tabular.jsonl_file import jsonl_line, parse_jsonl
from prompttracker.config.tabular.table import PERSONA, Issue, Row, Table, TooBig
from prompttracker.errors import ConfigError

MAX_FILE_BYTES = 50_000_000
MAX_REPORTED = 100  # problems listed per file: a broken column would otherwise list every row


def load_tabular(root: Path, path: Path, problems: list[Problem]) -> Dataset | None:
    """The dataset in a ``.csv`` or ``.jsonl`` file, or ``None`` with its problems added."""
    name = relative(root, path)
    try:
        dataset, _, issues = read_dataset(path, read_bytes(path).decode("utf-8-sig"))
    except TooBig as exc:
        problems.append(Problem(name, "", f"refused: {exc}"))
        return None
    except OSError as exc:
        problems.append(Problem(name, "", f"cannot read file: {exc}"))
        return None
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x}): save the file as UTF-8"
        problems.append(Problem(name, f"line {line}", message + " (Excel: CSV UTF-8)"))
        return None
    issues.sort(key=lambda issue: issue.line or 0)
    problems.extend(Problem(name, i.location, i.message) for i in issues[:MAX_REPORTED])
    if len(issues) > MAX_REPORTED:
        more = len(issues) - MAX_REPORTED
        problems.append(Problem(name, "", f"… and {more:,} more problem(s) in this file"))
    return dataset


def read_bytes(path: Path) -> bytes:
    """The file's bytes; past ``MAX_FILE_BYTES`` it is refused, and no more than that read."""
    size = path.stat().st_size
    if size <= MAX_FILE_BYTES:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
        size = len(data)
    if size > MAX_FILE_BYTES:
        raise TooBig(
            f"the file has {size:,} bytes, more than the {MAX_FILE_BYTES:,} a dataset may have: "
            "split it into several datasets"
        )
    return data


def read_dataset(path: Path, text: str) -> tuple[Dataset | None, Table, list[Issue]]:
    """Parse ``text`` as the kind of file ``path`` names, then check it as YAML datasets are
    checked: each row by ``DatasetRow``, names unique, conversational rows with a simulated
    user; the dataset (``None`` when there are issues), what was read, the issues."""
    table = parse_csv(text) if path.suffix == ".csv" else parse_jsonl(text)
    issues = [*table.issues, *_settings_issues(table)]
    rows = []
    for row in table.rows:
        if not isinstance(row.fields, dict):
            continue  # reported as it was read
        try:
            rows.append(DatasetRow.model_validate(row.fields))
        except ValidationError as exc:
            issues += [Issue(row.line, row.number, _field_message(e)) for e in exc.errors()]
    issues += _name_issues(table)
    if table.mode == "conversational":
        missing = f"{PERSONA}: missing (who the simulated user is); {table.persona_reason}"
        issues += [
            Issue(row.line, row.number, missing)
            for row in table.rows
            if isinstance(row.fields, dict) and not str(row.fields.get(PERSONA) or "").strip()
        ]
    if not table.rows and not issues:
        issues.append(Issue(None, None, f"no rows: {table.empty}; add at least one row"))
    if issues:
        return None, table, issues
    try:
        dataset = Dataset.model_validate({**table.settings, "mode": table.mode, "rows": rows})
    except ValidationError as exc:  # what the checks above did not foresee, placed if it can be
        return None, table, [_dataset_issue(table, e) for e in exc.errors()]
    return dataset, table, []


def _field_message(error: Any) -> str:
    if isinstance(error.get("input"), bool) and error["type"] in ("int_type", "float_type"):
        message = f"expected a number, found the JSON boolean {str(error['input']).lower()}"
    else:
        message = error_message(error, DatasetRow)
    return f"{location_text(error['loc'])}: {message}" if error["loc"] else message


def _dataset_issue(table: Table, error: Any) -> Issue:
    loc = error["loc"]
    if loc[:1] == ("rows",) and len(loc) > 1 and isinstance(loc[1], int):
        row = table.rows[loc[1]]
        return Issue(row.line, row.number, _field_message({**error, "loc": loc[2:]}))
    return Issue(table.settings_line, None, error_message(error, Dataset))


def _settings_issues(table: Table) -> list[Issue]:
    """The first JSONL line's fields, checked by the model itself (with a stand-in row)."""
    if not table.settings:
        return []
    stand_in = DatasetRow(name="stand-in", interlocutor_simulation_prompt="stand-in")
    try:
        Dataset.model_validate({**table.settings, "rows": [stand_in]})
    except ValidationError as exc:
        return [
            Issue(
                table.settings_line,
                None,
                f"dataset.{location_text(e['loc'])}: {error_message(e, Dataset)}",
            )
            for e in exc.errors()
            if e["loc"][:1] != ("rows",)
        ]
    return []


def _name_issues(table: Table) -> list[Issue]:
    """Row names are unique; an unnamed row is called ``row-N``, as in a YAML dataset."""
    issues: list[Issue] = []
    first: dict[str, Row] = {}
    for row in table.rows:
        raw = row.fields.get("name") if isinstance(row.fields, dict) else None
        name = raw if isinstance(raw, str) and raw else f"row-{row.number}"
        other = first.setdefault(name, row)
        if other is not row:
            message = (
                f"name: {name!r} is also the name of row {other.number} (line {other.line}); "
                "row names must be unique (an unnamed row is called row-N)"
            )
            issues.append(Issue(row.line, row.number, message))
    return issues


def append_tabular_row(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to a CSV or JSONL dataset as one more record; every byte before it stays.

    The new file must load with the old rows unchanged and ``row`` last, in the same mode, or
    it is left untouched; it is replaced atomically, keeping its permissions.
    """
    from prompttracker.config.edit import replace_file  # edit imports the loader, which imports us

    target = Path(os.path.realpath(path))
    try:
        original = read_bytes(target)
        text = original.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError, TooBig) as exc:
        raise ConfigError(
            f"{path}: cannot read the dataset file ({exc})",
            hint="check the file with `pt validate`; nothing was saved",
        ) from None
    old, table, issues = read_dataset(path, text)
    if old is None:
        raise _not_saved(path, "fix the file first", issues)
    expected = _new_row(path, old, row)
    newline = "\r\n" if "\r\n" in text else "\n"
    if path.suffix == ".csv":
        record = csv_record(path, table, row, newline)
    else:
        record = jsonl_line(path, table, row) + newline
    separator = newline if text and not text.endswith(("\n", "\r")) else ""
    new, _, issues = read_dataset(path, text + separator + record)
    if new is None or new.mode != old.mode or new.rows != [*old.rows, expected]:
        raise _not_saved(path, "the row would not read back as it was given", issues)
    replace_file(target, original, original + (separator + record).encode("utf-8"))


def _new_row(path: Path, old: Dataset, row: dict[str, Any]) -> DatasetRow:
    """``row`` as the dataset will read it back; refused when its name is taken."""
    names = [r.name for r in old.rows]
    try:
        new = DatasetRow.model_validate({**row, "name": row.get("name") or f"row-{len(names) + 1}"})
    except ValidationError as exc:
        found = "; ".join(_field_message(e) for e in exc.errors())
        raise ConfigError(f"{path}: the new row is not valid: {found}") from None
    if new.name in names:
        free = next(
            f"{new.name} {n}" for n in range(2, len(names) + 3) if f"{new.name} {n}" not in names
        )
        raise ConfigError(
            f"{path}: a row named {new.name!r} already exists",
            hint=f"save it under another name, e.g. {free!r}",
        )
    return new


def _not_saved(path: Path, what: str, issues: list[Issue]) -> ConfigError:
    found = "; ".join(f"{i.location}: {i.message}" if i.location else i.message for i in issues)
    return ConfigError(
        f"{path}: {what}" + (f" ({found})" if found else "") + "; it was not changed",
        hint="see `pt validate`, or save the row into a YAML dataset",
    )
