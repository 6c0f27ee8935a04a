"""Cassettes: ``pt run-tests --record DIR`` writes every LLM call of a run, ``--replay DIR``
answers from them with no network and no key, ``--record-missing`` fills the gaps.

The end-to-end tests play a judged conversational run against a real loopback endpoint whose
answers depend only on what is asked: the assistant, the simulated user and the judge each get
their own, so a replay that answered the wrong caller would show in the stored results.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.llm.cassettes import (
    Cassette,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    request_key,
)
from prompttracker.store.store import Store
from tests.loopback import LoopbackServer, Request, chat_completion, send_json
from tests.project_factory import write_project

runner = CliRunner()

SECRET = "sk-test-secret-key-123"
PROMPT_SLUG = "billing_support"
TEST_NAME = "refunds politely"
ROWS = ("row one", "row two")
SYSTEM_TEMPLATE = "You help {{ company }} customers."
SYSTEM_RENDERED = "You help Acme customers."
EDITED_TEMPLATE = "You politely help {{ company }} customers."
EDITED_RENDERED = "You politely help Acme customers."

PROMPT = f"""\
name: Billing support
versions:
  - version: 1
    status: active
    system_prompt: "{SYSTEM_TEMPLATE}"
    user_prompt: "{{{{ opening_message }}}}"
    model_config: {{ provider: openai, api: chat_completions, model: gpt-4o-mini }}
tests:
  - name: {TEST_NAME}
    dataset: billing
    evaluators:
      - {{ type: llm_judge, config: {{ custom_instructions: "Is it polite?" }} }}
      - {{ type: keyword, config: {{ required_keywords: [refund] }} }}
"""
DATASET = "mode: conversational\nrows:\n" + "".join(
    f"""  - name: {name}
    variables: {{ company: Acme, opening_message: "Hello from {name}" }}
    interlocutor_simulation_prompt: You were charged twice ({name}).
    max_turns: 3
"""
    for name in ROWS
)


def pt(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def caller_of(body: dict[str, Any]) -> str:
    """Who sent a Chat Completions request: the simulated user's instructions mention the end
    marker, the judge asks for JSON, the rest is the prompt under test."""
    if "[END_CONVERSATION]" in body["messages"][0]["content"]:
        return "simulated_user"
    if "response_format" in body:
        return "judge"
    return "assistant"


async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
    """Deterministic answers that depend on the request alone (never on arrival order)."""
    body = request.json()
    messages = body["messages"]
    who = caller_of(body)
    text = json.dumps(messages)
    row = "one" if "row one" in text else "two"
    if who == "judge":
        score = 90 if row == "one" else 80
        content = json.dumps({"feedback": f"Polite enough (row {row}).", "score": score})
    elif who == "simulated_user":
        content = f"Where is my money, {len(messages)} messages in? (row {row})"
    else:
        turns = sum(1 for m in messages if m["role"] == "user")
        content = f"Turn {turns}: we will refund you (row {row})."
    payload = chat_completion(content, number=len(messages))
    payload["usage"] = {
        "prompt_tokens": 10 * len(messages),
        "completion_tokens": len(content) // 4,
        "total_tokens": 10 * len(messages) + len(content) // 4,
    }
    # An endpoint that echoes the caller's key (as some error pages do): it must not be kept.
    payload["system_fingerprint"] = f"fp for {SECRET}"
    await send_json(writer, payload)


def make_project(root: Path, server: LoopbackServer) -> Path:
    settings = f"providers:\n  openai: {{ base_url: '{server.url}', max_retries: 0 }}\n"
    return write_project(root, {PROMPT_SLUG: PROMPT}, {"billing": DATASET}, settings)


def edit_system_prompt(root: Path) -> None:
    path = root / "prompts" / f"{PROMPT_SLUG}.yaml"
    text = path.read_text()
    assert SYSTEM_TEMPLATE in text
    path.write_text(text.replace(SYSTEM_TEMPLATE, EDITED_TEMPLATE))


def cassette_path(tapes: Path, row: str) -> Path:
    return tapes / "billing-support" / "refunds-politely" / f"v1-{row.replace(' ', '-')}.json"


def label(row: str) -> str:
    return f"{PROMPT_SLUG}::{TEST_NAME} v1 [{row}]"


def db_rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def stored_runs(path: Path) -> list[tuple]:
    return db_rows(path, "select id from runs") if path.exists() else []


def only_run(path: Path) -> str:
    (run,) = stored_runs(path)
    return run[0]


def options_of(path: Path) -> dict[str, Any]:
    ((options,),) = db_rows(path, "select options from runs")
    return json.loads(options)


def results(path: Path) -> dict[str, dict[str, Any]]:
    """Every stored test run by row: what a replay must reproduce (no timings, ids, latency)."""
    with Store(path) as store:
        outcomes = store.load_outcomes(only_run(path))
    played: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        messages = o.conversation.messages if o.conversation else ()
        played[o.row_name] = {
            "status": o.status,
            "error": o.error,
            "score": o.score,
            "messages": [
                (
                    m.role,
                    m.content,
                    m.turn,
                    (m.usage.input_tokens, m.usage.output_tokens) if m.usage else None,
                )
                for m in messages
            ],
            "evaluations": [(e.evaluator, e.score, e.passed, e.feedback) for e in o.evaluations],
        }
    return played


def stored_errors(path: Path) -> dict[str, str | None]:
    return dict(db_rows(path, "select row_name, error from test_runs"))


def record(tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Record the project's run against ``server`` into tmp_path/tapes (db A.db)."""
    make_project(tmp_path, server)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    tapes = tmp_path / "tapes"
    result = pt("run-tests", "--record", str(tapes), "--db", str(tmp_path / "A.db"))
    assert result.exit_code == 0, result.output
    return tapes


