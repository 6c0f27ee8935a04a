"""Datasets as CSV and JSONL: found like YAML ones, run the same, refused as strictly, with the
line (and row) of every problem."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.config.loader import load_project
from prompttracker.config.tabular import append_tabular_row
from prompttracker.errors import ConfigError
from tests.project_factory import DATASET, HELP_PROMPT, PROMPT, write_project

runner = CliRunner()

# The billing dataset of project_factory as CSV: a BOM, CRLF line breaks, a quoted cell with a
# line break in it, a JSON cell, an empty cell (absent: the default max_turns) and a column
# with the optional variables. prefix.
BILLING_CSV = (
    "\ufeffname,company,variables.opening_message,interlocutor_simulation_prompt,max_turns,"
    "mock_function_outputs\r\n"
    'angry double charge,Acme,"I\'ve been charged twice for order 12345!","You were charged '
    'twice.\r\nYou want a refund.",2,"{""lookup_order"": {""status"": ""charged_twice""}}"\r\n'
    ",Initech,Where is my refund for order 777?,You are calm and polite.,,\r\n"
)
QUESTIONS_JSONL = (
    '{"name": "steady", "variables": {"message": "Question number 21"}}\n'
    "\n"
    '{"name": "never", "variables": {"message": "Question number 18"}}\n'
)


def project(tmp_path: Path, files: dict[str, str], prompts: dict[str, str] | None = None) -> Path:
    """The factory's prompt(s), and ``files`` (name → text) under datasets/ instead of YAML."""
    write_project(tmp_path, prompts, datasets={})
    for name, text in files.items():
        (tmp_path / "datasets" / name).write_text(text, encoding="utf-8", newline="")
    return tmp_path


def pt(*args: str):
    return runner.invoke(app, list(args))


def flat(output: str) -> str:
    return " ".join(output.split())


