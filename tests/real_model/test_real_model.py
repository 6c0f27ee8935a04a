"""``pt run-tests`` against a real model server, through a recording proxy.

One conversational test plays three prompt versions — Chat Completions, Responses (stateless)
and Anthropic Messages — on one real server, with a real simulated user and real judges, on two
rows: a conversation of up to three turns, and a one-turn row that no simulated user can spoil,
so that the judges always run. The model is tiny and weak: these tests assert that pt speaks
each protocol correctly and copes with whatever comes back (prose for JSON, cut answers, a
simulated user that echoes), never what the model says. ``pt`` runs once; every test reads it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.project_factory import write_project
from tests.real_model.proxy import Exchange, RecordingProxy

PT = [sys.executable, "-m", "prompttracker"]
RUN_TIMEOUT_SECONDS = 900
MODEL = "smollm2"  # the server serves one model, whatever the name
CHAT, RESPONSES, MESSAGES = "/v1/chat/completions", "/v1/responses", "/v1/messages"
API_PATHS = {1: CHAT, 2: RESPONSES, 3: MESSAGES}  # version → where its turns go
EVALUATORS = ("length", "keyword", "llm_judge", "conversation_judge")
JUDGES = ("llm_judge", "conversation_judge")
# Keys, base URLs and the database of the caller's shell never reach the run.
DROPPED_ENV = ("_API_KEY", "_BASE_URL", "PT_DB")

PERSONA = (
    "You were charged twice for order 12345 and you want a refund. Say so briefly. "
    "Stop once the assistant promises the refund."
)
OPENINGS = {  # row → its first user message; requests are told apart by it
    "charged twice": "I was charged twice for order 12345. Can I get a refund?",
    "one question": "How long does a refund take?",
}

# Three wordings, one per API: three different conversations, so that one answer the model cuts
# at the token cap does not decide every row. Short replies keep the simulated user short too:
# this model tends to echo the assistant's last message into its own.
PROMPT = f"""\
name: Real model
description: One conversation on three APIs of one real server
versions:
  - version: 1
    status: active
    system_prompt: "You are a support agent for {{{{ company }}}}. Reply in at most ten words."
    user_prompt: "{{{{ opening_message }}}}"
    model_config:
      {{ provider: openai, api: chat_completions, model: {MODEL}, temperature: 0, max_tokens: 64 }}
  - version: 2
    system_prompt: >-
      You are a friendly billing assistant for {{{{ company }}}}.
      Keep every reply to one short sentence.
    user_prompt: "{{{{ opening_message }}}}"
    model_config:
      provider: openai
      api: responses
      model: {MODEL}
      temperature: 0
      max_tokens: 64
      conversation_state: stateless
  - version: 3
    system_prompt: "You work at the {{{{ company }}}} help desk. Answer briefly and politely."
    user_prompt: "{{{{ opening_message }}}}"
    model_config:
      {{ provider: anthropic, api: messages, model: {MODEL}, temperature: 0, max_tokens: 64 }}
tests:
  - name: double charge
    dataset: refunds
    versions: [1, 2, 3]
    evaluators:
      - type: length
        config: {{ min_length: 1, max_length: 4000 }}
      - type: keyword
        config: {{ required_keywords: [refund] }}
      - type: llm_judge
        config: {{ custom_instructions: "Does the assistant offer to help with the refund?" }}
      - type: conversation_judge
        config: {{ evaluation_prompt: "Is this assistant message polite and on topic?" }}
"""

DATASET = f"""\
mode: conversational
rows:
  - name: charged twice
    variables: {{ company: Acme, opening_message: "{OPENINGS["charged twice"]}" }}
    interlocutor_simulation_prompt: "{PERSONA}"
    max_turns: 3
  - name: one question
    variables: {{ company: Acme, opening_message: "{OPENINGS["one question"]}" }}
    interlocutor_simulation_prompt: "{PERSONA}"
    max_turns: 1
"""
PLANNED = 3 * len(OPENINGS)


def settings(proxy_url: str) -> str:
    # No max_tokens_param: pt must pick max_tokens by itself, the base_url not being OpenAI's.
    return f"""\
database: results.db
concurrency: 1  # one request at a time: the server's outputs stay repeatable
providers:
  openai: {{ base_url: "{proxy_url}/v1", timeout_seconds: 180 }}
  anthropic: {{ base_url: "{proxy_url}", timeout_seconds: 180 }}
interlocutor:
  {{ provider: openai, api: chat_completions, model: {MODEL}, temperature: 0, max_tokens: 384 }}
judge:
  {{ provider: openai, api: chat_completions, model: {MODEL}, temperature: 0, max_tokens: 256 }}