# --- record, then replay -----------------------------------------------------------------------


def test_a_recorded_run_replays_identically_with_no_network_and_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer(answer) as server:
        tapes = record(tmp_path, server, monkeypatch)
        recorded_requests = len(server.requests)
        # 2 rows × (3 assistant turns + 2 simulated-user turns + 1 judge call)
        assert recorded_requests == 12

        files = sorted(tapes.rglob("*.json"))
        assert files == [cassette_path(tapes, row) for row in ROWS]
        for row, path in zip(ROWS, files, strict=True):
            text = path.read_text(encoding="utf-8")
            assert SECRET not in text
            assert "Bearer" not in text
            assert "fp for <redacted>" in text  # the echoed key was redacted, the rest kept
            document = json.loads(text)
            assert document["pt_cassette"] == 1
            assert document["test_run"] == label(row)
            callers = [caller_of(i["request"]["body"]) for i in document["interactions"]]
            assert sorted(callers) == ["assistant"] * 3 + ["judge"] + ["simulated_user"] * 2
            for interaction in document["interactions"]:
                assert interaction["request"]["method"] == "POST"
                assert interaction["request"]["path"] == "/v1/chat/completions"
                assert interaction["response"]["status"] == 200
        assert options_of(tmp_path / "A.db")["cassettes"] == {
            "mode": "record",
            "directory": str(tapes),
        }
        recorded = results(tmp_path / "A.db")
        assert sorted(recorded) == list(ROWS)
        assert {r["status"] for r in recorded.values()} == {"passed"}

        # No key, the server still listening: nothing may reach it.
        monkeypatch.delenv("OPENAI_API_KEY")
        replayed = pt("run-tests", "--replay", str(tapes), "--db", str(tmp_path / "B.db"))
        assert replayed.exit_code == 0, replayed.output
        assert len(server.requests) == recorded_requests
    assert "REPLAY" in replayed.output
    assert options_of(tmp_path / "B.db")["cassettes"]["mode"] == "replay"
    assert results(tmp_path / "B.db") == recorded

    # The server gone, any real call would fail: the replay does not need it.
    again = pt("run-tests", "--replay", str(tapes), "--db", str(tmp_path / "C.db"))
    assert again.exit_code == 0, again.output
    assert "REPLAY" in again.output
    assert results(tmp_path / "C.db") == recorded
    # A replay writes nothing into the cassettes.
    assert sorted(tapes.rglob("*.json")) == [cassette_path(tapes, row) for row in ROWS]


def test_a_changed_prompt_ends_its_test_runs_in_error_naming_what_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer(answer) as server:
        tapes = record(tmp_path, server, monkeypatch)
        before = {path: path.read_text() for path in tapes.rglob("*.json")}
        edit_system_prompt(tmp_path)
        monkeypatch.delenv("OPENAI_API_KEY")
        seen = len(server.requests)
        result = pt("run-tests", "--replay", str(tapes), "--db", str(tmp_path / "B.db"))
        assert len(server.requests) == seen  # no network call
    assert result.exit_code == 1, result.output
    stored = results(tmp_path / "B.db")
    assert {row: r["status"] for row, r in stored.items()} == {row: "error" for row in ROWS}
    errors = stored_errors(tmp_path / "B.db")
    for row in ROWS:
        error = errors[row]
        assert error is not None
        assert label(row) in error
        assert str(cassette_path(tapes, row)) in error
        assert "body.messages[0].content" in error
        assert json.dumps(SYSTEM_RENDERED) in error  # what was recorded
        assert json.dumps(EDITED_RENDERED) in error  # what is asked now
    # The cassettes are left as they were.
    assert {path: path.read_text() for path in tapes.rglob("*.json")} == before