def db_rows(root: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(root / ".prompttracker" / "results.db") as db:
        return db.execute(sql).fetchall()


def test_a_csv_dataset_validates_and_runs_with_its_variables(tmp_path: Path) -> None:
    project(tmp_path, {"billing.csv": BILLING_CSV})
    rows = load_project(tmp_path).datasets["billing"].rows
    assert [r.name for r in rows] == ["angry double charge", "row-2"]
    assert rows[0].interlocutor_simulation_prompt == "You were charged twice.\nYou want a refund."
    assert rows[0].mock_function_outputs == {"lookup_order": {"status": "charged_twice"}}
    assert (rows[0].max_turns, rows[1].max_turns) == (2, 5)
    assert rows[1].variables == {
        "company": "Initech",
        "opening_message": "Where is my refund for order 777?",
    }

    validated = pt("validate")
    assert validated.exit_code == 0, validated.output
    assert "1 dataset(s)" in validated.output
    result = pt("run-tests", "--mock", "--transcripts", "all")
    assert result.exit_code in (0, 1), result.output
    assert 'You said: "Where is my refund for order 777?"' in flat(result.output)
    assert db_rows(tmp_path, "select dataset, row_name, variables from test_runs order by 2") == [
        ("billing", "angry double charge", json.dumps(rows[0].variables)),
        ("billing", "row-2", json.dumps(rows[1].variables)),
    ]
    rendered = db_rows(
        tmp_path, "select rendered_system_prompt, rendered_user_prompt from llm_responses"
    )
    assert (
        "You are a support agent for Initech. Be brief and kind.",
        "Where is my refund for order 777?",
    ) in rendered
    said = db_rows(tmp_path, "select content from messages where role = 'assistant'")
    assert any("I've been charged twice for order 12345!" in text for (text,) in said)

    chat = runner.invoke(
        app, ["chat", "billing_support", "--mock", "--row", "billing:row-2"], input="/system\n"
    )
    assert chat.exit_code == 0, chat.output
    assert "You are a support agent for Initech." in chat.output


def test_a_jsonl_dataset_is_single_turn_unless_a_row_has_a_simulated_user(tmp_path: Path) -> None:
    conversational = (
        '{"name": "angry", "variables": {"company": "Acme", "opening_message": "Charged twice '
        'for order 12345"}, "interlocutor_simulation_prompt": "You were charged twice.", '
        '"max_turns": 2, "mock_function_outputs": {"lookup_order": {"status": "charged_twice"}}}\n'
    )
    project(
        tmp_path,
        {"questions.jsonl": QUESTIONS_JSONL, "billing.jsonl": conversational},
        {"helper": HELP_PROMPT, "billing_support": PROMPT},
    )
    datasets = load_project(tmp_path).datasets
    assert datasets["questions"].mode == "single_turn"
    assert datasets["billing"].mode == "conversational"
    assert datasets["billing"].rows[0].max_turns == 2

    assert pt("validate").exit_code == 0
    result = pt("run-tests", "--mock", "--transcripts", "all")
    assert result.exit_code in (0, 1), result.output
    output = flat(result.output)
    assert 'You said: "Question number 21"' in output
    assert 'You said: "Charged twice for order 12345"' in output
    assert sorted(db_rows(tmp_path, "select dataset, row_name from test_runs")) == [
        ("billing", "angry"),
        ("questions", "never"),
        ("questions", "steady"),
    ]


def test_a_jsonl_first_line_holds_the_dataset_fields(tmp_path: Path) -> None:
    settings = '{"dataset": {"mode": "single_turn", "description": "two questions"}}\n'
    rows = '{"name": "a", "variables": {"message": "Hi"}, "interlocutor_simulation_prompt": "x"}\n'
    project(tmp_path, {"questions.jsonl": settings + rows}, {"helper": HELP_PROMPT})
    dataset = load_project(tmp_path).datasets["questions"]
    assert (dataset.mode, dataset.description) == ("single_turn", "two questions")


CSV_HEADER = "name,company,opening_message,interlocutor_simulation_prompt,max_turns\n"
CSV_ROW = "{name},Acme,Hi,You want a refund.,{turns}\n"


def csv_rows(*rows: tuple[str, str]) -> str:
    return CSV_HEADER + "".join(CSV_ROW.format(name=n, turns=t) for n, t in rows)


def jsonl_row(**fields: object) -> str:
    row = {
        "name": "a",
        "variables": {"company": "Acme", "opening_message": "Hi"},
        "interlocutor_simulation_prompt": "You want a refund.",
        **fields,
    }
    return json.dumps(row) + "\n"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "billing.csv",
            CSV_HEADER.replace("max_turns", "max_turn") + "a,Acme,Hi,P,3\n",
            "datasets/billing.csv: line 1: column 'max_turn': unknown column; did you mean "
            "'max_turns'? (for a variable of that name, name the column 'variables.max_turn')",
        ),
        (
            "billing.csv",
            csv_rows(("a", "3"), ("b", "five")),
            "datasets/billing.csv: line 3 (row 2): max_turns: expected a whole number, found "
            "'five'",
        ),
        (
            "billing.csv",
            csv_rows(("a", "3"), ("b", "3"), ("c", "99")),
            "datasets/billing.csv: line 4 (row 3): max_turns: Input should be less than or "
            "equal to 50",
        ),
        (
            "billing.csv",
            CSV_HEADER.replace("\n", ",mock_function_outputs\n") + "a,Acme,Hi,P,3,{lookup: 1}\n",
            "datasets/billing.csv: line 2 (row 1): mock_function_outputs: invalid JSON: "
            "Expecting property name enclosed in double quotes (column 2); write the cell as JSON",
        ),
        (
            "billing.csv",
            csv_rows(("a", "3"), ("b", "3"), ("a", "2")),
            "datasets/billing.csv: line 4 (row 3): name: 'a' is also the name of row 1 (line 2); "
            "row names must be unique",
        ),
        ("billing.csv", "", "datasets/billing.csv: no rows: the file is empty"),
        (
            "billing.csv",
            CSV_HEADER,
            "datasets/billing.csv: no rows: the header (line 1) has no rows under it",
        ),
        (
            "billing.csv",
            csv_rows(("a", "3")) + "b,Acme,Hi, you know,P,3\n",
            "datasets/billing.csv: line 3 (row 2): 6 cell(s), but the header (line 1) has 5 "
            "column(s)",
        ),
        (
            "billing.csv",
            csv_rows(("a", "3")) + 'b,Acme,"Hi\n\n,P,3\n',
            "datasets/billing.csv: line 3 (row 2): a quoted cell is not closed before the end "
            "of the file",
        ),
        (
            "billing.csv",
            csv_rows(("a", "3")) + "b,Acme,Hi,,3\n",
            "datasets/billing.csv: line 3 (row 2): interlocutor_simulation_prompt: missing (who "
            "the simulated user is); the file has an interlocutor_simulation_prompt column",
        ),
        (
            "billing.csv",
            CSV_HEADER.replace(",", ";") + "a;Acme;Hi;P;3\n",
            "datasets/billing.csv: line 1: the header is one column holding a semicolon",
        ),
        (
            "billing.csv",
            CSV_HEADER.replace("company", "variables.opening_message") + "a,Acme,Hi,P,3\n",
            "datasets/billing.csv: line 1: columns 2 and 3 both fill variable 'opening_message'",
        ),
        (
            "billing.jsonl",
            jsonl_row() + jsonl_row(name="b", max_turn=3),
            "datasets/billing.jsonl: line 2 (row 2): max_turn: unknown field; did you mean "
            "'max_turns'?",
        ),
        (
            "billing.jsonl",
            jsonl_row(max_turns="3") + jsonl_row(name="b", max_turns=True),
            "datasets/billing.jsonl: line 1 (row 1): max_turns: Input should be a valid integer",
        ),
        (
            "billing.jsonl",
            jsonl_row(max_turns=True),
            "datasets/billing.jsonl: line 1 (row 1): max_turns: expected a number, found the "
            "JSON boolean true",
        ),
        (
            "billing.jsonl",
            jsonl_row() + "\n" + '{"name": "b", "variables": {"company": "Acme",}}\n',
            "datasets/billing.jsonl: line 3 (row 2): invalid JSON: Expecting property name "
            "enclosed in double quotes (column 47)",
        ),
        (
            "billing.jsonl",
            jsonl_row() + '["b", "Acme"]\n',
            "datasets/billing.jsonl: line 2 (row 2): expected a JSON object (one row per line), "
            "found a list",
        ),
        (
            "billing.jsonl",
            '{"name": "a", "name": "b"}\n',
            "datasets/billing.jsonl: line 1 (row 1): invalid JSON: duplicate key 'name'",
        ),
        (
            "billing.jsonl",
            jsonl_row() + jsonl_row(name="b") + jsonl_row(),
            "datasets/billing.jsonl: line 3 (row 3): name: 'a' is also the name of row 1 (line 1)",
        ),
        ("billing.jsonl", "\n\n", "datasets/billing.jsonl: no rows: the file has no JSON lines"),
        (
            "billing.jsonl",
            '{"dataset": {"mood": "single_turn"}}\n' + jsonl_row(),
            "datasets/billing.jsonl: line 1: dataset.mood: unknown field; did you mean 'mode'?",
        ),
        (
            "billing.jsonl",
            '{"dataset": {"mode": "sometimes"}}\n' + jsonl_row(),
            "datasets/billing.jsonl: line 1: dataset.mode: Input should be 'single_turn' or "
            "'conversational'",
        ),
        (
            "billing.jsonl",
            jsonl_row() + '{"dataset": {"mode": "single_turn"}}\n',
            'datasets/billing.jsonl: line 2: a {"dataset": {"mode": "single_turn"}} line must be '
            "the first line of the file",
        ),
        (
            "billing.jsonl",
            jsonl_row() + jsonl_row(name="b", interlocutor_simulation_prompt=None),
            "datasets/billing.jsonl: line 2 (row 2): interlocutor_simulation_prompt: missing (who "
            "the simulated user is); a row has interlocutor_simulation_prompt, so every row is a "
            "conversation",
        ),
        (
            "billing.jsonl",
            '{"name": "a", "variables": ' + "[" * 5000 + "]" * 5000 + "}\n",
            "datasets/billing.jsonl: line 1 (row 1): refused: nested more than 100 levels deep",
        ),
        (
            "billing.jsonl",
            '{"name": "a", "variables": ' + "[" * 150 + "]" * 150 + "}\n",
            "datasets/billing.jsonl: line 1 (row 1): refused: nested more than 100 levels deep",
        ),
    ],
    ids=[
        "csv misspelt column",
        "csv max_turns not a number",
        "csv max_turns too big",
        "csv bad json cell",
        "csv duplicate names",
        "csv empty file",
        "csv header only",
        "csv ragged row",
        "csv quote left open",
        "csv row without simulated user",
        "csv semicolons",
        "csv one variable twice",
        "jsonl unknown field",
        "jsonl string max_turns",
        "jsonl boolean max_turns",
        "jsonl invalid json",
        "jsonl not an object",
        "jsonl duplicate key",
        "jsonl duplicate names",
        "jsonl empty file",
        "jsonl unknown dataset field",
        "jsonl bad mode",
        "jsonl dataset line not first",
        "jsonl row without simulated user",
        "jsonl nesting past the stack",
        "jsonl deep nesting",
    ],
)
def test_a_bad_row_exits_2_with_its_line_before_any_call(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    project(tmp_path, {name: text})
    for command in (["validate"], ["run-tests", "--mock"]):
        result = pt(*command)
        assert result.exit_code == 2, result.output
        assert expected in flat(result.output), result.output
        assert "dataset 'billing' not found" not in result.output  # reported once, as invalid
    assert not (tmp_path / ".prompttracker").exists()


def test_every_problem_of_every_file_at_once(tmp_path: Path) -> None:
    bad_csv = csv_rows(("a", "0"), ("b", "x"))
    bad_jsonl = '{"nme": "q"}\n{"name": 3}\n'
    broken = PROMPT.replace("temperature: 0.3", "temprature: 0.3")
    project(tmp_path, {"billing.csv": bad_csv, "questions.jsonl": bad_jsonl}, {"p": broken})
    output = flat(pt("validate").output)
    assert "5 problem(s)" in output
    assert "prompts/p.yaml: line 12: versions[0].model_config.temprature: unknown field" in output
    assert (
        "datasets/billing.csv: line 2 (row 1): max_turns: Input should be greater than or" in output
    )
    assert "datasets/billing.csv: line 3 (row 2): max_turns: expected a whole number" in output
    assert (
        "datasets/questions.jsonl: line 1 (row 1): nme: unknown field; did you mean 'name'?"
        in output
    )
    assert (
        "datasets/questions.jsonl: line 2 (row 2): name: Input should be a valid string" in output
    )


def test_an_empty_cell_is_absent_so_the_version_default_or_a_template_error_applies(
    tmp_path: Path,
) -> None:
    text = csv_rows(("a", "3")) + "b,,,P,3\n"
    with_default = PROMPT.replace(
        '    user_prompt: "{{ opening_message }}"\n',
        '    user_prompt: "{{ opening_message }}"\n    variables: { company: Default Co }\n',
    )
    project(tmp_path, {"billing.csv": text}, {"billing_support": with_default})
    output = flat(pt("validate").output)
    assert (
        "version 1 user_prompt: missing template variable 'opening_message' for row 'b' of "
        "datasets/billing.csv" in output
    )
    assert "'company'" not in output  # the version's default stands in for the empty cell


def test_two_files_of_one_name_are_a_conflict_naming_both(tmp_path: Path) -> None:
    project(tmp_path, {"billing.yaml": DATASET, "billing.csv": BILLING_CSV})
    result = pt("validate")
    assert result.exit_code == 2
    assert (
        "datasets/billing.csv: datasets/billing.csv and datasets/billing.yaml are both dataset "
        "'billing': a test's `dataset: billing` would not know which to read; keep one"
    ) in flat(result.output)
    assert "not found" not in result.output
    assert pt("run-tests", "--mock").exit_code == 2
    assert not (tmp_path / ".prompttracker").exists()


def test_a_missing_dataset_names_every_kind_of_file(tmp_path: Path) -> None:
    project(tmp_path, {"other.csv": "name,q\na,b\n"})
    assert (
        "dataset 'billing' not found (expected datasets/billing.yaml, .csv or .jsonl; known: other)"
    ) in flat(pt("validate").output)


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    project(tmp_path, {})
    with (tmp_path / "datasets" / "billing.csv").open("wb") as file:
        file.truncate(60_000_000)  # sparse: nothing is written, and nothing should be read
    result = pt("validate")
    assert result.exit_code == 2
    assert (
        "datasets/billing.csv: refused: the file has 60,000,000 bytes, more than the 50,000,000 "
        "a dataset may have"
    ) in flat(result.output)


def test_rows_values_and_cells_have_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from prompttracker.config.tabular import csv_file, table

    monkeypatch.setattr(table, "MAX_ROWS", 2)
    monkeypatch.setattr(table, "MAX_VALUES", 40)
    monkeypatch.setattr(csv_file, "MAX_CELL_CHARS", 50)
    project(
        tmp_path,
        {
            "many.csv": csv_rows(("a", "3"), ("b", "3"), ("c", "3")),
            "wide.jsonl": json.dumps({"variables": {f"v{i}": i for i in range(30)}}) + "\n",
            "long.csv": csv_rows(("a", "3")).replace("Hi", "x" * 60),
        },
    )
    output = flat(pt("validate").output)
    assert "datasets/many.csv: refused: it has more than 2 rows" in output
    assert "datasets/wide.jsonl: refused: it holds more than 40 JSON values" in output
    assert "datasets/long.csv: line 2 (row 1): a cell longer than 50 characters" in output
    assert csv.field_size_limit() == 131072  # the process-wide limit was put back


def test_text_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    project(tmp_path, {})
    (tmp_path / "datasets" / "billing.csv").write_bytes(b"name,q\na,caf\xe9\n")
    assert (
        "datasets/billing.csv: line 2: not UTF-8 text (byte 0xe9): save the file as UTF-8"
    ) in flat(pt("validate").output)


def test_many_problems_are_cut_short_with_a_count(tmp_path: Path) -> None:
    project(tmp_path, {"billing.csv": csv_rows(*[(f"r{i}", "x") for i in range(130)])})
    output = flat(pt("validate").output)
    assert output.count("expected a whole number") == 100
    assert "datasets/billing.csv: … and 30 more problem(s) in this file" in output


# --- appending (pt chat /save row) ---------------------------------------------------------

NEW_ROW = {
    "name": "asked twice",
    "variables": {"company": "Acme", "opening_message": 'Refund "now", please\nthanks'},
    "interlocutor_simulation_prompt": "Fill me in",
    "max_turns": 2,
}


@pytest.mark.parametrize("name", ["billing.csv", "billing.jsonl"])
def test_a_row_is_appended_and_every_byte_before_it_kept(tmp_path: Path, name: str) -> None:
    text = BILLING_CSV if name.endswith(".csv") else jsonl_row().rstrip("\n")  # no final break
    project(tmp_path, {name: text})
    path = tmp_path / "datasets" / name
    before = path.read_bytes()
    append_tabular_row(path, NEW_ROW)
    assert path.read_bytes().startswith(before)
    rows = load_project(tmp_path).datasets["billing"].rows
    assert rows[-1].name == "asked twice"
    assert rows[-1].variables["opening_message"] == 'Refund "now", please\nthanks'
    assert rows[-1].max_turns == 2
    with pytest.raises(ConfigError, match="a row named 'asked twice' already exists") as info:
        append_tabular_row(path, NEW_ROW)
    assert "'asked twice 2'" in (info.value.hint or "")


def test_a_row_that_does_not_fit_is_refused_and_the_file_left_alone(tmp_path: Path) -> None:
    questions = tmp_path / "datasets" / "questions.jsonl"
    billing = tmp_path / "datasets" / "billing.csv"
    project(tmp_path, {"questions.jsonl": QUESTIONS_JSONL, "billing.csv": BILLING_CSV})
    before = billing.read_bytes(), questions.read_bytes()
    with pytest.raises(ConfigError, match="has no column for 'city', 'country' of the row"):
        append_tabular_row(
            billing,
            {
                "name": "x",
                "variables": {"company": "Acme", "city": "Paris", "country": "FR"},
                "interlocutor_simulation_prompt": "P",
            },
        )
    with pytest.raises(ConfigError, match="a row with one would make every row a conversation"):
        append_tabular_row(questions, NEW_ROW)
    with pytest.raises(ConfigError, match="max_turn: unknown field; did you mean 'max_turns'"):
        append_tabular_row(billing, {**NEW_ROW, "max_turn": 2})
    with pytest.raises(ConfigError, match="variable 'company' is int, and a CSV cell is text"):
        append_tabular_row(billing, {**NEW_ROW, "variables": {"company": 7}})
    assert (billing.read_bytes(), questions.read_bytes()) == before


def test_chat_save_row_appends_to_a_csv_dataset(tmp_path: Path) -> None:
    project(tmp_path, {"billing.csv": BILLING_CSV})
    result = runner.invoke(
        app,
        ["chat", "billing_support", "--mock", "--row", "billing:row-2"],
        input="Refund order 777 please\n/save row asked twice\n",
    )
    assert "appended row 'asked twice' to datasets/billing.csv" in result.output
    assert load_project(tmp_path).datasets["billing"].rows[-1].name == "asked twice"


def test_chat_save_row_into_a_single_turn_dataset_leaves_out_the_simulated_user(
    tmp_path: Path,
) -> None:
    project(tmp_path, {"questions.jsonl": QUESTIONS_JSONL}, {"helper": HELP_PROMPT})
    result = runner.invoke(
        app,
        ["chat", "helper", "--mock", "--row", "questions:steady"],
        input="Question number 5\n/save row five\n",
    )
    assert "appended row 'five' to datasets/questions.jsonl" in result.output, result.output
    last = json.loads((tmp_path / "datasets" / "questions.jsonl").read_text().splitlines()[-1])
    assert last == {"name": "five", "variables": {"message": "Question number 5"}}
    assert load_project(tmp_path).datasets["questions"].rows[-1].name == "five"