"""


@dataclass(frozen=True)
class Played:
    """What one ``pt run-tests`` left behind."""

    exit_code: int
    output: str
    db: Path
    junit: Path
    exchanges: list[Exchange]
    seconds: float

    def to(self, path: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.path.split("?", 1)[0] == path]


@pytest.fixture(scope="module")
def played(real_model_url: str, tmp_path_factory: pytest.TempPathFactory) -> Played:
    """Play the project once (the model is slow): every test reads the same run."""
    root = tmp_path_factory.mktemp("real-project")
    with RecordingProxy(real_model_url) as proxy:
        write_project(
            root,
            prompts={"real_model": PROMPT},
            datasets={"refunds": DATASET},
            settings=settings(proxy.url),
        )
        db, junit = root / "results.db", root / "junit.xml"
        env = {
            **{k: v for k, v in os.environ.items() if not k.endswith(DROPPED_ENV)},
            "COLUMNS": "100",
            "NO_COLOR": "1",
            "OPENAI_API_KEY": "sk-local",
            "ANTHROPIC_API_KEY": "sk-local",
        }
        command = [*PT, "run-tests", "-p", str(root), "--db", str(db), "--junit-xml", str(junit)]
        started = time.monotonic()
        result = subprocess.run(
            [*command, "--transcripts", "all"],
            capture_output=True,
            text=True,
            env=env,
            timeout=RUN_TIMEOUT_SECONDS,
        )
        seconds = time.monotonic() - started
        exchanges = list(proxy.exchanges)
    # Beside the database, for whoever reads a failure: every body that went out and came back.
    with (root / "exchanges.jsonl").open("w") as log:
        for exchange in exchanges:
            log.write(json.dumps(dataclasses.asdict(exchange)) + "\n")
    output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    return Played(result.returncode, output, db, junit, exchanges, seconds)


def rows(db: Path, sql: str, *parameters: Any) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(sql, parameters)]


def columns(db: Path, table: str) -> set[str]:
    return {row["name"] for row in rows(db, f"PRAGMA table_info({table})")}


def conversations(db: Path) -> list[dict[str, Any]]:
    """Each test run with its conversation's metadata (parsed)."""
    found = rows(
        db,
        "SELECT test_runs.*, llm_responses.metadata AS conversation FROM test_runs "
        "JOIN llm_responses ON llm_responses.test_run_id = test_runs.id",
    )
    return [{**t, "conversation": json.loads(t["conversation"])} for t in found]


def test_run_stores_every_planned_test_run_without_errors(played: Played) -> None:
    calls = [e for e in played.exchanges if e.path in API_PATHS.values()]
    print(
        f"\nreal model: exit {played.exit_code} in {played.seconds:.0f} s, "
        f"{len(calls)} model calls ({len(played.to(CHAT))} chat completions, "
        f"{len(played.to(RESPONSES))} responses, {len(played.to(MESSAGES))} messages)"
    )
    assert played.exit_code in (0, 1), played.output
    assert "Traceback" not in played.output, played.output

    [run] = rows(played.db, "SELECT * FROM runs")
    assert run["status"] == "completed", run
    planned = {r["plan_key"] for r in rows(played.db, "SELECT plan_key FROM run_plan")}
    test_runs = conversations(played.db)
    assert len(planned) == PLANNED, planned
    assert len(test_runs) == PLANNED
    assert {t["plan_key"] for t in test_runs} == planned
    for t in test_runs:
        stop = t["conversation"]
        print(
            f"v{t['version']} {t['row_name']}: {t['status']}, {stop['stop_reason']} "
            f"after {stop['turn_count']} turn(s)" + (f" — {t['error']}" if t["error"] else "")
        )
    errored = [f"v{t['version']}: {t['error']}" for t in test_runs if t["status"] == "error"]
    assert not errored, "test runs in error:\n" + "\n".join(errored)
    for t in test_runs:
        metadata = t["conversation"]
        assert metadata["stop_reason"] and metadata["stop_reason"] != "error", metadata
        if metadata["stop_reason"] == "interlocutor_ended":
            assert metadata["stop"]["by"] == "simulated user", metadata

    suite = ET.parse(played.junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("errors")) == (str(PLANNED), "0"), ET.tostring(suite)
    assert len(suite.findall("testcase")) == PLANNED


