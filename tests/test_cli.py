"""The command line end to end: the example suite under --mock, exit codes, JUnit, runs."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from tests.project_factory import PROMPT, write_project

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def pt(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the bundled example suite."""
    for folder in ("prompts", "datasets"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


def db_rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_help_imports_no_sdk():
    code = (
        "import sys\n"
        "sys.argv = ['pt', '--help']\n"
        "from prompttracker.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in ('openai', 'anthropic', 'google.genai') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "run-tests" in result.stdout


def test_validate_example_suite(example):
    result = pt("validate")
    assert result.exit_code == 0, result.output
    assert "3 prompt file(s), 3 dataset(s)" in result.output
    assert "No problems found" in result.output


def test_validate_reports_every_problem_with_exit_2(tmp_path):
    write_project(tmp_path, prompts={"p": PROMPT.replace("api: chat_completions", "api: chat")})
    (tmp_path / "datasets" / "broken.yaml").write_text("rows: [")
    result = pt("validate")
    assert result.exit_code == 2
    assert "prompts/p.yaml: versions[0].model_config" in result.output
    assert "datasets/broken.yaml: line" in result.output
    assert "Hint:" in result.output


def test_run_tests_mock_end_to_end(example):
    junit = example / "reports" / "junit.xml"
    result = pt("run-tests", "--mock", "--junit-xml", str(junit))
    # ticket triage needs a real model: under --mock it fails, so the run exits 1
    assert result.exit_code == 1, result.output
    out = result.output
    assert "MOCK" in out
    assert "ticket_triage::billing emails go to billing" in out
    assert "exact_match" in out  # the failed test's transcript with its evaluation
    assert "User · turn 1" in out

    db = example / ".prompttracker" / "results.db"
    (_, status, mock, total, passed, failed, errored) = db_rows(
        db, "select id, status, mock, total, passed, failed, errored from runs"
    )[0]
    assert (status, mock) == ("completed", 1)
    # billing: 3 rows x (v2) + 3 rows x (v1, v2); faq: 3 rows; triage: 2 rows
    assert total == 3 + 6 + 3 + 2
    assert failed == 2 and errored == 0 and passed == total - 2
    assert db_rows(db, "select count(*) from messages")[0][0] > total * 2
    assert {r[0] for r in db_rows(db, "select distinct type from evaluations")} == {
        "conversation_judge",
        "keyword",
        "length",
        "llm_judge",
        "pattern_match",
        "exact_match",
    }

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("tests")) == total
    assert int(suite.get("failures")) == 2
    assert int(suite.get("errors")) == 0
    assert len(suite.findall("testcase")) == total


def test_run_tests_exit_0_when_all_pass(example):
    result = pt("run-tests", "--mock", "-k", "product_faq::*", "--transcripts", "none")
    assert result.exit_code == 0, result.output
    assert "3 passed" in result.output


def test_mock_runs_are_deterministic(example):
    pt("run-tests", "--mock", "-k", "billing_support::resolves*", "--db", "a.db")
    pt("run-tests", "--mock", "-k", "billing_support::resolves*", "--db", "b.db")
    query = (
        "select t.row_name, m.role, m.content from messages m join test_runs t"
        " on t.id = m.test_run_id order by t.row_name, m.position"
    )
    first = db_rows(example / "a.db", query)
    assert first == db_rows(example / "b.db", query)
    assert len(first) > 6


def test_without_key_stops_before_any_call(example):
    result = pt("run-tests")
    assert result.exit_code == 3
    assert "OPENAI_API_KEY" in result.output
    assert "--mock" in result.output
    assert not (example / ".prompttracker").exists()


def test_bad_project_exits_2_and_writes_nothing(tmp_path):
    write_project(tmp_path, prompts={"p": PROMPT.replace("{{ company }}", "{{ compnay }}")})
    result = pt("run-tests", "--mock")
    assert result.exit_code == 2
    assert "missing template variable 'compnay'" in result.output
    assert not (tmp_path / ".prompttracker").exists()


@pytest.mark.parametrize(
    "args",
    [["--transcripts", "some"], ["--concurrency", "0"], ["--no-such-option"]],
)
def test_bad_options_exit_2(example, args):
    result = runner.invoke(app, ["run-tests", "--mock", *args])
    assert result.exit_code == 2
    assert not (example / ".prompttracker").exists()


def test_filter_matching_nothing_is_bad_input(example):
    result = pt("run-tests", "--mock", "-k", "nothing-like-this")
    assert result.exit_code == 2
    assert "no test to run matches the selection" in result.output


def test_runs_list_and_show(example):
    pt("run-tests", "--mock", "-k", "product_faq::*")
    listed = pt("runs", "list", "--json")
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.output)
    assert len(runs) == 1 and runs[0]["total"] == 3 and runs[0]["mock"] is True
    shown = pt("runs", "show", runs[0]["id"][:12])
    assert shown.exit_code == 0, shown.output
    assert "unknown fact" in shown.output and "llm_judge" in shown.output
    table = pt("runs", "list")
    assert runs[0]["id"] in table.output


def test_runs_show_unknown_id(example):
    pt("run-tests", "--mock", "-k", "product_faq::*")
    result = pt("runs", "show", "run-nope")
    assert result.exit_code == 2
    assert "pt runs list" in result.output


def test_runs_without_database(tmp_path):
    result = pt("runs", "list")
    assert result.exit_code == 2
    assert "no results database" in result.output