def test_record_missing_calls_only_for_what_is_missing_and_adds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer(answer) as server:
        tapes = record(tmp_path, server, monkeypatch)
        edit_system_prompt(tmp_path)
        seen = len(server.requests)
        result = pt(
            "run-tests",
            "--replay",
            str(tapes),
            "--record-missing",
            "--db",
            str(tmp_path / "B.db"),
        )
        assert result.exit_code == 0, result.output
        asked = [r.json() for r in server.requests[seen:]]
    # The assistant's requests carry the new system prompt and the judge's prompt quotes it;
    # the simulated user's requests are unchanged (the assistant answers the same): replayed.
    assert sorted(caller_of(body) for body in asked) == ["assistant"] * 6 + ["judge"] * 2
    assert all(EDITED_RENDERED in json.dumps(body) for body in asked)
    assert options_of(tmp_path / "B.db")["cassettes"]["mode"] == "replay+record"
    filled = results(tmp_path / "B.db")
    assert {r["status"] for r in filled.values()} == {"passed"}

    for row in ROWS:
        document = json.loads(cassette_path(tapes, row).read_text())
        bodies = [i["request"]["body"] for i in document["interactions"]]
        assert SECRET not in json.dumps(document)
        new = [b for b in bodies if EDITED_RENDERED in json.dumps(b)]
        assert sorted(caller_of(b) for b in new) == ["assistant"] * 3 + ["judge"]
        assert len(bodies) == 6 + 4  # the recorded exchanges are kept, the new ones added

    # Now the cassettes hold everything the edited prompt asks: server gone, no key.
    monkeypatch.delenv("OPENAI_API_KEY")
    again = pt("run-tests", "--replay", str(tapes), "--db", str(tmp_path / "C.db"))
    assert again.exit_code == 0, again.output
    assert results(tmp_path / "C.db") == filled


# --- the order of answers -------------------------------------------------------------------


def exchange(method: str, path: str, body: Any, status: int, answer: Any) -> Interaction:
    return Interaction(
        request=RecordedRequest(method=method, path=path, body=body),
        response=RecordedResponse(status=status, body=answer),
    )


def test_a_cassette_answers_a_repeated_request_in_order_then_keeps_the_last(
    tmp_path: Path,
) -> None:
    poll = {"thread_id": "thread_1", "run_id": "run_1"}
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}]}
    interactions = [
        exchange("POST", "/v1/runs/poll", poll, 200, {"status": "queued"}),
        exchange("POST", "/v1/chat/completions", chat, 200, {"answer": "chat"}),
        exchange("POST", "/v1/runs/poll", poll, 200, {"status": "in_progress"}),
        exchange("POST", "/v1/runs/poll", poll, 200, {"status": "completed"}),
    ]
    cassette = Cassette(tmp_path / "c.json", "p::t v1 [r]", interactions, mode="replay")

    def ask(body: Any, path: str = "/v1/runs/poll") -> httpx2.Request:
        return httpx2.Request("POST", f"http://127.0.0.1:9/{path.lstrip('/')}", json=body)

    def status(body: Any) -> str | None:
        response = cassette.answer(ask(body))
        return None if response is None else response.json()["status"]

    # The keys of a body in another order are the same request.
    shuffled = {"run_id": "run_1", "thread_id": "thread_1"}
    assert request_key("POST", "/v1/runs/poll", shuffled) == request_key(
        "POST", "/v1/runs/poll", poll
    )
    assert [status(poll), status(shuffled), status(poll)] == ["queued", "in_progress", "completed"]
    assert [status(poll), status(poll)] == ["completed", "completed"]  # polling past: the last
    chatted = cassette.answer(ask(chat, "/v1/chat/completions"))
    assert chatted is not None and chatted.status_code == 200
    assert chatted.json() == {"answer": "chat"}

    other = {"thread_id": "thread_1", "run_id": "run_2"}
    assert cassette.answer(ask(other)) is None
    missed = cassette.miss(ask(other))
    assert isinstance(missed, httpx2.Response)
    assert missed.status_code == 400
    assert missed.headers["x-should-retry"] == "false"
    message = missed.json()["error"]["message"]
    assert "body.run_id" in message
    assert '"run_1"' in message and '"run_2"' in message
    assert "p::t v1 [r]" in message and str(tmp_path / "c.json") in message
    # A miss consumes nothing: the recorded answers carry on where they were.
    assert status(poll) == "completed"


