"""The command line end to end: the example suite under --mock, exit codes, JUnit, runs."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from tests.conftest import load_fixture
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
    assert "8 prompt file(s), 6 dataset(s)" in result.output
    assert "No problems found" in result.output


def test_validate_reports_every_problem_with_exit_2(tmp_path):
    write_project(tmp_path, prompts={"p": PROMPT.replace("api: chat_completions", "api: chat")})
    (tmp_path / "datasets" / "broken.yaml").write_text("rows: [")
    result = pt("validate")
    assert result.exit_code == 2
    assert "prompts/p.yaml: line 8: versions[0].model_config" in result.output
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
    # billing: 3 rows x (v2) + 3 rows x (v1, v2); faq: 3 rows; triage: 2 rows;
    # order assistant (responses): 1 row x 2 versions + 1 row x v1 (help center);
    # assistants: 1; claude: 3; gemini: 3; price research (hosted tools): 2 rows
    assert total == 3 + 6 + 3 + 2 + 3 + 1 + 3 + 3 + 2
    # triage's exact match fails twice; the strict mock judge of "both versions stay polite"
    # (threshold 85, mock scores 70–100) fails 4 of its 6
    assert failed == 5 and errored == 0 and passed == total - 5
    assert db_rows(db, "select count(*) from messages")[0][0] > total * 2
    assert {r[0] for r in db_rows(db, "select distinct type from evaluations")} == {
        "conversation_judge",
        "keyword",
        "length",
        "llm_judge",
        "pattern_match",
        "exact_match",
        "format",
        "function_call",
        "file_search",
        "web_search",
        "code_interpreter",
    }

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("tests")) == total
    assert int(suite.get("failures")) == 5
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
    result = pt("run-tests", "--tag", "openai")
    assert result.exit_code == 3
    assert "OPENAI_API_KEY" in result.output
    assert "(for openai: prompts/billing_support.yaml v2" in result.output
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
    shown = pt("runs", "show", runs[0]["id"][:12], "--transcripts", "all")
    assert shown.exit_code == 0, shown.output
    assert "unknown fact" in shown.output and "llm_judge" in shown.output
    # By default, like run-tests, only what did not pass gets a transcript; a header first.
    default = pt("runs", "show", "latest")
    assert default.output.startswith(f"Run {runs[0]['id']} · ")
    assert "completed · mock · -k product_faq::* · 3" in default.output
    assert "Evaluations" not in default.output  # every test run passed: no transcript
    document = json.loads(pt("runs", "show", "latest", "--json").output)
    assert len(document["test_runs"]) == 3 and document["run"]["id"] == runs[0]["id"]
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


def completion(content: str, n: int) -> dict:
    """The spec's chat.completion example with our content, id and usage."""
    body = load_fixture("openai/chat_completion.json")
    body["id"] = f"chatcmpl-{n}"
    body["choices"][0]["message"]["content"] = content
    body["usage"].update(prompt_tokens=20 + n, completion_tokens=5, total_tokens=25 + n)
    return body


FIRST_REPLY = "Sorry about that! I have issued a refund for the duplicate charge."


