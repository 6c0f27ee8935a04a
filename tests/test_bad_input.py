"""Bad input never runs: exit 2 before any call, a message with file and place, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from tests.loopback import LoopbackServer, Request, chat_completion, send_json
from tests.project_factory import DATASET, PROMPT, write_project

runner = CliRunner()


async def answer(request: Request, writer) -> None:
    await send_json(writer, chat_completion("I will refund it."))


BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [
        f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]"
        for i in range(1, 9)
    ]
)


@pytest.mark.parametrize(
    ("prompt", "dataset", "expected"),
    [
        (
            PROMPT.replace("  - version: 1", "  - version: yes"),
            DATASET,
            "prompts/billing_support.yaml: line 4: versions[0].version: expected a number, found "
            "the YAML boolean true",
        ),
        (
            PROMPT,
            DATASET.replace("max_turns: 3", "max_turns: on"),
            "datasets/billing.yaml: line 6: rows[0].max_turns: expected a number, found the YAML "
            "boolean true",
        ),
        (
            PROMPT.replace(
                "config: { required_keywords: [refund] }",
                "config: { required_keywords: [refund], case_sensitive: 1 }",
            ),
            DATASET,
            "config.case_sensitive",
        ),
        (
            PROMPT.replace(
                "      model: gpt-4o-mini\n", "      model: gpt-4o-mini\n      model: gpt-4o\n"
            ),
            DATASET,
            "prompts/billing_support.yaml: line 12, column 7: invalid YAML: duplicate key 'model'",
        ),
        (
            PROMPT,
            DATASET.replace("{ company: Acme,", "{ company: Acme, company: Initech,"),
            "datasets/billing.yaml: line 4, column 33: invalid YAML: duplicate key 'company'",
        ),
        (
            PROMPT,
            DATASET.replace("company: Acme,", "company: !!binary QWNtZQ==,"),
            "datasets/billing.yaml: line 4, column 27: invalid YAML: a binary value (!!binary)",
        ),
        (PROMPT, BOMB + "\n", "datasets/billing.yaml: refused: its aliases expand past"),
        (
            PROMPT.replace("{{ opening_message }}", "{% for i in (1..100000000) %}x{% endfor %}"),
            DATASET,
            "prompts/billing_support.yaml: line 15: tests[0] (double charge is refunded): "
            "version 1 user_prompt: the template is too costly to render (its loops run more "
            "than 100,000 times)",
        ),
        (
            PROMPT.replace(
                "{{ opening_message }}",
                "{% assign s = 'xx' %}{% for i in (1..64) %}{% assign s = s | append: s %}"
                "{% endfor %}{{ s }}",
            ),
            DATASET,
            "the template is too costly to render (the result of `append` has more than "
            "4,000,000 characters)",
        ),
        (
            PROMPT.replace(
                "{{ opening_message }}",
                "{{ 'xxxxxxxxxx' | replace: 'x', 'xxxxxxxxxx' | replace: 'x', 'xxxxxxxxxx' | "
                "replace: 'x', 'xxxxxxxxxx' | replace: 'x', 'xxxxxxxxxx' | replace: 'x', "
                "'xxxxxxxxxx' | replace: 'x', 'xxxxxxxxxx' | replace: 'x', 'xxxxxxxxxx' }}",
            ),
            DATASET,
            "the result of `replace` would have more than 4,000,000 characters",
        ),
        (
            PROMPT.replace(
                "      - type: keyword\n        config: { required_keywords: [refund] }\n",
                "      - type: pattern_match\n        config: { patterns: ['/(a+)+$/'] }\n",
            ),
            DATASET,
            "prompts/billing_support.yaml: line 19: tests[0] (double charge is refunded)."
            "evaluators[0] (pattern_match): config.patterns: '/(a+)+$/': it repeats without bound "
            "a group that itself repeats without bound",
        ),
        (
            PROMPT.replace(
                "      - type: keyword\n        config: { required_keywords: [refund] }\n",
                "      - type: format\n        config: { format: json, schema: { type: object, "
                "properties: { id: { type: string, pattern: '^(\\w+\\s?)*$' } } } }\n",
            ),
            DATASET,
            "config.schema: schema pattern '^(\\\\w+\\\\s?)*$' at /properties/id/pattern: "
            "it repeats",
        ),
        (
            PROMPT.replace("      model: gpt-4o-mini\n", "      modle: gpt-4o-mini\n"),
            DATASET,
            "prompts/billing_support.yaml: line 11: versions[0].model_config.modle: unknown "
            "field; did you mean 'model'?",
        ),
        (
            PROMPT.replace("tests:", "test:"),
            DATASET,
            "prompts/billing_support.yaml: line 14: test: unknown field; did you mean 'tests'?",
        ),
        (
            PROMPT.replace("type: keyword", "type: keywrd"),
            DATASET,
            "prompts/billing_support.yaml: line 18: tests[0] (double charge is refunded)."
            "evaluators[0] (keywrd): unknown evaluator type 'keywrd'; did you mean 'keyword'?",
        ),
        (PROMPT, "rows: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ],
    ids=[
        "bool version",
        "bool max_turns",
        "bool evaluator",
        "dup model",
        "dup variable",
        "binary",
        "alias bomb",
        "liquid loop bomb",
        "liquid doubling",
        "liquid filter growth",
        "catastrophic regex",
        "catastrophic schema pattern",
        "misspelled key",
        "misspelled top-level key",
        "misspelled evaluator type",
        "deep nesting",
    ],
)
def test_bad_input_exits_2_before_any_call_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompt: str, dataset: str, expected: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-bad-input")
    with LoopbackServer(answer) as server:
        settings = f"providers:\n  openai: {{ base_url: '{server.url}' }}\n"
        write_project(tmp_path, {"billing_support": prompt}, {"billing": dataset}, settings)
        monkeypatch.chdir(tmp_path)
        for command in (["validate"], ["run-tests"]):
            result = runner.invoke(app, command)
            assert result.exit_code == 2, result.output
            assert expected in " ".join(result.output.split()), result.output
        assert server.requests == [] and server.connections == 0
    assert not (tmp_path / ".prompttracker").exists()


def test_control_characters_from_files_and_models_are_shown_not_obeyed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ESC sequences in a row name and in what the (mock) assistant says back reach the
    terminal written out, so they cannot clear the screen or retitle the window."""
    hostile = DATASET.replace("name: angry double charge", 'name: "evil \\e[2J row"').replace(
        "I've been charged twice for order 12345!", "\\e]0;pwned\\a charged twice"
    )
    write_project(tmp_path, {"billing_support": PROMPT}, {"billing": hostile})
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run-tests", "--mock", "--transcripts", "all"])
    assert result.exit_code in (0, 1), result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "evil \\x1b[2J row" in result.output
    assert "\\x1b]0;pwned" in result.output  # (rich drops the bell itself)


