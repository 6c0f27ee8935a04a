"""Edit dataset files in place: add one row and leave every other byte of the file as it was."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from prompttracker.config.loader import SAFE_LOADER, parse_yaml
from prompttracker.config.models import Dataset
from prompttracker.errors import ConfigError

# Long strings stay on one line: folding them would only make the diff noisier.
_WIDTH = 1_000_000
# Characters YAML reads as line breaks besides "\n"; a string holding one is double-quoted,
# where they are escaped, so that every line break the new item's text has is a "\n".
_ODD_BREAKS = re.compile("[\r\x85\u2028\u2029]")
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
_SKIPPED_TOKENS = (yaml.BlockEndToken, yaml.DocumentEndToken, yaml.StreamEndToken)


class _RowDumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` writing multi-line strings as ``|`` blocks, as people write them."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _ODD_BREAKS.search(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RowDumper.add_representer(str, _represent_str)


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to the ``rows:`` block list of the dataset file at ``path``.

    Only the new item's lines are added, after the last row (and after comment lines indented
    under it); comments, quoting, key order and every other key stay byte for byte. The new
    text must load as a ``Dataset`` with the old rows unchanged and ``row`` last, or the file
    is left untouched; it is replaced atomically, keeping its permissions. A CSV or JSONL
    dataset gets one more record or line, with the same guarantees (``append_tabular_row``).
    """
    from prompttracker.config.loader import TABULAR_SUFFIXES

    if path.suffix in TABULAR_SUFFIXES:
        from prompttracker.config.tabular.dataset import append_tabular_row

        append_tabular_row(path, row)
        return
    target = Path(os.path.realpath(path))
    original = _read(target)
    text = original.decode("utf-8")
    sequence, stop = _rows_sequence(text, path)
    try:
        old_data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise _not_yaml(path, exc) from None
    names = _row_names(old_data, path)
    name = str(row.get("name") or f"row-{len(names) + 1}")
    if name in names:
        raise ConfigError(
            f"{path}: a row named {name!r} already exists",
            hint=f"save it under another name, e.g. {_free_name(name, names)!r}",
        )
    expected = {**old_data, "rows": [*old_data["rows"], row]}
    new_text = _insert(text, sequence, stop, _render(row, sequence), path)
    try:
        inserted = parse_yaml(new_text)
    except yaml.YAMLError as exc:
        inserted = exc
    if inserted != expected:
        raise ConfigError(
            f"{path}: adding the row here would change what the file says; it was not changed",
            hint="add the row by hand, or write `rows:` as a plain block list",
        )
    _validate(inserted, path, "the new row is not valid")
    replace_file(target, original, new_text.encode("utf-8"))


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the dataset file ({exc})",
            hint="check the path and that the file is UTF-8 text you may read and write",
        ) from None
    return data


def _rows_sequence(text: str, path: Path) -> tuple[yaml.SequenceNode, int]:
    """The ``rows`` block sequence, and where its region ends: the start of the next
    top-level key, or the end of the text."""
    try:
        root = yaml.compose(text, Loader=SAFE_LOADER)
    except (yaml.YAMLError, RecursionError) as exc:
        raise _not_yaml(path, exc) from None
    pairs = root.value if isinstance(root, yaml.MappingNode) else []
    index = next((i for i, (key, _) in enumerate(pairs) if key.value == "rows"), len(pairs))
    key, value = pairs[index] if index < len(pairs) else (None, None)
    block_hint = "write rows as a block list: one `- name: ...` item per row under `rows:`"
    if isinstance(value, yaml.SequenceNode) and value.flow_style:
        raise ConfigError(
            f"{path}: `rows` is a flow list ([...]); rows can only be added to a block list",
            hint=block_hint,
        )
    if (
        key is None
        or not isinstance(value, yaml.SequenceNode)
        or not value.value
        or value.start_mark.index < key.end_mark.index  # an alias to rows written earlier
    ):
        raise ConfigError(f"{path}: `rows` is not a list of rows written out", hint=block_hint)
    following = pairs[index + 1 :]
    stop = following[0][0].start_mark.index if following else len(text)
    return value, stop


def _not_yaml(path: Path, exc: BaseException) -> ConfigError:
    return ConfigError(
        f"{path}: not valid YAML ({exc})", hint="fix the file (see `pt validate`), then save"
    )


def _row_names(data: Any, path: Path) -> list[str]:
    return [r.name for r in _validate(data, path, "fix the file first").rows]


