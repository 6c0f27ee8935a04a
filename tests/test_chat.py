"""``pt chat``: a version played by hand, on its route or an overridden one, then kept."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.config.loader import load_project
from prompttracker.store.store import Store
from tests.conftest import load_fixture
from tests.helpers import body, key_fixture
from tests.project_factory import DATASET, PROMPT, write_project

CHAT_URL = "https://api.openai.com/v1/chat/completions"
RESPONSES_URL = "https://api.openai.com/v1/responses"
KEY = "sk-test-chat-SECRET"
api_key = key_fixture("OPENAI_API_KEY", KEY)
ROW = "billing:angry double charge"

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def completion(text: str, number: int) -> httpx.Response:
    answer = load_fixture("openai/chat_completion.json")
    answer["id"] = f"chatcmpl-{number}"
    answer["choices"][0]["message"]["content"] = text
    return httpx.Response(200, json=answer)


def response(text: str, number: int) -> httpx.Response:
    answer = load_fixture("openai/responses_text.json")
    answer["id"] = f"resp_{number}"
    answer["output"][0]["content"][0]["text"] = text
    return httpx.Response(200, json=answer)


def chat(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, ["chat", "billing_support", *args], input=stdin)


def test_three_turns_on_chat_completions_send_the_whole_history(
    project: Path, httpx2_mock: Any, api_key: str
) -> None:
    answers = iter(completion(f"answer {n}", n) for n in range(1, 4))
    route = httpx2_mock.post(CHAT_URL).mock(side_effect=lambda request: next(answers))
    result = chat("--row", ROW, stdin="first\nsecond\nthird\n")
    assert result.exit_code == 0, result.output
    system = "You are a support agent for Acme. Be brief and kind."
    assert [m["content"] for m in body(route, 2)["messages"]] == [
        system,
        "first",
        "answer 1",
        "second",
        "answer 2",
        "third",
    ]
    assert [m["role"] for m in body(route, 2)["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert route.calls[0].request.headers["authorization"] == f"Bearer {KEY}"
    assert body(route, 0)["model"] == "gpt-4o-mini" and body(route, 0)["temperature"] == 0.3
    for n in (1, 2, 3):
        assert f"answer {n}" in result.output and f"turn {n}" in result.output
    assert KEY not in result.output


def test_three_turns_on_responses_chain_by_previous_response_id(
    project: Path, httpx2_mock: Any, api_key: str
) -> None:
    answers = iter(response(f"answer {n}", n) for n in range(1, 4))
    route = httpx2_mock.post(RESPONSES_URL).mock(side_effect=lambda request: next(answers))
    result = chat(
        "--row", ROW, "--api", "responses", "-m", "one", "-m", "two", "-m", "three", "--json"
    )
    assert result.exit_code == 0, result.output
    sent = [body(route, i) for i in range(3)]
    assert [s.get("previous_response_id") for s in sent] == [None, "resp_1", "resp_2"]
    assert sent[0]["instructions"] == "You are a support agent for Acme. Be brief and kind."
    assert [s["input"][-1]["content"] for s in sent] == ["one", "two", "three"]
    document = json.loads(result.stdout)
    messages = document["conversation"]["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "one"), ("assistant", "answer 1"), ("user", "two"),
        ("assistant", "answer 2"), ("user", "three"), ("assistant", "answer 3"),
    ]  # fmt: skip
    assert document["model_config"]["api"] == "responses"
    assert document["conversation"]["response_ids"] == ["resp_1", "resp_2", "resp_3"]


def test_sim_lets_the_rows_simulated_user_play(project: Path) -> None:
    result = chat("--mock", "--row", ROW, stdin="Hello\n/sim 2\n/quit\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("User (simulated) · turn") == 2
    assert "Assistant · mock (chat_completions) gpt-4o-mini · turn 3" in result.output
    assert "simulated user:" in result.output  # its tokens, on its messages


def test_sim_without_a_row_says_what_it_needs(project: Path) -> None:
    result = chat("--mock", "--var", "company=Acme", stdin="/sim\nHello\n")
    assert result.exit_code == 0, result.output
    assert "/sim needs a simulated user: start the chat with --row DATASET:ROW" in " ".join(
        result.output.split()
    )
    assert "turn 1" in result.output  # the chat went on


def test_eval_runs_the_tests_evaluators_on_the_conversation(project: Path) -> None:
    result = chat("--mock", "--row", ROW, stdin="I need a refund\n/eval\n")
    assert result.exit_code == 0, result.output
    assert "billing_support::double charge is refunded" in result.output
    assert "keyword" in result.output and "Evaluations" in result.output
    # The mock answer quotes the message, so the required keyword is there: a pass.
    assert "PASS" in result.output


def test_save_stores_a_run_that_pt_runs_show_reads(project: Path) -> None:
    result = chat(
        "--mock", "--row", ROW, stdin="I need a refund\nIs the refund on its way?\n/save\n"
    )
    assert result.exit_code == 0, result.output
    run_id = result.output.split("saved as run ")[1].split(":")[0]
    with Store(project / ".prompttracker" / "results.db") as store:
        (outcome,) = store.load_outcomes(run_id)
    assert outcome.status == "passed" and outcome.test_name == "double charge is refunded"
    assert [m.content for m in outcome.conversation.messages if m.role == "user"] == [
        "I need a refund",
        "Is the refund on its way?",
    ]
    assert outcome.evaluations and outcome.mock
    shown = runner.invoke(app, ["runs", "show", run_id, "--transcripts", "all"])
    assert shown.exit_code == 0, shown.output
    assert "I need a refund" in shown.output and "stop reason: chat" in shown.output


def test_save_row_appends_a_row_that_loads_and_runs(project: Path) -> None:
    before = (project / "datasets" / "billing.yaml").read_text()
    result = chat("--mock", "--row", ROW, stdin="Refund order 777 please\n/save row asked twice\n")
    assert result.exit_code == 0, result.output
    assert "appended row 'asked twice' to datasets/billing.yaml" in result.output
    after = (project / "datasets" / "billing.yaml").read_text()
    assert after.startswith(before)  # nothing of the file was disturbed
    row = load_project(project).datasets["billing"].rows[-1]
    assert row.name == "asked twice"
    assert row.variables["opening_message"] == "Refund order 777 please"
    assert row.max_turns == 1 and "Fill me in" in (row.interlocutor_simulation_prompt or "")
    played = runner.invoke(app, ["run-tests", "--mock", "--transcripts", "none"])
    assert played.exit_code in (0, 1), played.output
    assert "[asked twice]" in played.output


def test_overrides_are_validated_like_the_yaml(project: Path) -> None:
    unknown = chat("--mock", "--api", "completions", "-m", "hi")
    assert unknown.exit_code == 2
    assert "--api completions:" in unknown.output and "chat_completions" in unknown.output
    hot = chat("--temperature", "5", "-m", "hi")
    assert hot.exit_code == 2 and "--temperature 5.0" in hot.output
    assert "less than or equal to 2" in hot.output
    assistants = chat("--api", "assistants", "-m", "hi")
    assert assistants.exit_code == 2 and "assistant_id" in assistants.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "7"], "billing_support has no version 7 (it has: 1)"),
        (["--row", "billing:nope"], "--row 'billing:nope': billing has no row 'nope'"),
        (["--row", "bill:angry double charge"], "no dataset 'bill'; did you mean 'billing'?"),
        (["--row", "billing"], "write it as DATASET:ROW"),
        (["--var", "company"], "--var 'company': write it as NAME=VALUE"),
    ],
)
def test_bad_input_is_exit_2_before_any_call(
    project: Path, httpx2_mock: Any, api_key: str, args: list[str], message: str
) -> None:
    result = chat(*args, "-m", "hi")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert httpx2_mock.calls.call_count == 0


def test_an_unknown_prompt_suggests_the_near_one(project: Path) -> None:
    result = runner.invoke(app, ["chat", "billing_suport", "--mock", "-m", "hi"])
    assert result.exit_code == 2
    assert "no prompt 'billing_suport'; did you mean 'billing_support'?" in result.output


def test_a_missing_variable_points_at_var(project: Path) -> None:
    result = chat("--mock", "-m", "hi")  # no --row: company is unknown
    assert result.exit_code == 2
    assert "missing template variable 'company'" in result.output
    assert "--var NAME=VALUE" in " ".join(result.output.split())
    ok = chat("--mock", "--var", "company=Initech", "-m", "hi", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["system_prompt"].startswith("You are a support agent for Initech")


def test_ctrl_c_cancels_the_reply_in_flight_not_the_chat(
    project: Path, httpx2_mock: Any, api_key: str
) -> None:
    calls = 0

    async def answer(request: Any) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:  # the person presses Ctrl-C while the first reply is on its way
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(10)
        return completion("after the interruption", calls)

    route = httpx2_mock.post(CHAT_URL).mock(side_effect=answer)
    result = chat("--row", ROW, stdin="slow question\nsecond try\n")
    assert result.exit_code == 0, result.output
    assert "(cancelled: that turn left no trace)" in result.output
    assert "after the interruption" in result.output
    # Two requests went out (respx records only the one that was answered), and the
    # cancelled turn is not in the history the next one sends.
    assert calls == 2 and route.call_count == 1
    assert [m["content"] for m in body(route, 0)["messages"]][1:] == ["second try"]


def test_json_needs_messages(project: Path) -> None:
    result = chat("--mock", "--json")
    assert result.exit_code == 2 and "--json needs --message" in result.output


def test_without_an_active_version_the_version_is_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    second = PROMPT.replace("  - version: 1\n    status: active\n", "  - version: 1\n").replace(
        "    dataset: billing\n", "    dataset: billing\n    versions: [1]\n"
    )
    write_project(tmp_path, {"billing_support": second}, {"billing": DATASET})
    monkeypatch.chdir(tmp_path)
    result = chat("--mock", "--row", ROW, "-m", "hi")
    assert result.exit_code == 2 and "has no active version: pick one with --version N" in (
        result.output
    )
    assert chat("--mock", "--row", ROW, "--version", "1", "-m", "hi").exit_code == 0


def test_tool_calls_and_hosted_tool_results_are_shown_inline() -> None:
    example = Path(__file__).resolve().parents[1]  # the bundled example project
    result = runner.invoke(
        app, ["chat", "price_research", "--mock", "-p", str(example), "-m", "price of a kettle?"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert '⚙ web_search({"query": "price of a kettle?"}) →' in text
    assert "⚙ code_interpreter(" in text