def test_disabled_tests_are_skipped_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A suite whose tests are all `enabled: false` exits 0 and reports them skipped; with
    others enabled, the totals and the JUnit report count them."""
    import xml.etree.ElementTree as ET

    disabled = PROMPT.replace(
        "    dataset: billing\n", "    dataset: billing\n    enabled: false\n"
    )
    write_project(tmp_path, {"billing_support": disabled}, {"billing": DATASET})
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run-tests", "--mock", "--junit-xml", "all-skipped.xml"])
    assert result.exit_code == 0, result.output
    assert "0 test runs, 1 test(s) skipped (enabled: false)" in result.output
    suite = ET.parse(tmp_path / "all-skipped.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("skipped")) == ("1", "1")
    (case,) = suite.findall("testcase")
    assert case.get("name") == "double charge is refunded" and case.find("skipped") is not None
    assert not (tmp_path / ".prompttracker").exists()  # no run to store

    other = PROMPT.replace("name: double charge is refunded", "name: still runs")
    write_project(tmp_path, {"billing_support": disabled, "other": other}, {"billing": DATASET})
    result = runner.invoke(app, ["run-tests", "--mock", "--junit-xml", "some-skipped.xml"])
    assert "1 test(s) skipped (enabled: false)" in result.output
    suite = ET.parse(tmp_path / "some-skipped.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("skipped")) == ("2", "1")


def test_pt_run_points_at_pt_run_tests() -> None:
    result = runner.invoke(app, ["run", "--mock"])
    assert result.exit_code == 2
    assert "did you mean `pt run-tests`?" in result.output
    assert " run " not in runner.invoke(app, ["--help"]).output  # hidden from the list


def test_pt_finds_the_project_from_a_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_project(tmp_path)
    (tmp_path / "datasets" / "deeper").mkdir()
    monkeypatch.chdir(tmp_path / "datasets" / "deeper")
    assert runner.invoke(app, ["validate"]).exit_code == 0
    result = runner.invoke(app, ["run-tests", "--mock"])
    assert result.exit_code in (0, 1), result.output
    assert (tmp_path / ".prompttracker" / "results.db").exists()  # the project's, not here
    assert not (tmp_path / "datasets" / "deeper" / ".prompttracker").exists()

    elsewhere = tmp_path.parent / f"{tmp_path.name}-empty"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    assert f"{elsewhere}/prompts/: folder not found" in " ".join(result.output.split())
    assert "-p" in result.output


def test_run_tests_list_prints_the_plan_and_calls_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # no key needed to list
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run-tests", "--list", "--repeat", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "billing_support::double charge is refunded v1 [angry double charge] #1",
        "billing_support::double charge is refunded v1 [angry double charge] #2",
    ]
    assert "2 test run(s) planned; nothing was called" in result.stderr
    assert not (tmp_path / ".prompttracker").exists()


def test_a_junit_path_that_cannot_be_written_is_refused_before_any_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("")
    # A directory: the option itself refuses it (click's own check, also exit 2).
    result = runner.invoke(app, ["run-tests", "--mock", "--junit-xml", "a-folder"])
    assert result.exit_code == 2 and "is a directory" in " ".join(result.output.split())
    # Below a file: only pt's check sees it, before the run instead of after.
    result = runner.invoke(app, ["run-tests", "--mock", "--junit-xml", "a-file/report.xml"])
    assert result.exit_code == 2, result.output
    assert "--junit-xml a-file/report.xml cannot be written: " in result.output
    assert "a-file is not a folder" in result.output
    assert not (tmp_path / ".prompttracker").exists()  # no run was started


def test_a_foreign_sqlite_database_is_refused_not_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "inventory.db"
    with sqlite3.connect(other) as db:
        db.execute("create table products (id integer primary key, name text)")
    for command in (
        ["run-tests", "--mock", "--db", str(other)],
        ["runs", "list", "--db", str(other)],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "another program's SQLite file (tables: products)" in " ".join(result.output.split())
    with sqlite3.connect(other) as db:  # untouched: still only its own table
        tables = [row[0] for row in db.execute("select name from sqlite_master where type='table'")]
    assert tables == ["products"]


def test_a_base_url_that_is_not_an_http_url_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_path, settings="providers:\n  openai: { base_url: 'localhost:8000/v1' }\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    assert (
        "prompttracker.yaml: line 2: providers.openai.base_url: base_url 'localhost:8000/v1' is not"
        in (" ".join(result.output.split()))
    )


def test_a_liquid_syntax_error_is_reported_once_where_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = PROMPT.replace("Be brief and kind.", 'Answer as JSON: {{ \\"ok\\": true }}')
    second = "  - name: second test\n    dataset: billing\n"
    rows = DATASET + (
        "  - name: second row\n"
        "    variables: { company: Acme, opening_message: Hi }\n"
        "    interlocutor_simulation_prompt: You are polite.\n"
    )
    write_project(tmp_path, {"billing_support": broken + second}, {"billing": rows})
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert output.count("invalid Liquid template") == 1, result.output
    assert (
        "prompts/billing_support.yaml: line 6: versions[0].system_prompt: invalid Liquid "
        "template (line 1 of the template): expected end of expression, found ':'; fix the tag, "
        "or wrap text that should reach the model as written (a JSON example, say) in "
        "{% raw %}…{% endraw %}"
    ) in output
    assert "1 problem(s)" in output


async def refuse_the_key(request: Request, writer) -> None:
    error = {"message": "Incorrect API key provided: sk-wro*****key.", "code": "invalid_api_key"}
    await send_json(writer, {"error": error}, status=401)


def test_a_refused_key_stops_the_calls_exits_3_and_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = DATASET + "".join(
        f"  - name: row {i}\n    variables: {{ company: Acme, opening_message: Hi {i} }}\n"
        "    interlocutor_simulation_prompt: You are polite.\n"
        for i in range(8)
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
    monkeypatch.chdir(tmp_path)
    with LoopbackServer(refuse_the_key) as server:
        settings = f"concurrency: 2\nproviders:\n  openai: {{ base_url: '{server.url}' }}\n"
        write_project(tmp_path, {"billing_support": PROMPT}, {"billing": rows}, settings)
        result = runner.invoke(app, ["run-tests"])
        refused_requests = len(server.requests)
    output = " ".join(result.output.split())
    assert result.exit_code == 3, result.output
    assert refused_requests <= 2  # the two in flight when the first 401 came; then none
    assert output.count("Incorrect API key provided") == 1, result.output
    assert (
        "Error: the run could not continue: the API key was refused (openai answered HTTP 401: "
        "Incorrect API key provided: sk-wro*****key.); "
    ) in output
    assert "7 were not started" in output or "8 were not started" in output
    assert "sk-wrong-key" not in result.output
    run_id = output.split("--resume ")[1].split()[0]
    runs = runner.invoke(app, ["runs", "list"])
    assert run_id in runs.output and "failed" in runs.output

    # With the key fixed, --resume --retry-errors plays what the refusal left.
    with LoopbackServer(answer) as server:
        settings = f"concurrency: 2\nproviders:\n  openai: {{ base_url: '{server.url}' }}\n"
        write_project(tmp_path, {"billing_support": PROMPT}, {"billing": rows}, settings)
        resumed = runner.invoke(app, ["run-tests", "--resume", run_id, "--retry-errors"])
    assert resumed.exit_code in (0, 1), resumed.output
    assert "9 test runs" in " ".join(resumed.output.split()), resumed.output