def test_every_evaluation_ran_and_every_judge_answer_was_read(played: Played) -> None:
    evaluations = rows(played.db, "SELECT * FROM evaluations")
    for t in conversations(played.db):
        types = sorted(e["type"] for e in evaluations if e["test_run_id"] == t["id"])
        if t["status"] == "invalid" and not types:
            # The simulated user failed its checks: nothing is scored, and the run says why.
            assert t["error"] or t["conversation"].get("invalid"), t
            continue
        assert types == sorted(EVALUATORS), (t, types)
    judged = [e for e in evaluations if e["type"] in JUDGES]
    assert len(judged) >= 2 * 3, "the one-turn rows are always judged"

    has_inconclusive = "inconclusive" in columns(played.db, "evaluations")
    problems, repaired = [], 0
    for evaluation in evaluations:
        where = f"{evaluation['type']} of {evaluation['test_run_id']}"
        if evaluation["error"] is not None:
            problems.append(f"{where}: error {evaluation['error']}")
            continue
        if evaluation["type"] not in JUDGES:
            continue
        if has_inconclusive and evaluation["inconclusive"] is not None:
            continue  # its reason is checked below
        details = json.loads(evaluation["details"] or "{}")
        answers = details.get("message_scores", [details])
        if not answers:
            problems.append(f"{where}: no judged message in {details}")
        for answer in answers:
            if not answer.get("raw_response"):
                problems.append(f"{where}: no raw_response in {answer}")
            repaired += bool(answer.get("repaired"))
    inconclusive = [e for e in evaluations if has_inconclusive and e["inconclusive"] is not None]
    print(
        f"\njudge evaluations: {len(judged)}, inconclusive: {len(inconclusive)}, "
        f"answers repaired: {repaired}"
    )
    assert not problems, "\n".join(problems)
    # An inconclusive evaluation says why.
    assert all(
        isinstance(e["inconclusive"], str) and e["inconclusive"].strip() for e in inconclusive
    )


def test_requests_have_the_shape_of_each_api(played: Played) -> None:
    refused = [
        f"{e.path} {e.status}: {e.response_text[:300]}" for e in played.exchanges if e.status != 200
    ]
    assert not refused, "the server refused requests:\n" + "\n".join(refused)

    chat = [e.request for e in played.to(CHAT)]
    for body in chat:
        assert "max_tokens" in body and "max_completion_tokens" not in body, body
    simulated = [b for b in chat if PERSONA in system_text(b)]
    for body in simulated:
        schema = (body.get("response_format") or {}).get("json_schema") or {}
        assert body["response_format"]["type"] == "json_schema", body
        assert schema.get("name") == "simulated_user_turn", body

    for body in [e.request for e in played.to(RESPONSES)]:
        assert body.get("store") is False, body
        assert "previous_response_id" not in body, body
        assert all(item.get("type") == "message" for item in body["input"]), body

    # Each turn resends the whole conversation (2k-1 messages at turn k), on every route.
    for t in conversations(played.db):
        path, opening = API_PATHS[t["version"]], OPENINGS[t["row_name"]]
        sent = [e.request for e in played.to(path) if first_user_text(path, e.request) == opening]
        where = f"v{t['version']} {t['row_name']} on {path}"
        assert len(sent) == t["conversation"]["turn_count"], (where, sent)
        for turn, body in enumerate(sent, 1):
            history = body["input"] if path == RESPONSES else body["messages"]
            roles = [m["role"] for m in history if m.get("role") != "system"]
            assert roles == ["user", "assistant"] * (turn - 1) + ["user"], (where, body)


def test_the_simulated_user_answered_in_structured_fields(played: Played) -> None:
    answers = [
        reply_content(e) for e in played.to(CHAT) if e.request and PERSONA in system_text(e.request)
    ]
    structured = [a for a in answers if isinstance(a, dict) and "stop" in a]
    print(f"\nsimulated-user answers: {len(answers)}, JSON with 'stop': {len(structured)}")
    assert structured, answers
    # pt unwraps the JSON: the assistant and the database see the message, not the object.
    user_texts = [m["content"] for m in rows(played.db, "SELECT content FROM messages")]
    leaked = [t for t in user_texts if isinstance(parse_json(t), dict)]
    assert not leaked, leaked


def system_text(body: dict[str, Any]) -> str:
    """The system message of a Chat Completions body, as text."""
    for message in body.get("messages", []):
        if message.get("role") == "system":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def first_user_text(path: str, body: dict[str, Any] | None) -> str | None:
    """The first user message of a request to ``path``, as text."""
    items = (body or {}).get("input" if path == RESPONSES else "messages") or []
    first = next((m for m in items if m.get("role") == "user"), None)
    if first is None:
        return None
    content = first.get("content")
    if isinstance(content, list):  # content blocks
        return "".join(str(block.get("text", "")) for block in content)
    return content


def reply_content(exchange: Exchange) -> Any:
    """choices[0].message.content of a Chat Completions answer, parsed as JSON when it is."""
    answer = exchange.response() or {}
    content = ((answer.get("choices") or [{}])[0].get("message") or {}).get("content")
    return parse_json(content) if isinstance(content, str) else content


def parse_json(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return None