def test_a_recording_cassette_answers_nothing(tmp_path: Path) -> None:
    body = {"model": "gpt-4o-mini"}
    recorded = [exchange("POST", "/v1/chat/completions", body, 200, {"ok": True})]
    cassette = Cassette(tmp_path / "c.json", "p::t v1 [r]", recorded, mode="record")
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions", json=body)
    assert cassette.answer(request) is None
    assert cassette.calls_out


# --- damaged cassettes, bad options -------------------------------------------------------------


def test_a_cassette_that_is_not_json_is_refused_naming_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tapes = tmp_path / "tapes"
    broken = tapes / "billing-support" / "refunds-politely" / "v1-row-one.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{\n  "pt_cassette": 1,\n  "test_run": oops\n}\n')
    with LoopbackServer(answer) as server:
        make_project(tmp_path, server)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        result = pt("run-tests", "--replay", str(tapes), "--db", str(tmp_path / "B.db"))
        assert result.exit_code == 2, result.output
        assert server.requests == [] and server.connections == 0
    assert str(broken) in result.output
    assert "line 3" in result.output
    assert "Hint:" in result.output
    assert stored_runs(tmp_path / "B.db") == []


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"pt_cassette": 1, "test_run": "x"}, "interactions"),
        ({"pt_cassette": 2, "test_run": "x", "interactions": []}, "pt_cassette"),
        (
            {"pt_cassette": 1, "test_run": "x", "interactions": [{"request": {"method": "GET"}}]},
            "interactions.0.request.path",
        ),
    ],
)
def test_a_cassette_of_the_wrong_shape_is_refused_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: dict[str, Any], field: str
) -> None:
    tapes = tmp_path / "tapes"
    tapes.mkdir()
    wrong = tapes / "wrong.json"
    wrong.write_text(json.dumps(document))
    with LoopbackServer(answer) as server:
        make_project(tmp_path, server)
        result = pt("run-tests", "--replay", str(tapes), "--db", str(tmp_path / "B.db"))
        assert result.exit_code == 2, result.output
        assert server.requests == []
    assert str(wrong) in result.output
    assert f"{field}:" in result.output
    assert stored_runs(tmp_path / "B.db") == []


def test_replaying_a_directory_that_does_not_exist_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer(answer) as server:
        make_project(tmp_path, server)
        result = pt("run-tests", "--replay", str(tmp_path / "nowhere"), "--db", "B.db")
        assert result.exit_code == 2, result.output
        assert server.requests == []
    assert "nowhere" in result.output
    assert "Hint:" in result.output
    assert stored_runs(tmp_path / "B.db") == []


@pytest.mark.parametrize(
    ("options", "clash"),
    [
        (["--record", "tapes", "--replay", "tapes"], "--record and --replay"),
        (["--record-missing"], "--record-missing without --replay"),
        (["--record", "tapes", "--record-missing"], "--record-missing without --replay"),
        (["--mock", "--replay", "tapes"], "--mock with cassettes"),
        (["--mock", "--record", "tapes"], "--mock with cassettes"),
    ],
)
def test_clashing_cassette_options_exit_2_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: list[str], clash: str
) -> None:
    (tmp_path / "tapes").mkdir()
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with LoopbackServer(answer) as server:
        make_project(tmp_path, server)
        result = pt("run-tests", *options, "--db", str(tmp_path / "B.db"))
        assert result.exit_code == 2, result.output
        assert server.requests == []
    assert clash in result.output
    assert "Hint:" in result.output
    assert stored_runs(tmp_path / "B.db") == []
    assert list((tmp_path / "tapes").iterdir()) == []  # no cassette written


# --- keys ------------------------------------------------------------------------------------


def test_a_replay_needs_no_key_and_a_recording_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer(answer) as server:
        tapes = record(tmp_path, server, monkeypatch)
        seen = len(server.requests)
        monkeypatch.delenv("OPENAI_API_KEY")

        replayed = pt("run-tests", "--replay", str(tapes), "--db", str(tmp_path / "B.db"))
        assert replayed.exit_code == 0, replayed.output  # 3 would be the key check

        fresh = tmp_path / "fresh"
        recording = pt("run-tests", "--record", str(fresh), "--db", str(tmp_path / "C.db"))
        assert recording.exit_code == 3, recording.output
        assert "OPENAI_API_KEY" in recording.output
        assert len(server.requests) == seen
    assert not fresh.exists() or list(fresh.rglob("*.json")) == []
    assert stored_runs(tmp_path / "C.db") == []


