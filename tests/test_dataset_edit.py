"""append_row: one row added to a dataset file, every other byte of it left as it was."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.config import edit
from prompttracker.config.edit import append_row
from prompttracker.config.loader import load_project
from prompttracker.config.models import DatasetRow
from prompttracker.errors import ConfigError
from tests.project_factory import write_project

ROW = {
    "name": "refund asked twice",
    "variables": {"company": "Acme", "opening_message": "I asked for a refund twice."},
    "interlocutor_simulation_prompt": "You asked twice already.\nYou are losing patience.\n",
    "max_turns": 3,
}
# ROW as append_row writes it under items whose "-" is indented by two spaces.
ROW_TEXT = """\
  - name: refund asked twice
    variables:
      company: Acme
      opening_message: I asked for a refund twice.
    interlocutor_simulation_prompt: |
      You asked twice already.
      You are losing patience.
    max_turns: 3
"""

COMMENTED = """\
# Simulated customers. Each row is one conversation.
mode: conversational
rows:
  # the classic
  - name: angry double charge
    variables: { company: Acme, opening_message: 'Charged twice!' }  # single quotes kept
    interlocutor_simulation_prompt: "You were charged twice."
    max_turns: 3
"""
ROWS_NOT_LAST = """\
mode: conversational
rows:
  - name: angry double charge
    variables: {company: Acme, opening_message: "Charged twice!"}
    interlocutor_simulation_prompt: >
      You were charged twice.
      You want a refund.

    max_turns: 3
    # max_turns: 5 was too many