def _validate(data: Any, path: Path, what: str) -> Dataset:
    try:
        return Dataset.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(
            f"{path}: {what}: {problems}", hint="see `pt validate` for where; nothing was saved"
        ) from None


def _free_name(name: str, names: list[str]) -> str:
    return next(f"{name} {n}" for n in range(2, len(names) + 3) if f"{name} {n}" not in names)


def _render(row: dict[str, Any], sequence: yaml.SequenceNode) -> list[str]:
    """The new item's lines, its ``-`` under the other items'."""
    try:
        dumped = yaml.dump(
            [row],
            Dumper=_RowDumper,
            default_flow_style=False,
            sort_keys=False,
            allow_unicode=True,
            width=_WIDTH,
        )
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"the row cannot be written as YAML ({exc})",
            hint="use only text, numbers, booleans, lists and mappings",
        ) from None
    indent = " " * sequence.start_mark.column
    return [indent + line if line else line for line in dumped.splitlines()]


def _insert(text: str, sequence: yaml.SequenceNode, stop: int, lines: list[str], path: Path) -> str:
    """``text`` with ``lines`` after the last row, in the file's line breaks, set apart by a
    blank line when the rows are."""
    last = sequence.value[-1]
    tokens = [
        t
        for t in yaml.scan(text, Loader=SAFE_LOADER)
        if last.start_mark.index <= t.start_mark.index < stop and not isinstance(t, _SKIPPED_TOKENS)
    ]
    position, chomping = _end_of_row(text, tokens[-1])
    position = _skip_nested_comments(text, position, stop, sequence.start_mark.column)
    newline = "\r\n" if "\r\n" in text else "\n"
    if position == len(text) and not text.endswith(("\n", "\r")):
        if chomping in ("clip", "keep"):
            raise ConfigError(
                f"{path}: the last row ends in a `|` or `>` block with no line break at the end "
                "of the file; a row added after it would add a line break to that text",
                hint="end the file with a line break (or write the block as `|-`), then save",
            )
        text += newline
        position = len(text)
    # A blank line after a ``|+`` block would become part of its text.
    if _blank_line_before(text, last) and chomping != "keep":
        lines = ["", *lines]
    return text[:position] + newline.join([*lines, ""]) + text[position:]


def _end_of_row(text: str, token: yaml.Token) -> tuple[int, str | None]:
    """Where the line after the last row's last token starts, and that token's chomping
    (``clip``, ``strip`` or ``keep``) when it is a ``|`` or ``>`` block."""
    end = token.end_mark.index
    if not isinstance(token, yaml.ScalarToken) or token.style not in ("|", ">"):
        return _after_line(text, end), None
    header = re.match(r"[|>]([-+0-9]*)", text[token.start_mark.index :])
    indicators = header.group(1) if header else ""
    if "+" not in indicators:
        # The scanner's end is past the blank lines that follow the block, not part of it.
        content_end = len(text[:end].rstrip(" \t\r\n\x85\u2028\u2029"))
        return _after_line(text, content_end), "strip" if "-" in indicators else "clip"
    line_start = text.rfind("\n", 0, end) + 1
    if text[line_start:end].strip(" "):
        return _after_line(text, end), "keep"
    return line_start, "keep"


def _after_line(text: str, index: int) -> int:
    """The start of the line after the one ``index`` is on (or the end of the text)."""
    match = _LINE_BREAK.search(text, index)
    return match.end() if match else len(text)


def _skip_nested_comments(text: str, position: int, stop: int, column: int) -> int:
    """Past the comment lines at ``position`` indented deeper than ``column`` (the items'
    ``-``): they belong to the last row. Others stay with what follows the rows."""
    while position < stop:
        end = _after_line(text, position)
        line = text[position:end]
        content = line.lstrip(" ")
        if not content.startswith("#") or len(line) - len(content) <= column:
            break
        position = end
    return position


def _blank_line_before(text: str, item: yaml.Node) -> bool:
    """Whether the rows are set apart by blank lines (judged by the line above the last)."""
    lines = _LINE_BREAK.split(text[: item.start_mark.index])
    return len(lines) > 2 and not lines[-2].strip()


def replace_file(path: Path, original: bytes, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync,
    ``os.replace``), keeping its permissions; unless the file changed since it was read."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        if path.read_bytes() != original:
            raise ConfigError(
                f"{path}: the file changed while the row was being added; it was not saved",
                hint="save the row again",
            )
        os.replace(temporary, path)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from None
        raise


def _cannot_write(path: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"{path}: cannot write the dataset file ({exc}); it was not changed",
        hint="check that you may write to the file and its folder, and that the disk has room",
    )
