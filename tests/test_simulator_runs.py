"""Simulator-caused failures, told apart, through `pt run-tests`: a simulated user that breaks
down makes its test run ``invalid`` (never sent on, never scored), ``--regenerate-invalid``
plays it again, the optional LLM ``simulator_check`` invalidates what the deterministic
checks cannot see, and the run reports its simulator error rate."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from tests.helpers import key_fixture
from tests.project_factory import write_project
from tests.test_cli import completion

URL = "https://api.openai.com/v1/chat/completions"
api_key = key_fixture("OPENAI_API_KEY", "sk-test-simulator-SECRET")
runner = CliRunner()

PROMPT = """\
name: Billing support
versions:
  - version: 1
    status: active
    system_prompt: You are a billing agent.
    user_prompt: "{{ opening }}"
    model_config: { provider: openai, api: chat_completions, model: gpt-4o-mini }
tests:
  - name: refund
    dataset: billing
    evaluators:
      - { type: keyword, config: { required_keywords: [refund] } }
"""
DATASET = """\
mode: conversational
rows:
  - name: {name}
    variables: {{ opening: "I was charged twice for order {n}." }}
    interlocutor_simulation_prompt: You were charged twice for order {n}. You want a refund.
    max_turns: 2
"""
BROKEN = "Assistant: How can I help you today?"


def dataset(*names: str) -> str:
    rows = [
        DATASET.format(name=name, n=1000 + i).split("rows:\n")[1] for i, name in enumerate(names)
    ]
    return "mode: conversational\nrows:\n" + "".join(rows)


class Server:
    """The assistant always offers a refund; the simulated user's turns come from ``users``
    (one list per row, by the order number in its persona), one answer per call."""

    def __init__(self, users: dict[str, list[str]], review: dict[str, Any] | None = None):
        self.users = {key: list(lines) for key, lines in users.items()}
        self.review = review
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        self.requests.append(sent)
        n = len(self.requests)
        schema = (sent.get("response_format") or {}).get("json_schema", {}).get("name")
        if schema == "simulated_user_turn":
            persona = sent["messages"][0]["content"]
            row = next(key for key in self.users if key in persona)
            message = self.users[row].pop(0)
            content = json.dumps({"message": message, "stop": False, "reason": ""})
        elif schema == "simulated_user_review":
            content = json.dumps(self.review)
        else:
            content = f"I have issued a refund (reply {n})."
        return httpx.Response(200, json=completion(content, n))

    def of(self, schema: str | None) -> list[dict[str, Any]]:
        def name(sent: dict[str, Any]) -> str | None:
            return (sent.get("response_format") or {}).get("json_schema", {}).get("name")

        return [sent for sent in self.requests if name(sent) == schema]


def run(*args: str):
    return runner.invoke(app, ["run-tests", "--transcripts", "all", *args])


def stored(tmp_path: Any, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / ".prompttracker" / "results.db") as db:
        return db.execute(sql).fetchall()


def test_a_simulated_user_speaking_as_the_assistant_makes_the_run_invalid(
    tmp_path, httpx2_mock, api_key
):
    write_project(tmp_path, {"billing": PROMPT}, {"billing": dataset("good", "broken")})
    server = Server({"1000": ["When will the refund arrive?"], "1001": [BROKEN]})
    httpx2_mock.post(URL).mock(side_effect=server)

    result = run()

    out = " ".join(result.output.split())
    assert result.exit_code == 0, result.output  # the invalid run is not a prompt failure
    assert "2 test runs: 1 passed, 0 failed, 0 error, 1 invalid" in out
    assert "Simulator error rate: 50% (1 of 2 conversations invalid)" in out
    assert "~ invalid billing::refund v1 [broken]" in out
    assert (
        "invalid: the simulated user spoke as the assistant at turn 2: 'Assistant: How can I "
        "help you today?'"
    ) in out
    # The broken message never reached the assistant, and the run was not scored.
    assistant_calls = server.of(None)
    assert len(assistant_calls) == 3  # good: 2 turns; broken: its first turn only
    assert all(BROKEN not in json.dumps(sent) for sent in assistant_calls)
    rows = stored(
        tmp_path,
        "select t.row_name, t.status, t.error, count(e.id) from test_runs t "
        "left join evaluations e on e.test_run_id = t.id group by t.id order by t.row_name",
    )
    assert [(row, status, evaluations) for row, status, _, evaluations in rows] == [
        ("broken", "invalid", 0),
        ("good", "passed", 1),
    ]
    assert rows[0][2].startswith("the simulated user spoke as the assistant at turn 2")
    [(invalid,)] = stored(tmp_path, "select invalid from runs")
    assert invalid == 1
    [(metadata,)] = stored(
        tmp_path,
        "select json_extract(metadata, '$.invalid') from llm_responses r "
        "join test_runs t on t.id = r.test_run_id where t.status = 'invalid'",
    )
    assert json.loads(metadata)["check"] == "as_assistant"


def test_ci_can_fail_on_invalid_runs(tmp_path, httpx2_mock, api_key):
    settings = "ci:\n  fail_on_invalid: true\n"
    write_project(tmp_path, {"billing": PROMPT}, {"billing": dataset("good", "broken")}, settings)
    server = Server({"1000": ["When will the refund arrive?"], "1001": [BROKEN]})
    httpx2_mock.post(URL).mock(side_effect=server)
    assert run().exit_code == 1


def test_a_run_where_nothing_was_decided_fails(tmp_path, httpx2_mock, api_key):
    write_project(tmp_path, {"billing": PROMPT}, {"billing": dataset("broken")})
    httpx2_mock.post(URL).mock(side_effect=Server({"1000": [BROKEN]}))
    result = run()
    assert result.exit_code == 1
    assert "1 test run: 0 passed, 0 failed, 0 error, 1 invalid" in " ".join(result.output.split())


def test_regenerate_invalid_plays_the_conversation_again(tmp_path, httpx2_mock, api_key):
    write_project(tmp_path, {"billing": PROMPT}, {"billing": dataset("flaky user")})
    server = Server({"1000": [BROKEN, "Okay, when will the refund arrive?"]})
    httpx2_mock.post(URL).mock(side_effect=server)

    result = run("--regenerate-invalid", "2")

    out = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "1 test run: 1 passed, 0 failed, 0 error in" in out
    assert "Simulator error rate: 50% (1 of 2 conversations invalid; 1 played again)" in out
    assert "regenerated: the simulated user spoke as the assistant at turn 2" in out
    # Two plays: the first stopped before its second turn; the second played both turns.
    assert len(server.of(None)) == 3 and len(server.of("simulated_user_turn")) == 2
    [(status, regenerated)] = stored(tmp_path, "select status, regenerated from test_runs")
    assert status == "passed"
    assert json.loads(regenerated) == [
        "the simulated user spoke as the assistant at turn 2: 'Assistant: How can I help you "
        "today?' (starts with the assistant's role label)"
    ]


def test_regeneration_gives_up_after_n_plays(tmp_path, httpx2_mock, api_key):
    write_project(tmp_path, {"billing": PROMPT}, {"billing": dataset("broken")})
    server = Server({"1000": [BROKEN, BROKEN]})
    httpx2_mock.post(URL).mock(side_effect=server)
    result = run("--regenerate-invalid", "1")
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "Simulator error rate: 100% (2 of 2 conversations invalid; 1 played again)" in out
    assert len(server.of("simulated_user_turn")) == 2


@pytest.mark.parametrize(
    ("review", "invalid"),
    [
        (
            {"reason": "It asked about a car.", "followed_persona": False, "ended_early": False},
            "the simulator check found the simulated user left its persona: It asked about a car.",
        ),
        (
            {"reason": "It left at once.", "followed_persona": True, "ended_early": True},
            "the simulator check found the simulated user stopped before its goal: It left at "
            "once.",
        ),
        ({"reason": "In character.", "followed_persona": True, "ended_early": False}, None),
    ],
)
def test_the_llm_simulator_check_reviews_the_simulated_user(
    tmp_path, httpx2_mock, api_key, review, invalid
):
    settings = "simulator_check: true\n"
    write_project(tmp_path, {"billing": PROMPT}, {"billing": dataset("row")}, settings)
    server = Server({"1000": ["When will the refund arrive?"]}, review=review)
    httpx2_mock.post(URL).mock(side_effect=server)

    result = run()

    [asked] = server.of("simulated_user_review")
    prompt = asked["messages"][-1]["content"]
    assert "You were charged twice for order 1000. You want a refund." in prompt
    assert "USER: When will the refund arrive?" in prompt
    assert "stopped at its turn limit" in prompt
    assert asked["model"] == "gpt-4o-mini" and asked["temperature"] == 0  # the judge setting
    [(status, error, check)] = stored(
        tmp_path,
        "select t.status, t.error, json_extract(r.metadata, '$.simulator_check') "
        "from test_runs t join llm_responses r on r.test_run_id = t.id",
    )
    assert json.loads(check)["reason"] == review["reason"]
    if invalid is None:
        assert (result.exit_code, status, error) == (0, "passed", None)
        assert "simulator check: passed" in result.output
    else:
        assert (result.exit_code, status, error) == (1, "invalid", invalid)


def test_an_unreadable_simulator_check_invalidates_nothing(tmp_path, httpx2_mock, api_key):
    write_project(
        tmp_path, {"billing": PROMPT}, {"billing": dataset("row")}, "simulator_check: true\n"
    )
    server = Server({"1000": ["When will the refund arrive?"]}, review=["not", "an", "object"])
    httpx2_mock.post(URL).mock(side_effect=server)
    result = run()
    assert result.exit_code == 0, result.output
    assert "simulator check: unreadable" in result.output


def test_reports_show_invalid_runs_as_their_own_kind(tmp_path, httpx2_mock, api_key):
    write_project(tmp_path, {"billing": PROMPT}, {"billing": dataset("good", "broken")})
    httpx2_mock.post(URL).mock(
        side_effect=Server({"1000": ["When will the refund arrive?"], "1001": [BROKEN]})
    )
    assert run("--junit-xml", "report.xml").exit_code == 0

    junit = (tmp_path / "report.xml").read_text()
    assert 'tests="2" failures="0" errors="0" skipped="1"' in junit
    assert '<skipped message="invalid: the simulated user spoke as the assistant at turn 2' in junit
    listed = " ".join(runner.invoke(app, ["runs", "list"]).output.split())
    assert "total passed failed errored invalid" in listed
    shown = runner.invoke(app, ["runs", "show", "latest", "--transcripts", "none", "--exit-code"])
    assert shown.exit_code == 0
    assert "Simulator error rate: 50% (1 of 2 conversations invalid)" in " ".join(
        shown.output.split()
    )


def test_a_failed_simulator_check_call_is_an_error_naming_the_judge(tmp_path, httpx2_mock, api_key):
    settings = "simulator_check: true\nproviders:\n  openai:\n    max_retries: 0\n"
    write_project(tmp_path, {"billing": PROMPT}, {"billing": dataset("row")}, settings)
    server = Server({"1000": ["When will the refund arrive?"]})

    def answer(request: httpx.Request) -> httpx.Response:
        if b"simulated_user_review" in request.content:
            return httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}})
        return server(request)

    httpx2_mock.post(URL).mock(side_effect=answer)
    result = run()
    assert result.exit_code == 1
    [(status, error)] = stored(tmp_path, "select status, error from test_runs")
    assert status == "error" and error.startswith("judge: ")
    assert "HTTP 500" in error and api_key not in error


def test_the_json_document_carries_the_simulator_error_rate(tmp_path, httpx2_mock, api_key):
    write_project(tmp_path, {"billing": PROMPT}, {"billing": dataset("good", "broken")})
    server = Server({"1000": ["When will the refund arrive?"], "1001": [BROKEN, "Fine, thanks."]})
    httpx2_mock.post(URL).mock(side_effect=server)
    result = runner.invoke(app, ["run-tests", "--json", "--regenerate-invalid", "1"])
    document = json.loads(result.stdout)
    assert document["simulator"] == {"invalid": 1, "conversations": 3, "error_rate": 1 / 3}
    assert sorted(len(t["regenerated"]) for t in document["test_runs"]) == [0, 1]
    assert document["run"]["invalid"] == 0 and document["run"]["passed"] == 2


def test_a_simulated_user_cut_at_its_token_cap_is_invalid_and_says_what_to_raise(
    tmp_path, httpx2_mock, api_key
):
    write_project(tmp_path, {"billing": PROMPT}, {"billing": dataset("row")})
    server = Server({"1000": []})

    def answer(request: httpx.Request) -> httpx.Response:
        if b"simulated_user_turn" in request.content:
            cut = completion('{"message": "I would like to know when my refund', 9)
            cut["choices"][0]["finish_reason"] = "length"
            return httpx.Response(200, json=cut)
        return server(request)

    httpx2_mock.post(URL).mock(side_effect=answer)
    result = run()
    [(status, error)] = stored(tmp_path, "select status, error from test_runs")
    assert status == "invalid"
    assert error.startswith("the simulated user was cut off at turn 2: ")
    assert "raise the interlocutor setting's max_tokens" in error
    assert len(server.of(None)) == 1  # the cut message was not sent on
    assert result.exit_code == 1  # nothing was decided


def test_junit_fails_invalid_runs_when_the_ci_setting_says_so(tmp_path, httpx2_mock, api_key):
    settings = "ci:\n  fail_on_invalid: true\n"
    write_project(tmp_path, {"billing": PROMPT}, {"billing": dataset("good", "broken")}, settings)
    httpx2_mock.post(URL).mock(
        side_effect=Server({"1000": ["When will the refund arrive?"], "1001": [BROKEN]})
    )
    assert run("--junit-xml", "report.xml").exit_code == 1
    junit = (tmp_path / "report.xml").read_text()
    assert 'tests="2" failures="1" errors="0" skipped="0"' in junit
    assert '<failure message="invalid: the simulated user spoke as the assistant' in junit
    # pt runs show writes the same report from the store, with the same settings.
    shown = runner.invoke(app, ["runs", "show", "latest", "--junit-xml", "again.xml"])
    assert shown.exit_code == 0
    assert 'failures="1"' in (tmp_path / "again.xml").read_text()