# What the dataset is for.
description: billing conversations
"""


def dataset_file(tmp_path: Path, text: str, newline: str = "\n") -> Path:
    path = tmp_path / "billing.yaml"
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def load_project_rows(path: Path) -> list[DatasetRow]:
    """The rows of the dataset at ``path`` as a project loads them."""
    root = path.parent / "project"
    root.mkdir()
    project = write_project(root, prompts={}, datasets={"billing": path.read_text()})
    return load_project(project).datasets["billing"].rows


def test_appends_after_last_row_and_keeps_comments(tmp_path):
    path = dataset_file(tmp_path, COMMENTED)
    append_row(path, ROW)
    assert path.read_text() == COMMENTED + ROW_TEXT
    assert "# the classic" in path.read_text()


def test_rows_not_last_key_inserts_before_what_follows(tmp_path):
    path = dataset_file(tmp_path, ROWS_NOT_LAST)
    append_row(path, ROW)
    # After the last row's own (deeper-indented) comment, before the blank line and the
    # comment that belong to `description`.
    split = ROWS_NOT_LAST.index("\n# What")
    assert path.read_text() == ROWS_NOT_LAST[:split] + ROW_TEXT + ROWS_NOT_LAST[split:]


def test_blank_lines_after_a_last_literal_block_stay_after_the_new_row(tmp_path):
    text = (
        "rows:\n  - name: a\n    interlocutor_simulation_prompt: |\n      Hello.\n\n"
        "# What the dataset is for.\ndescription: x\n"
    )
    path = dataset_file(tmp_path, text)
    append_row(path, ROW)
    split = text.index("\n# What")
    assert path.read_text() == text[:split] + ROW_TEXT + text[split:]
    assert load_project_rows(path)[0].interlocutor_simulation_prompt == "Hello.\n"


def test_blank_lines_between_rows_are_kept_up(tmp_path):
    text = COMMENTED + "\n  - name: second\n    interlocutor_simulation_prompt: Hi.\n"
    path = dataset_file(tmp_path, text)
    append_row(path, ROW)
    assert path.read_text() == text + "\n" + ROW_TEXT


def test_kept_block_keeps_its_blank_lines(tmp_path):
    """No blank separator after ``|+`` text: it would become part of that text."""
    text = COMMENTED + "\n  - name: second\n    interlocutor_simulation_prompt: |+\n      Hi.\n\n"
    path = dataset_file(tmp_path, text)
    append_row(path, ROW)
    assert path.read_text() == text + ROW_TEXT
    assert load_project_rows(path)[1].interlocutor_simulation_prompt == "Hi.\n\n"


def test_strings_with_other_line_breaks_round_trip(tmp_path):
    message = "Line one.\nLine two\u2028still two.\x85Line three."
    path = dataset_file(tmp_path, COMMENTED)
    append_row(path, {**ROW, "variables": {"opening_message": message}})
    assert load_project_rows(path)[-1].variables == {"opening_message": message}


def test_file_without_trailing_newline(tmp_path):
    text = COMMENTED.rstrip("\n")
    path = dataset_file(tmp_path, text)
    append_row(path, ROW)
    assert path.read_text() == text + "\n" + ROW_TEXT


def test_last_row_ending_in_a_literal_block_without_trailing_newline(tmp_path):
    text = "rows:\n- name: a\n  interlocutor_simulation_prompt: |-\n    Line one.\n    Line two."
    path = dataset_file(tmp_path, text)
    append_row(path, ROW)
    dedented = "".join(line[2:] if line.strip() else line for line in ROW_TEXT.splitlines(True))
    assert path.read_text() == text + "\n" + dedented  # lined up with an unindented "-"


def test_clipped_block_at_end_without_newline_is_refused(tmp_path):
    """A line break after ``|`` text would become part of it: refused, not changed."""
    text = "rows:\n- name: a\n  interlocutor_simulation_prompt: |\n    Line one."
    path = dataset_file(tmp_path, text)
    with pytest.raises(ConfigError, match="no line break at the end of the file"):
        append_row(path, ROW)
    assert path.read_text() == text
    path.write_text(text + "\n")
    append_row(path, ROW)
    assert load_project_rows(path)[0].interlocutor_simulation_prompt == "Line one.\n"


def test_crlf_file_keeps_its_line_breaks(tmp_path):
    path = dataset_file(tmp_path, ROWS_NOT_LAST, newline="\r\n")
    append_row(path, ROW)
    data = path.read_bytes()
    split = ROWS_NOT_LAST.index("\n# What")
    expected = ROWS_NOT_LAST[:split] + ROW_TEXT + ROWS_NOT_LAST[split:]
    assert data == expected.replace("\n", "\r\n").encode()


def test_multi_line_prompt_is_a_literal_block_and_round_trips(tmp_path):
    prompt = "You are Ana.\n\n  You indent this line.\nYou end without a newline."
    path = dataset_file(tmp_path, COMMENTED)
    append_row(path, {**ROW, "interlocutor_simulation_prompt": prompt, "variables": {}})
    added = path.read_text()[len(COMMENTED) :]
    assert "    interlocutor_simulation_prompt: |-\n      You are Ana.\n\n" in added
    assert load_project_rows(path)[-1].interlocutor_simulation_prompt == prompt


def test_duplicate_name_is_refused_and_file_untouched(tmp_path):
    path = dataset_file(tmp_path, COMMENTED)
    with pytest.raises(ConfigError) as caught:
        append_row(path, {**ROW, "name": "angry double charge"})
    assert "'angry double charge' already exists" in caught.value.message
    assert str(path) in caught.value.message
    assert "'angry double charge 2'" in (caught.value.hint or "")
    assert path.read_text() == COMMENTED


def test_unnamed_rows_count_under_their_default_names(tmp_path):
    path = dataset_file(tmp_path, "mode: single_turn\nrows:\n  - variables: {q: hi}\n")
    with pytest.raises(ConfigError, match="'row-1' already exists"):
        append_row(path, {"name": "row-1", "variables": {"q": "again"}})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("mode: single_turn\nrows: [ {name: a, variables: {q: hi}} ]\n", "flow list"),
        ("mode: single_turn\nrows: []\n", "flow list"),
        ("mode: single_turn\nrows:\n", "not a list"),
        ("mode: single_turn\nrows: {name: a}\n", "not a list"),
        ("mode: single_turn\n", "not a list"),
    ],
)
def test_rows_that_are_not_a_block_list_are_refused(tmp_path, text, words):
    path = dataset_file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        append_row(path, {"name": "b", "variables": {"q": "x"}})
    assert words in caught.value.message
    assert str(path) in caught.value.message
    assert "block list" in (caught.value.hint or "")
    assert path.read_text() == text


def test_invalid_row_is_refused_and_file_untouched(tmp_path):
    path = dataset_file(tmp_path, COMMENTED)
    with pytest.raises(ConfigError, match="max_turns"):
        append_row(path, {**ROW, "max_turns": 0})
    with pytest.raises(ConfigError, match="interlocutor_simulation_prompt"):
        append_row(path, {"name": "no simulated user"})
    assert path.read_text() == COMMENTED
    assert [p.name for p in tmp_path.iterdir()] == ["billing.yaml"]  # no temporary file left


def test_text_that_would_change_the_file_is_not_written(tmp_path, monkeypatch):
    """The last line of defence: the new text must say what the old one said, plus the row."""
    monkeypatch.setattr(edit, "_render", lambda row, sequence: ["  - name: x", "mode: oops"])
    path = dataset_file(tmp_path, COMMENTED)
    with pytest.raises(ConfigError, match="would change what the file says"):
        append_row(path, ROW)
    assert path.read_text() == COMMENTED


def test_failed_write_leaves_file_and_no_temporary(tmp_path, monkeypatch):
    def fail(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(edit.os, "replace", fail)
    path = dataset_file(tmp_path, COMMENTED)
    with pytest.raises(ConfigError, match="cannot write"):
        append_row(path, ROW)
    assert path.read_text() == COMMENTED
    assert [p.name for p in tmp_path.iterdir()] == ["billing.yaml"]


def test_file_changed_meanwhile_is_not_overwritten(tmp_path, monkeypatch):
    path = dataset_file(tmp_path, COMMENTED)
    fsync = edit.os.fsync

    def edit_meanwhile(fd: int) -> None:
        fsync(fd)
        path.write_text(COMMENTED + "# edited by hand\n")

    monkeypatch.setattr(edit.os, "fsync", edit_meanwhile)
    with pytest.raises(ConfigError, match="changed while"):
        append_row(path, ROW)
    assert path.read_text() == COMMENTED + "# edited by hand\n"
    assert [p.name for p in tmp_path.iterdir()] == ["billing.yaml"]


def test_missing_or_broken_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        append_row(tmp_path / "nope.yaml", ROW)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("rows:\n  - name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="cannot read"):
        append_row(latin1, ROW)
    path = dataset_file(tmp_path, "rows:\n  - name: a\n    name: b\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        append_row(path, ROW)


def test_keeps_permissions_and_leaves_no_temporary_file(tmp_path):
    path = dataset_file(tmp_path, COMMENTED)
    path.chmod(0o640)
    append_row(path, ROW)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["billing.yaml"]


def test_result_loads_and_validates_in_a_project(tmp_path):
    project = write_project(tmp_path)
    path = project / "datasets" / "billing.yaml"
    old_rows = load_project(project).datasets["billing"].rows
    append_row(path, ROW)
    rows = load_project(project).datasets["billing"].rows
    assert rows[:-1] == old_rows
    assert rows[-1].model_dump() == {**ROW, "mock_function_outputs": {}}
    result = CliRunner().invoke(app, ["validate", "-p", str(project)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "1 dataset(s)" in result.output


def test_validate_sees_the_new_row(tmp_path):
    """The control for the test above: a new row the prompt cannot render with fails."""
    project = write_project(tmp_path)
    append_row(project / "datasets" / "billing.yaml", {**ROW, "variables": {}})
    result = CliRunner().invoke(app, ["validate", "-p", str(project)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "refund asked twice" in result.output