def test_real_run_over_chat_completions(tmp_path, monkeypatch, httpx2_mock):
    """No --mock: the assistant and the simulated user both go through Chat Completions."""
    secret = "sk-test-SECRET-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    write_project(tmp_path)
    replies = iter(
        [
            FIRST_REPLY,  # assistant
            "Thanks. How long will it take?",  # simulated user
            "The refund arrives within 5 business days.",  # assistant
            "Great, thank you! [END_CONVERSATION]",  # simulated user
        ]
    )
    bodies: list[dict] = []

    def answer(request):
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=completion(next(replies), len(bodies)))

    httpx2_mock.post("https://api.openai.com/v1/chat/completions").mock(side_effect=answer)
    result = pt("run-tests", "--transcripts", "all", "--concurrency", "1")
    assert result.exit_code == 0, result.output

    assistant, user = bodies[0], bodies[1]
    assert assistant["model"] == "gpt-4o-mini"
    assert assistant["temperature"] == 0.3
    assert assistant["max_completion_tokens"] == 300
    assert assistant["messages"] == [
        {"role": "system", "content": "You are a support agent for Acme. Be brief and kind."},
        {"role": "user", "content": "I've been charged twice for order 12345!"},
    ]
    # the simulated user sees the conversation with roles flipped, its persona as system prompt
    assert user["temperature"] == 0.7
    assert "You were charged twice. You want a refund." in user["messages"][0]["content"]
    assert user["messages"][1:] == [
        {"role": "assistant", "content": "I've been charged twice for order 12345!"},
        {"role": "user", "content": FIRST_REPLY},
    ]
    # turn 2 resends the whole history to the assistant
    assert [m["content"] for m in bodies[2]["messages"][1:]] == [
        "I've been charged twice for order 12345!",
        FIRST_REPLY,
        "Thanks. How long will it take?",
    ]
    assert len(bodies) == 4  # the end marker stopped the conversation
    assert "Great, thank you!" in result.output
    assert "[END_CONVERSATION]" not in result.output
    assert "interlocutor_ended" in result.output

    db = tmp_path / ".prompttracker" / "results.db"
    assert secret.encode() not in db.read_bytes()
    assert secret not in result.output
    (status, mock) = db_rows(db, "select status, mock from runs")[0]
    assert (status, mock) == ("completed", 0)
    assert db_rows(db, "select status, score from test_runs") == [("passed", 100.0)]


def test_api_error_ends_the_test_run_as_error(tmp_path, monkeypatch, httpx2_mock):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-0123456789abcdef")
    write_project(tmp_path, settings="providers:\n  openai:\n    max_retries: 0\n")
    httpx2_mock.post("https://api.openai.com/v1/chat/completions").respond(
        500, json={"error": {"message": "The server had an error", "type": "server_error"}}
    )
    result = pt("run-tests")
    assert result.exit_code == 1
    assert "500" in result.output
    assert "sk-test-SECRET" not in result.output
    db = tmp_path / ".prompttracker" / "results.db"
    assert db_rows(db, "select status from test_runs") == [("error",)]


def test_simulated_user_and_judge_on_another_provider(tmp_path, monkeypatch, httpx2_mock):
    """An OpenAI prompt tested with users simulated by Claude and judged by Claude."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-0123456789")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    settings = """\
        interlocutor: { provider: anthropic, api: messages, model: claude-haiku-4-5 }
        judge: { provider: anthropic, api: messages, model: claude-haiku-4-5 }
        """
    prompt = PROMPT + (
        "      - type: llm_judge\n        config: { custom_instructions: 'Is it polite?' }\n"
    )
    write_project(tmp_path, prompts={"p": prompt}, settings=settings)
    httpx2_mock.post("https://api.openai.com/v1/chat/completions").respond(
        200, json=completion("We will refund the duplicate charge today.", 1)
    )
    claude = load_fixture("anthropic/message.json")
    claude_bodies: list[dict] = []

    def answer(request):
        body = json.loads(request.content)
        claude_bodies.append(body)
        # Both ask for JSON; the simulated user answers in prose, with the end marker.
        text = (
            "Thanks! [END_CONVERSATION]"
            if "role-playing a USER" in body["system"]
            else '{"score": 90, "feedback": "polite"}'
        )
        return httpx.Response(200, json={**claude, "content": [{"type": "text", "text": text}]})

    httpx2_mock.post("https://api.anthropic.com/v1/messages").mock(side_effect=answer)
    result = pt("run-tests", "--transcripts", "none")
    assert result.exit_code == 0, result.output
    simulated_user, judge = claude_bodies
    assert simulated_user["model"] == "claude-haiku-4-5"
    assert "You were charged twice" in simulated_user["system"]
    assert simulated_user["messages"][-1] == {
        "role": "user",
        "content": "We will refund the duplicate charge today.",
    }
    assert judge["temperature"] == 0
    assert "Is it polite?" in judge["messages"][0]["content"]