async def test_the_assistants_thread_and_its_polling_replay_over_respx(
    tmp_path: Path, httpx2_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every route leaves through the endpoint: an Assistants conversation — thread, message,
    run, three polls, the reply list — is recorded from respx routes, then replayed with no
    route left, no key, and the same answer (the polls come back in order)."""
    from prompttracker.config.settings import Settings
    from prompttracker.llm.base import SessionOptions
    from prompttracker.llm.call_layer import CallLayer
    from prompttracker.llm.cassettes import Cassette, Cassettes, current_cassette
    from prompttracker.llm.openai_assistants import AssistantsSession
    from tests import test_assistants as assistants

    monkeypatch.setenv("OPENAI_API_KEY", assistants.KEY)
    routes = assistants.one_turn_routes(
        httpx2_mock, assistants.run("run_1", "completed", usage=(30, 8)), "Sorry. Which order?"
    )
    routes["poll"].mock(
        side_effect=[
            assistants.ok(assistants.run("run_1", "queued")),
            assistants.ok(assistants.run("run_1", "in_progress")),
            assistants.ok(assistants.run("run_1", "completed", usage=(30, 8))),
        ]
    )
    settings = Settings()
    path = tmp_path / "tapes" / "assistants.json"

    async def converse(calls: CallLayer) -> Any:
        chat = AssistantsSession(
            assistants.CONFIG,
            settings,
            SessionOptions(system_prompt=assistants.SYSTEM, calls=calls),
            poll_interval=0.001,
            deadline_seconds=5,
        )
        try:
            return await chat.send("I was charged twice.")
        finally:
            await chat.aclose()

    recording = Cassette(path, "assistants test run", [], mode="record")
    token = current_cassette.set(recording)
    try:
        async with CallLayer(settings) as calls:
            recorded = await converse(calls)
    finally:
        current_cassette.reset(token)
    recording.save()
    sent = len(httpx2_mock.calls)
    assert routes["poll"].call_count == 3 and recording.added == sent == 7
    assert assistants.KEY not in path.read_text()

    monkeypatch.delenv("OPENAI_API_KEY")
    tapes = Cassettes(path.parent, "replay", [])
    replaying = Cassette(path, "assistants test run", tapes.loaded[path], mode="replay")
    token = current_cassette.set(replaying)
    try:
        async with CallLayer(settings, cassettes=tapes) as calls:
            replayed = await converse(calls)
    finally:
        current_cassette.reset(token)
    assert len(httpx2_mock.calls) == sent  # nothing reached the transport
    assert (replayed.content, replayed.response_id, replayed.usage) == (
        recorded.content,
        recorded.response_id,
        recorded.usage,
    )
    assert replayed.content == "Sorry. Which order?"


def test_the_shipped_cassettes_replay_the_recorded_example_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cassettes in the repository still answer every call of `--tag recorded`: a change
    to those example prompts must come with a new recording (README, "CI at any size")."""
    import shutil

    root = Path(__file__).resolve().parent.parent
    for name in ("prompts", "datasets", "cassettes"):
        shutil.copytree(root / name, tmp_path / name)
    shutil.copy(root / "prompttracker.yaml", tmp_path / "prompttracker.yaml")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    result = pt("run-tests", "--tag", "recorded", "--replay", "cassettes", "--transcripts", "none")
    # Recorded from SmolLM2-135M: a weak model, so most of these fail — the same way every time.
    assert result.exit_code == 1, result.output
    statuses = db_rows(
        tmp_path / ".prompttracker" / "results.db", "select row_name, status, error from test_runs"
    )
    assert len(statuses) == 8
    assert sorted(row for row, status, _ in statuses if status == "passed") == ["laptop size"]
    assert not [error for _, status, error in statuses if status == "error"]  # no gap
    # Twice the small model, playing the customer, ran past its token cap: the simulator
    # checks stop those conversations as invalid, not as failures of the prompt.
    invalid = sorted((row, error) for row, status, error in statuses if status == "invalid")
    assert [row for row, _ in invalid] == ["double charged", "silent opener"]
    assert all("the simulated user was cut off at turn" in error for _, error in invalid)
    assert "Simulator error rate: 67% (2 of 3 conversations invalid)" in result.output
